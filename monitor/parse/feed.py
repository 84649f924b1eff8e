"""Parse stage: the bytes of a fetched document -> ``ParsedFeed`` of normalised ``Item``s.

Input: the body (already decoded from gzip/brotli by the fetcher), the final URL (the base
for relative links) and the response headers (only ``Content-Type`` is used). Output: a
``ParsedFeed`` whose items have plain-text fields, absolute http(s) links, UTC dates and a
stable identity ``key``, each key once. RSS 0.9x/1.0/2.0 and Atom go through feedparser 6,
JSON Feed 1.0/1.1 through ``monitor.parse.jsonfeed``. Raises ``ParseError`` for anything that is
not a feed.

Pure: it does not touch the network, the database or the clock, and it keeps no state, so
it can run in a worker process. It does not sanitise HTML for display (every text field is
plain text) and does not decide what is new: that is the store's job, by ``key``.
"""

from __future__ import annotations

import calendar
import codecs
import hashlib
import io
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from html import unescape
from typing import Any
from urllib.parse import urljoin, urlsplit
from xml.sax import SAXParseException

import feedparser
from feedparser.exceptions import CharacterEncodingOverride

from monitor.errors import ParseError
from monitor.parse.html import html_to_text, inspect_html_page, plain_to_text
from monitor.parse.jsonfeed import JsonFeed, JsonItem, looks_like_json, read_json_feed
from monitor.types import Item, ParsedFeed

ENTITY_REFUSAL = "refusing XML entity declarations (possible XXE / entity expansion attack)"

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_LINK_SCHEMES = frozenset({"http", "https"})
# RSS 1.0 syndication module (web.resource.org/rss/1.0/modules/syndication): a month and a
# year are taken as 30 and 365 days, which is all a polling interval needs.
_UPDATE_PERIODS = {
    "hourly": 3600.0,
    "daily": 86400.0,
    "weekly": 7 * 86400.0,
    "monthly": 30 * 86400.0,
    "yearly": 365 * 86400.0,
}
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
# feedparser's own end of the prolog (feedparser.sanitizer.replace_doctype): the entity
# declarations before this point are the ones its fallback parser would expand.
_FIRST_ELEMENT = re.compile(rb"<\w")
# What may precede a DOCTYPE in a well-formed prolog, which is what expat reads.
_PROLOG_MISC = re.compile(rb"\xef\xbb\xbf|\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)
# Byte patterns of wide encodings (XML 1.0 appendix F, as feedparser sniffs them), the codec
# and how many bytes of byte-order mark to skip. UTF-32 first: its LE mark starts FF FE.
_WIDE_MARKERS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", 4),
    (codecs.BOM_UTF32_BE, "utf-32-be", 4),
    (codecs.BOM_UTF16_LE, "utf-16-le", 2),
    (codecs.BOM_UTF16_BE, "utf-16-be", 2),
    (b"\x4c\x6f\xa7\x94", "cp037", 0),  # "<?xm" in EBCDIC
)


def parse_feed(body: bytes, *, url: str, headers: Mapping[str, str]) -> ParsedFeed:
    """Parse one fetched document.

    Malformed XML that still yields items gives those items and a ``warning``. A document
    whose feed type was recognised but which yielded no item because it is broken (a
    truncated download, a server error in mid-render) gives an empty feed with a warning,
    not an error: the feed exists, the next poll may succeed, and an empty feed adds
    nothing. A document whose feed type was not recognised (an HTML page, other XML,
    garbage) raises ``ParseError``; for an HTML page the message names the feed URL the
    page advertises, if any. So does any document declaring XML entities (see
    ``_declares_entities``) and any body that is empty.
    """
    if not body.strip():
        raise ParseError(url, "not a feed (empty body)")
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if looks_like_json(body, content_type):
        return _from_json_feed(read_json_feed(body, url=url), url=url)
    if _declares_entities(body):
        raise ParseError(url, ENTITY_REFUSAL)
    return _from_feedparser(_run_feedparser(body, url, content_type), body=body, url=url)


def _run_feedparser(body: bytes, url: str, content_type: str) -> Any:
    """feedparser on the bytes, never on a str (a str is opened as a path or URL).

    No ``content-location``: with it, feedparser resolves Atom ``<id>`` values against
    the feed URL (Reddit's ``t3_157kyrd`` becomes ``https://host/t3_157kyrd``), so keys
    would change when the feed moves; links are resolved here instead. Sanitising and
    URI rewriting inside HTML are off: every text field ends up as plain text.
    """
    response_headers = {"content-type": _xml_content_type(body, content_type)}
    try:
        return feedparser.parse(
            io.BytesIO(body),
            response_headers=response_headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as exc:  # feedparser's internals may raise anything on hostile input
        raise ParseError(url, f"unreadable feed: {type(exc).__name__}: {exc}") from exc


def _xml_content_type(body: bytes, content_type: str) -> str:
    """The Content-Type to show feedparser: a neutral XML type with the real charset.

    feedparser follows RFC 3023, under which ``text/xml`` without a charset means
    US-ASCII, so every non-ASCII feed would carry an "encoding overridden" warning;
    RFC 7303 replaced that with "use the BOM or the XML declaration", which
    ``application/xml`` gets us. A byte-order mark outranks the charset parameter
    (RFC 7303 section 3.2). A non-XML type (``text/html`` is common) would only add a
    spurious "not an XML media type" warning.
    """
    charset = _bom_charset(body) or _charset_parameter(content_type)
    return f"application/xml; charset={charset}" if charset else "application/xml"


def _bom_charset(body: bytes) -> str | None:
    if body.startswith(codecs.BOM_UTF8):
        return "utf-8"
    for marker, codec, skip in _WIDE_MARKERS:
        if skip and body.startswith(marker):
            return codec
    return None


def _charset_parameter(content_type: str) -> str | None:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip(" \t\"'"):
            return value.strip(" \t\"'").lower()
    return None


def _declares_entities(body: bytes) -> bool:
    """Whether the document declares XML entities, which are refused before parsing.

    Feeds have no use for them. Expat reads no external entity (feedparser turns off
    ``feature_external_ges``) and stops a billion-laughs expansion (expat >= 2.4), but
    then feedparser falls back to its loose parser, which re-declares the "safe" internal
    entities and expands them without limit: a 1 MB entity used 500 times became a
    500 MB title after 11 s. Checked: declarations before feedparser's end of prolog
    (what the loose parser sees); any, when a DOCTYPE opens the real prolog (expat's).
    """
    data = _ascii_view(body)
    first = _FIRST_ELEMENT.search(data)
    if _ENTITY_DECLARATION.search(data, 0, first.start() if first else len(data)):
        return True
    position = 0
    while (misc := _PROLOG_MISC.match(data, position)) and misc.end() > position:
        position = misc.end()
    if data[position : position + 9].upper() != b"<!DOCTYPE":
        return False
    return _ENTITY_DECLARATION.search(data, position) is not None


def _ascii_view(body: bytes) -> bytes:
    """The body in an ASCII-compatible encoding, so markup can be searched as bytes."""
    for marker, codec, skip in _WIDE_MARKERS:
        if body.startswith(marker):
            return body[skip:].decode(codec, "replace").encode("utf-8")
    head = body[:4]
    if b"\x00" not in head:
        return body
    bits = 32 if head.count(b"\x00") == 3 else 16
    order = "be" if head[:1] == b"\x00" else "le"
    return body.decode(f"utf-{bits}-{order}", "replace").encode("utf-8")


def _from_feedparser(result: Any, *, body: bytes, url: str) -> ParsedFeed:
    entries = result.get("entries") or []
    if not entries and not result.get("version"):
        raise ParseError(url, _not_a_feed(result, body, url))
    feed = result.get("feed") or {}
    return ParsedFeed(
        title=_one_line(_detail_text(feed.get("title_detail"), feed.get("title"))),
        link=_absolute(url, feed.get("link")),
        items=_unique(_item_from_entry(entry, url) for entry in entries),
        ttl_seconds=_ttl_seconds(feed),
        warning=_warning(result, body),
    )


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


def _warning(result: Any, body: bytes) -> str | None:
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
    return _make_item(
        guid=(entry.get("id") or "").strip() or None,
        link=_absolute(base, _entry_link(entry)),
        title=_one_line(_detail_text(entry.get("title_detail"), entry.get("title"))),
        # Without a summary of its own, feedparser copies the content into "summary"
        # (with no summary_detail): reuse that content's text rather than parse it twice.
        summary=contents.get(summary)
        if isinstance(summary, str) and summary in contents
        else _detail_text(entry.get("summary_detail"), summary, html=True),
        content="\n".join(_distinct(contents.values())),
        author=_entry_author(entry),
        categories=_distinct(
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
    names = _distinct(plain_to_text(p.get("name") or "") for p in people if hasattr(p, "get"))
    return ", ".join(names) or plain_to_text(entry.get("author") or "")


def _from_json_feed(feed: JsonFeed, *, url: str) -> ParsedFeed:
    return ParsedFeed(
        title=_one_line(plain_to_text(unescape(feed.title))),
        link=_absolute(url, feed.home_page_url),
        items=_unique(_item_from_json(item, url) for item in feed.items),
    )


def _item_from_json(item: JsonItem, base: str) -> Item:
    """JSON Feed text fields are plain text by the spec, but publishers put HTML
    entities in titles (``&#8211;``): entities are decoded, tags are left alone."""
    if item.content_html:
        content = html_to_text(item.content_html)
    else:
        content = plain_to_text(item.content_text)
    return _make_item(
        guid=item.id,
        link=_absolute(base, item.url),
        title=_one_line(plain_to_text(unescape(item.title))),
        summary=plain_to_text(unescape(item.summary)),
        content=content,
        author=", ".join(_distinct(plain_to_text(name) for name in item.authors)),
        categories=_distinct(plain_to_text(tag) for tag in item.tags),
        published=item.date_published,
        updated=item.date_modified,
    )


def _make_item(
    *,
    guid: str | None,
    link: str | None,
    title: str,
    summary: str,
    content: str,
    author: str,
    categories: tuple[str, ...],
    published: datetime | None,
    updated: datetime | None,
) -> Item:
    """Identity: the guid, else the link, else the text. The text hash covers summary as
    well as title and content, or every untitled description-only item (Scripting News)
    would share one key."""
    if guid:
        key = f"guid:{guid}"
    elif link:
        key = f"link:{link}"
    else:
        key = f"hash:{_sha256(title, summary, content)}"
    return Item(
        key=key,
        guid=guid,
        link=link,
        title=title,
        summary=summary,
        content=content,
        author=author,
        categories=categories,
        published=published,
        updated=updated,
        content_hash=_sha256(title, summary, content, link or ""),
    )


def _sha256(*parts: str) -> str:
    # A separator no text contains keeps ("ab", "c") and ("a", "bc") apart; surrogatepass
    # because JSON may escape lone surrogates.
    joined = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.sha256(joined).hexdigest()


def _unique(items: Iterable[Item]) -> tuple[Item, ...]:
    """The first occurrence of each key (feeds repeat guids; the store keeps one row per
    key), leaving out empty items: an ``<item/>`` with no id, link or text (PCMag's
    illegally nested ones) can be neither shown nor matched."""
    first: dict[str, Item] = {}
    for item in items:
        if item.guid or item.link or item.title or item.summary or item.content:
            first.setdefault(item.key, item)
    return tuple(first.values())


def _distinct(texts: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(text for text in texts if text))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _absolute(base: str, link: object) -> str | None:
    """An absolute http(s) URL, or None: other schemes (javascript:, data:) are not links
    an alert should carry."""
    if not isinstance(link, str) or not link.strip():
        return None
    try:
        absolute = urljoin(base, link.strip())
        scheme = urlsplit(absolute).scheme
    except ValueError:  # "http://[::1" and other unparseable netlocs
        return None
    return absolute if scheme in _LINK_SCHEMES else None


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
