"""Parse stage: the bytes of a fetched document -> ``ParsedFeed`` of normalised ``Item``s.

Input: the body (already decoded from gzip/brotli by the fetcher), the final URL (the base
for relative links) and the response headers (only ``Content-Type`` is used). Output: a
``ParsedFeed`` whose items have plain-text fields (no control character, no lone
surrogate), absolute http(s) links, UTC dates and a stable identity ``key``, each key once
(:mod:`monitor.parse.items`). RSS 0.9x/1.0/2.0 and Atom go through feedparser 6, after
:mod:`monitor.parse.prolog` has decoded the document and looked for entity declarations;
JSON Feed 1.0/1.1 through :mod:`monitor.parse.jsonfeed`. Raises ``ParseError`` for anything
that is not a feed.

Pure: it does not touch the network, the database or the clock, and it keeps no state, so
it can run in a worker process. It does not sanitise HTML for display (every text field is
plain text) and does not decide what is new (the decision step does, by ``key``).
"""

from __future__ import annotations

import calendar
import io
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from xml.sax import SAXParseException

import feedparser
from feedparser.exceptions import CharacterEncodingOverride

from monitor.errors import ParseError
from monitor.parse import unchanged
from monitor.parse.html import html_to_text, inspect_html_page, plain_to_text
from monitor.parse.items import absolute_link, distinct, make_item, substantive, unique_items
from monitor.parse.jsonfeed import looks_like_json, parse_json_feed
from monitor.parse.lenient import read_leniently
from monitor.parse.prolog import ENTITY_REFUSAL, Document, declares_entities, read_document
from monitor.parse.text import one_line
from monitor.types import Item, ParsedFeed

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# RSS 1.0 syndication module (web.resource.org/rss/1.0/modules/syndication): a month and a
# year are taken as 30 and 365 days, which is all a polling interval needs.
_UPDATE_PERIODS = {
    "hourly": 3600.0,
    "daily": 86400.0,
    "weekly": 7 * 86400.0,
    "monthly": 30 * 86400.0,
    "yearly": 365 * 86400.0,
}


def parse_feed(
    body: bytes, *, url: str, headers: Mapping[str, str], known: bytes | None = None
) -> ParsedFeed:
    """Parse one fetched document.

    Malformed XML that still yields items gives those items and a ``warning``. A document
    whose feed type was recognised but which yielded no item because it is broken (a
    truncated download, a server error in mid-render) gives an empty feed with a warning,
    not an error: the feed exists, the next poll may succeed, and an empty feed adds
    nothing. A document whose feed type was not recognised (an HTML page, other XML,
    garbage) raises ``ParseError``; for an HTML page the message names the feed URL the
    page advertises, if any. So does any document declaring XML entities (see
    :func:`~monitor.parse.prolog.declares_entities`) and any body that is empty.
    """
    if not body.strip():
        raise ParseError(url, "not a feed (empty body)")
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if looks_like_json(body, content_type):
        return parse_json_feed(body, url=url)
    try:
        document = read_document(body, content_type)
    except Exception as exc:  # feedparser's internals may raise anything on hostile input
        raise _unreadable(url, exc) from exc
    if declares_entities(document):
        raise ParseError(url, ENTITY_REFUSAL)
    cut = unchanged.layout(document.data, url=url, encoding=document.encoding)
    skipped = unchanged.known_ranges(cut, known) if cut is not None else {}
    if cut is not None and (skipped or cut.unused):
        shorter = Document(
            data=unchanged.without(cut, skipped),
            content_type=document.content_type,
            encoding=document.encoding,
            problem=document.problem,
        )
        result = _run_feedparser(shorter, url)
        if len(result.get("entries") or ()) != len(cut.ranges) - len(skipped):
            skipped, result = {}, _run_feedparser(document, url)  # not as expected: whole
    else:
        result = _run_feedparser(document, url)
    return _from_feedparser(result, body=body, url=url, cut=cut, skipped=skipped)


def _run_feedparser(document: Document, url: str) -> Any:
    """feedparser on the bytes, never on a str (a str is opened as a path or URL); the
    encoding it found while decoding them (:func:`~monitor.parse.prolog.read_document`)
    and its complaint about it, as if it had decoded them itself.

    No ``content-location``: with it, feedparser resolves Atom ``<id>`` values against
    the feed URL (Reddit's ``t3_157kyrd`` becomes ``https://host/t3_157kyrd``), so keys
    would change when the feed moves; links are resolved here instead. Sanitising and
    URI rewriting inside HTML are off: every text field ends up as plain text. When
    feedparser raises (its lenient parser, on markup it did not expect), the document is
    read again skipping what raised (:mod:`monitor.parse.lenient`): one bad element does
    not cost the feed.
    """
    try:
        result = feedparser.parse(
            io.BytesIO(document.data),
            response_headers={"content-type": document.content_type},
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as exc:  # feedparser's internals may raise anything on hostile input
        try:
            result = read_leniently(document.data, exc)
        except Exception:
            raise _unreadable(url, exc) from exc
    result["encoding"] = document.encoding
    if document.problem is not None and not result.get("bozo"):  # a parse error outranks it
        result["bozo"], result["bozo_exception"] = True, document.problem
    return result


def _unreadable(url: str, exc: Exception) -> ParseError:
    reason = one_line(f"{type(exc).__name__}: {exc}")  # its text may quote the document
    return ParseError(url, f"unreadable feed: {reason}")


def _from_feedparser(
    result: Any,
    *,
    body: bytes,
    url: str,
    cut: unchanged.Layout | None = None,
    skipped: Mapping[int, bytes] | None = None,
) -> ParsedFeed:
    """The feed's items; with ``cut``, the layout of the document that feedparser read
    before ``skipped`` ranges were left out, the fingerprint too, when feedparser's
    entries are the ranges (the same number: one per item element)."""
    entries = result.get("entries") or []
    if not entries and not result.get("version"):
        raise ParseError(url, one_line(_not_a_feed(result, body, url)))
    feed = result.get("feed") or {}
    parsed = [_item_from_entry(entry, url) for entry in entries]
    skipped = skipped or {}
    fingerprint = None
    if cut is not None and len(parsed) == len(cut.ranges) - len(skipped):
        shown = [item if substantive(item) else None for item in parsed]
        items, fingerprint = unchanged.merge(cut, skipped, shown)
    else:
        items = unique_items(parsed)
    return ParsedFeed(
        title=one_line(_detail_text(feed.get("title_detail"), feed.get("title"))),
        link=absolute_link(url, feed.get("link")),
        items=items,
        ttl_seconds=_ttl_seconds(feed),
        warning=_warning(result, body),
        fingerprint=fingerprint,
    )


def _warning(result: Any, body: bytes) -> str | None:
    """:func:`_problem`, on one clean line: it quotes the document (an encoding's name)."""
    problem = _problem(result, body)
    return None if problem is None else one_line(problem)


def _not_a_feed(result: Any, body: bytes, url: str) -> str:
    try:
        document = body.decode(result.get("encoding") or "utf-8", "replace")
    except LookupError:
        document = body.decode("utf-8", "replace")
    page = inspect_html_page(document, url=url)
    if page.feed_url:
        return f"not a feed (HTML page); it advertises a feed at {page.feed_url}"
    if page.is_html:
        return "not a feed (HTML page)"
    problem = _warning(result, body)
    return f"not a feed ({problem})" if problem else "not a feed"


def _problem(result: Any, body: bytes) -> str | None:
    """A short message for a bozo document: what was wrong, and where."""
    if not result.get("bozo"):
        return None
    exc = result.get("bozo_exception")
    if isinstance(exc, SAXParseException):
        line = exc.getLineNumber()
        # feedparser prepends an XML declaration line when the document has none.
        if not body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<?xml"):
            line -= 1
        return f"malformed XML: {exc.getMessage()} at line {line}"
    if isinstance(exc, CharacterEncodingOverride):
        return f"encoding guessed: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _item_from_entry(entry: Any, base: str) -> Item:
    contents = {
        part["value"]: _detail_text(part, part["value"], html=True)
        for part in entry.get("content") or ()
        if isinstance(part.get("value"), str)
    }
    summary = entry.get("summary")
    return make_item(
        guid=(entry.get("id") or "").strip() or None,
        link=absolute_link(base, _entry_link(entry)),
        title=one_line(_detail_text(entry.get("title_detail"), entry.get("title"))),
        # Without a summary of its own, feedparser copies the content into "summary"
        # (with no summary_detail): reuse that content's text rather than parse it twice.
        summary=contents.get(summary)
        if isinstance(summary, str) and summary in contents
        else _detail_text(entry.get("summary_detail"), summary, html=True),
        content="\n".join(distinct(contents.values())),
        author=_entry_author(entry),
        categories=distinct(
            plain_to_text(tag.get("term") or "") for tag in entry.get("tags") or ()
        ),
        published=_utc(entry.get("published_parsed")),
        # dict.get: FeedParserDict maps a missing "updated_parsed" to "published_parsed".
        updated=_utc(dict.get(entry, "updated_parsed")),
    )


def _entry_link(entry: Any) -> object:
    """The item's first HTML alternate link. Not ``entry.link``: feedparser lets later
    ``<link>`` elements overwrite it, and Yandex feeds nest related-article links in
    ``<yandex:related>``, so 97 of aif.ru's 100 items would point at another article."""
    for link in entry.get("links") or ():
        is_page = (link.get("type") or "text/html") in _HTML_TYPES
        if link.get("rel", "alternate") == "alternate" and is_page and link.get("href"):
            return link["href"]
    return entry.get("link")


def _detail_text(detail: Any, fallback: object, *, html: bool = False) -> str:
    """Plain text of a feedparser text construct: HTML stripped if its type says HTML,
    or, when it has no type, if ``html`` (summaries and content default to HTML)."""
    value = detail.get("value") if detail else fallback
    if not isinstance(value, str):
        return ""
    is_html = detail.get("type") in _HTML_TYPES if detail else html
    return html_to_text(value) if is_html else plain_to_text(value)


def _entry_author(entry: Any) -> str:
    people = entry.get("authors") or ()
    names = distinct(plain_to_text(p.get("name") or "") for p in people if hasattr(p, "get"))
    return ", ".join(names) or plain_to_text(entry.get("author") or "")


def _utc(parsed: time.struct_time | None) -> datetime | None:
    """feedparser's ``*_parsed`` values are UTC struct_times (feedparser.datetimes)."""
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _ttl_seconds(feed: Any) -> float | None:
    """RSS 2.0 ``<ttl>`` (minutes), else ``sy:updatePeriod`` / ``sy:updateFrequency``
    (the period divided by the frequency, which defaults to 1)."""
    ttl = _positive_number(feed.get("ttl"))
    if ttl is not None:
        return ttl * 60.0
    period = _UPDATE_PERIODS.get(str(feed.get("sy_updateperiod") or "").strip().lower())
    if period is None:
        return None
    frequency = _positive_number(feed.get("sy_updatefrequency") or "1")
    return period / frequency if frequency is not None else None


def _positive_number(value: object) -> float | None:
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if 0 < number < float("inf") else None
