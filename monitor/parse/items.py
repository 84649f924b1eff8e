"""Items as every feed format ends up: identity, content hash, absolute links, one key once.

Input: the fields a format's reader found, already plain text. Output: ``Item`` values.
Pure; it neither reads a document nor decides what is new (the pipeline does, by ``key``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urljoin, urlsplit

from monitor.parse.text import clean_line, clean_link, clean_text, one_line
from monitor.types import Item

_LINK_SCHEMES = frozenset({"http", "https"})


def make_item(
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
    would share one key.

    Every text field is cleaned here, whichever format it came from, so no item holds a
    character that cannot be stored or encoded, or that could rewrite a terminal line
    (:mod:`monitor.parse.text`); single-line fields lose their line breaks too.
    """
    guid = clean_line(guid) if guid else None
    link = clean_link(link) if link else None
    title, author = one_line(title), one_line(author)
    summary, content = clean_text(summary), clean_text(content)
    categories = distinct(one_line(category) for category in categories)
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
    # A separator no text contains (cleaning makes it a space) keeps ("ab", "c") and
    # ("a", "bc") apart; surrogatepass, though cleaned text has no lone surrogate, so that
    # hashing can never fail.
    joined = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.sha256(joined).hexdigest()


def unique_items(items: Iterable[Item]) -> tuple[Item, ...]:
    """The first occurrence of each key (feeds repeat guids; the store keeps one row per
    key), leaving out empty items: an ``<item/>`` with no id, link or text (PCMag's
    illegally nested ones) can be neither shown nor matched."""
    first: dict[str, Item] = {}
    for item in items:
        if substantive(item):
            first.setdefault(item.key, item)
    return tuple(first.values())


def substantive(item: Item) -> bool:
    """Whether an item has anything to show or match: an id, a link or text."""
    return bool(item.guid or item.link or item.title or item.summary or item.content)


def distinct(texts: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(text for text in texts if text))


def absolute_link(base: str, link: object) -> str | None:
    """An absolute http(s) URL, or None: other schemes (javascript:, data:) are not links
    an alert should carry."""
    if not isinstance(link, str) or not link.strip():
        return None
    try:
        absolute = urljoin(base, link.strip())
        scheme = urlsplit(absolute).scheme
    except ValueError:  # "http://[::1" and other unparseable netlocs
        return None
    return clean_link(absolute) if scheme in _LINK_SCHEMES else None
