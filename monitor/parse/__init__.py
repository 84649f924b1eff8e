"""PARSE stage: a fetched body -> ``ParsedFeed`` (see :mod:`monitor.parse.feed`).

The modules: ``feed`` (the entry point, and RSS/Atom through feedparser), ``prolog`` (the
document as feedparser reads it: its encoding, refused entity declarations), ``lenient``
(feedparser's lenient parser, skipping what makes it raise), ``jsonfeed`` (JSON Feed 1.x),
``items`` (item identity, content hash, absolute links), ``text`` (the characters feed text
may keep), ``html`` (HTML to plain text; HTML pages that are not feeds) and ``workers`` (the
processes that parse off the event loop, each document within a time budget). Pure but for
the workers: no network, no database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.parse.workers import ParseWorkers

# ``parse_feed`` is imported from ``monitor.parse.feed``: importing the package does not
# load feedparser (the service's process leaves parsing to its workers).
# Nor does it load the workers' machinery (asyncio, threads, subprocesses): a worker imports
# the parsers through this package and needs none of it.
__all__ = ["ParseWorkers"]


def __getattr__(name: str) -> Any:
    if name == "ParseWorkers":
        from monitor.parse.workers import ParseWorkers

        return ParseWorkers
    raise AttributeError(f"module 'monitor.parse' has no attribute {name!r}")
