"""PARSE stage: a fetched body -> ``ParsedFeed`` (see :mod:`monitor.parse.feed`).

The modules: ``feed`` (the entry point, and RSS/Atom through feedparser), ``prolog`` (the
document as feedparser reads it: its encoding, refused entity declarations), ``lenient``
(feedparser's lenient parser, skipping what makes it raise), ``jsonfeed`` (JSON Feed 1.x),
``items`` (item identity, content hash, absolute links), ``text`` (the characters feed text
may keep), ``html`` (HTML to plain text; HTML pages that are not feeds) and ``workers`` (the
processes that parse off the event loop, each document within a time budget). Pure but for
the workers: no network, no database.
"""

from monitor.parse.feed import parse_feed
from monitor.parse.workers import ParseWorkers

__all__ = ["ParseWorkers", "parse_feed"]
