"""PARSE stage: a fetched body -> ``ParsedFeed`` (see :mod:`monitor.parse.feed`).

The modules: ``feed`` (the entry point, and RSS/Atom through feedparser), ``prolog`` (the
document's first bytes: encoding marks, refused entity declarations), ``jsonfeed`` (JSON
Feed 1.x), ``items`` (item identity, content hash, absolute links), ``html`` (HTML to plain
text; HTML pages that are not feeds) and ``workers`` (the process pool that parses off the
event loop). Pure but for the pool: no network, no database.
"""

from monitor.parse.feed import parse_feed
from monitor.parse.workers import ParseWorkers

__all__ = ["ParseWorkers", "parse_feed"]
