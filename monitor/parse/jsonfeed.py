"""JSON Feed reader, for the parse stage (feedparser 6 cannot read JSON Feed).

Input: the bytes of a JSON Feed 1.0 or 1.1 document (https://jsonfeed.org/version/1.1).
Output: a ``JsonFeed`` holding the spec's own fields, still raw (HTML not stripped,
URLs not resolved), and :func:`parse_json_feed` turns those into a ``ParsedFeed`` like any
other feed's.
Raises ``ParseError`` for invalid JSON or JSON that is not a JSON Feed. It does not touch
the network, and it does not validate fields the monitor never reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html import unescape
from typing import Any

from monitor.errors import ParseError
from monitor.parse.html import html_to_text, plain_to_text
from monitor.parse.items import absolute_link, distinct, make_item, unique_items
from monitor.parse.text import one_line
from monitor.types import Item, ParsedFeed, frozen

_VERSION_PREFIX = "https://jsonfeed.org/version/"
_JSON_TYPES = frozenset({"application/feed+json", "application/json"})
_LEADING_JUNK = b"\xef\xbb\xbf \t\r\n"  # UTF-8 BOM and JSON whitespace (RFC 8259 section 2)


@frozen
class JsonItem:
    """One JSON Feed item. Dates are timezone-aware UTC, or None if absent or unreadable."""

    id: str | None
    url: str | None
    title: str
    content_html: str
    content_text: str
    summary: str
    authors: tuple[str, ...]
    tags: tuple[str, ...]
    date_published: datetime | None
    date_modified: datetime | None


@frozen
class JsonFeed:
    title: str
    home_page_url: str | None
    items: tuple[JsonItem, ...]


def looks_like_json(body: bytes, content_type: str) -> bool:
    """JSON by content: an object; or JSON by label, unless the body is plainly XML.

    The body decides first because servers label feeds carelessly (JSON Feeds served as
    ``text/plain``, RSS served as ``application/json``).
    """
    start = body.lstrip(_LEADING_JUNK)[:1]
    if start == b"{":
        return True
    media_type = content_type.split(";")[0].strip().lower()
    return media_type in _JSON_TYPES and start != b"<"


def read_json_feed(body: bytes, *, url: str) -> JsonFeed:
    """Decode a JSON Feed. Lenient where the spec is routinely ignored (ids that are
    numbers, RFC 822 dates, a missing version string when ``items`` is present)."""
    try:
        document = json.loads(body.decode("utf-8-sig"))
    except (ValueError, RecursionError) as exc:
        # ValueError: undecodable bytes, invalid JSON, and numbers too long to convert;
        # RecursionError: arrays or objects nested deeper than the decoder recurses.
        raise ParseError(url, f"invalid JSON Feed: {exc}") from exc
    if not isinstance(document, dict):
        raise ParseError(url, "not a feed (JSON document is not an object)")
    version = document.get("version")
    items = document.get("items")
    is_versioned = isinstance(version, str) and version.startswith(_VERSION_PREFIX)
    if not isinstance(items, list) or not (is_versioned or "title" in document):
        raise ParseError(url, "not a feed (JSON document is not a JSON Feed)")
    return JsonFeed(
        title=_string(document.get("title")),
        home_page_url=_string(document.get("home_page_url")) or None,
        items=tuple(_read_item(entry) for entry in items if isinstance(entry, dict)),
    )


def _read_item(entry: Mapping[str, Any]) -> JsonItem:
    raw_id = entry.get("id")
    # Version 1.0 allowed numeric ids; 1.1 says "string" but readers must cope with both.
    item_id = str(raw_id).strip() if isinstance(raw_id, str | int | float) else ""
    return JsonItem(
        id=item_id or None,
        url=_string(entry.get("url")) or _string(entry.get("external_url")) or None,
        title=_string(entry.get("title")),
        content_html=_string(entry.get("content_html")),
        content_text=_string(entry.get("content_text")),
        summary=_string(entry.get("summary")),
        authors=_authors(entry),
        tags=tuple(tag.strip() for tag in entry.get("tags") or () if isinstance(tag, str)),
        date_published=_date(entry.get("date_published")),
        date_modified=_date(entry.get("date_modified")),
    )


def _authors(entry: Mapping[str, Any]) -> tuple[str, ...]:
    """Version 1.1 ``authors`` (a list), else version 1.0 ``author`` (one object)."""
    people = entry.get("authors")
    if not isinstance(people, list):
        people = [entry.get("author")]
    names = (_string(p.get("name")) for p in people if isinstance(p, dict))
    return tuple(name for name in names if name)


def _string(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _date(value: object) -> datetime | None:
    """RFC 3339 as the spec says; RFC 822 because feeds converted from RSS use it."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:  # no offset given: RFC 3339 has none, UTC is the usual intent
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        return None


def parse_json_feed(body: bytes, *, url: str) -> ParsedFeed:
    """A JSON Feed document as a ``ParsedFeed``, like any other feed."""
    feed = read_json_feed(body, url=url)
    return ParsedFeed(
        title=one_line(plain_to_text(unescape(feed.title))),
        link=absolute_link(url, feed.home_page_url),
        items=unique_items(_item_from_json(item, url) for item in feed.items),
    )


def _item_from_json(item: JsonItem, base: str) -> Item:
    """JSON Feed text fields are plain text by the spec, but publishers put HTML
    entities in titles (``&#8211;``): entities are decoded, tags are left alone."""
    if item.content_html:
        content = html_to_text(item.content_html)
    else:
        content = plain_to_text(item.content_text)
    return make_item(
        guid=item.id,
        link=absolute_link(base, item.url),
        title=one_line(plain_to_text(unescape(item.title))),
        summary=plain_to_text(unescape(item.summary)),
        content=content,
        author=", ".join(distinct(plain_to_text(name) for name in item.authors)),
        categories=distinct(plain_to_text(tag) for tag in item.tags),
        published=item.date_published,
        updated=item.date_modified,
    )
