"""Article pages -> their main text, for feeds that carry only a teaser.

Input: a fetched page (body, URL, response headers). Output: an :class:`Article`, its
plain text or why there is none. Failures are values: a page that is not HTML, has no main
text or breaks the extractor is an ``Article`` with ``error`` set, never an exception, so
one hostile page costs only its own text.

The main text is trafilatura's (boilerplate, navigation, comments and links dropped), in its
fast mode: without the readability/jusText fallbacks, which roughly double the time of a
page. Both ends are bounded: at most ``MAX_HTML`` bytes of the page are read (the start of
a page holds its article; what is cut is its footer) and at most ``MAX_TEXT`` characters
kept. The time is bounded by the caller (the parse workers kill a worker over its budget).

Pure: does not touch the network or the database, and does not decide which pages to fetch
(:mod:`monitor.fulltext` does).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Mapping

from monitor.parse.text import clean_text
from monitor.types import frozen

MAX_HTML = 2 * 1024 * 1024  # bytes of a page handed to the extractor
MAX_TEXT = 100_000  # characters of main text kept (a long report; a book is cut)
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", ""})
_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)
_BLANK_LINES = re.compile(r"\n\s*\n+")

# trafilatura logs every page it finds nothing in at warning level; an empty page is a
# value here (``Article.error``), not news for the service's log.
logging.getLogger("trafilatura").setLevel(logging.ERROR)


@frozen
class Article:
    """A page's main text, or ``error``: why there is none (for counts and the debug log)."""

    text: str = ""
    error: str | None = None


def extract_article(body: bytes, *, url: str, headers: Mapping[str, str]) -> Article:
    """The main text of an HTML page, or an ``Article`` saying why there is none."""
    media_type, charset = _content_type(headers)
    if media_type not in _HTML_TYPES:
        return Article(error=f"not an HTML page ({media_type[:60]})")
    # Imported on first use: it takes longer to import than the rest of the service, and
    # only full-text feeds need it.
    import trafilatura

    head = body[:MAX_HTML]
    page: bytes | str = head
    if charset:
        # An unknown charset: trafilatura guesses from the bytes.
        with contextlib.suppress(LookupError):
            page = head.decode(charset, errors="replace")
    try:
        text = trafilatura.extract(
            page,
            url=url,
            fast=True,
            include_comments=False,
            include_tables=True,
            include_links=False,
            include_images=False,
            output_format="txt",
        )
    except Exception as exc:  # the extractor's bug on a hostile page: this page's loss only
        return Article(error=f"extraction failed ({type(exc).__name__})")
    text = _BLANK_LINES.sub("\n\n", clean_text(text or "")).strip()
    if not text:
        return Article(error="no main text found")
    return Article(text=text[:MAX_TEXT])


def _content_type(headers: Mapping[str, str]) -> tuple[str, str | None]:
    """The media type (lower case, no parameters) and the charset parameter, if any."""
    value = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    media_type = value.split(";", 1)[0].strip().lower()
    found = _CHARSET.search(value)
    return media_type, found.group(1) if found else None
