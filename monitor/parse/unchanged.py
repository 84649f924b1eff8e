"""The items a document served at the last poll, recognised by their bytes, so that only
the others are parsed.

A feed that changed has usually gained an item or two and kept the rest byte for byte, and
feedparser's cost is per item: parsing a 50-item document for its one new item is almost all
waste. So a well-formed document is cut into its items' byte ranges (expat, which checks
the document on the way), each range is hashed, and the ranges whose hash the last parse of
the feed recorded (its *fingerprint*) are left out of the document that feedparser reads.
What an item parses to depends only on its own bytes and on what encloses it: the prolog
and the start tags of the root and the channel (namespaces, ``xml:base``), the URL that
relative links resolve against and the encoding. Those are hashed into the fingerprint too,
and any change there makes every item new to it.

The fingerprint is ``context (16 bytes)`` followed by, for each item range in document
order, ``hash of its bytes (8) + hash of its item's key (8)`` (the key hash is zero for a
range that made no item): about 800 bytes for a feed of 50 items. The key hashes keep "the
first item of a key wins" true across the ranges left out
(:func:`~monitor.parse.items.unique_items`). Eight bytes are enough: two ranges of one feed
that collide by chance are one in 10^17; a feed's author crafting two that collide only
hides their own second item; and an item colliding with one nobody has written yet would
take a second preimage.

The feed's own ``<category>`` elements (under the channel, or an Atom feed's root) are left
out of what feedparser reads, whole parse or not: nothing here uses them, and feedparser's
cost for them grows with the square of their number (each is checked against all before
it). A Blogger feed lists every label of its blog there: 1,800 of them made a changed
document with one new item 200 ms of parsing instead of about 10.

The functions are pure; :class:`Fingerprints` is what the pipeline remembers between polls
(only once the items are stored).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from xml.parsers import expat

from monitor.types import Item, frozen

_CONTEXT_HASH = 16
_RANGE_HASH = 8
_KEY_HASH = 8
_RECORD = _RANGE_HASH + _KEY_HASH
_NO_KEY = bytes(_KEY_HASH)
MAX_ITEMS = 1000  # a document with more is always parsed whole: its fingerprint is not kept
# A feed is parsed whole at least this often (seconds), so that the store sees every item it
# serves: retention keeps the tombstone of a pruned item while its feed still serves it,
# and the shortest retention is a day.
RECHECK = 6 * 3600.0
_ITEM_NAMES = frozenset({"item", "entry"})  # RSS and RDF, Atom; by local name
_FEED_NAMES = frozenset({"channel", "feed"})  # what holds the feed's own elements
_XML_BASE = "http://www.w3.org/XML/1998/namespace base"  # as expat names xml:base
# The end of the tag that starts here: a ">" outside quoted attribute values.
_TAG_END = re.compile(rb"""(?:[^>"']|"[^"]*"|'[^']*')*>""")


@frozen
class Layout:
    """A document cut into its item ranges."""

    data: bytes
    context: bytes  # hash of what every item's parse depends on outside its own bytes
    ranges: tuple[tuple[int, int], ...]  # [start, end) of each item, in document order
    hashes: tuple[bytes, ...]  # each range's hash
    unused: tuple[tuple[int, int], ...] = ()  # the feed's own categories: never read


def layout(data: bytes, *, url: str, encoding: str) -> Layout | None:
    """The document's item ranges, or None when it is not cut: not well-formed XML with
    namespaces (for expat, which is what feedparser's strict parser uses), no item, more
    than ``MAX_ITEMS``, an item not directly under the root or a ``channel`` element, or
    an ``xml:base`` inside an item: feedparser keeps that base after the element closes
    when no enclosing element set one, so later items' links depend on earlier items."""
    if not encoding:  # undecoded bytes: feedparser reads them its own way
        return None
    finder = _Finder(data)
    try:
        finder.parser.Parse(data, True)
    except (expat.ExpatError, _Unsupported, ValueError):
        return None
    ranges = finder.ranges
    if not ranges:
        return None
    context = hashlib.blake2b(digest_size=_CONTEXT_HASH)
    for part in (url.encode("utf-8", "surrogatepass"), encoding.encode(), *finder.enclosing):
        context.update(len(part).to_bytes(8, "big"))
        context.update(part)
    hashes = tuple(_range_hash(data[start:end]) for start, end in ranges)
    return Layout(
        data=data,
        context=context.digest(),
        ranges=tuple(ranges),
        hashes=hashes,
        unused=tuple(finder.unused),
    )


def known_ranges(layout: Layout, fingerprint: bytes | None) -> dict[int, bytes]:
    """The ranges of ``layout`` that ``fingerprint`` recorded: index -> its item's key hash."""
    if not fingerprint or fingerprint[:_CONTEXT_HASH] != layout.context:
        return {}
    recorded = {
        fingerprint[at : at + _RANGE_HASH]: fingerprint[at + _RANGE_HASH : at + _RECORD]
        for at in range(_CONTEXT_HASH, len(fingerprint), _RECORD)
    }
    return {i: recorded[h] for i, h in enumerate(layout.hashes) if h in recorded}


def without(layout: Layout, skipped: Mapping[int, bytes]) -> bytes:
    """The document without the item ranges in ``skipped`` and the unused ones: still
    well-formed, since each is a whole element."""
    parts, position = [], 0
    for start, end in sorted([*(layout.ranges[i] for i in skipped), *layout.unused]):
        parts.append(layout.data[position:start])
        position = end
    parts.append(layout.data[position:])
    return b"".join(parts)


def merge(
    layout: Layout, skipped: Mapping[int, bytes], parsed: Sequence[Item | None]
) -> tuple[tuple[Item, ...], bytes]:
    """The items parsed (one per range not skipped, in order; None for a range that made
    no item), each key once, the first in document order winning, skipped ranges included;
    and the fingerprint of the whole document, for the next poll."""
    kept = iter(parsed)
    items: list[Item] = []
    seen: set[bytes] = set()
    records = [layout.context]
    for i, range_hash in enumerate(layout.hashes):
        if i in skipped:
            key_hash = skipped[i]
        else:
            item = next(kept)
            key_hash = _key_hash(item.key) if item is not None else _NO_KEY
            if item is not None and key_hash not in seen:
                items.append(item)
        if key_hash != _NO_KEY:
            seen.add(key_hash)
        records += (range_hash, key_hash)
    return tuple(items), b"".join(records)


def _range_hash(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=_RANGE_HASH).digest()


def _key_hash(key: str) -> bytes:
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=_KEY_HASH).digest()


class Fingerprints:
    """The last fingerprint of each feed, in memory: a restart parses each feed whole once.
    One older than ``recheck`` seconds (from the last whole parse) is not used, and is
    dropped when the others are next swept (every ``recheck``): a feed removed, or no longer
    changing, holds nothing for long."""

    def __init__(
        self, recheck: float = RECHECK, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.recheck = recheck
        self.clock = clock
        self._kept: dict[int, tuple[float, bytes]] = {}  # feed id -> (whole parse, fingerprint)
        self._swept = clock()

    def get(self, feed_id: int) -> bytes | None:
        kept = self._kept.get(feed_id)
        if kept is None or self.clock() - kept[0] > self.recheck:
            return None
        return kept[1]

    def put(self, feed_id: int, fingerprint: bytes | None, *, whole: bool) -> None:
        """Remember the fingerprint of a parse whose items are stored; ``whole``: that
        parse used no fingerprint."""
        if fingerprint is None:
            self._kept.pop(feed_id, None)
            return
        now = self.clock()
        since = self._kept[feed_id][0] if not whole and feed_id in self._kept else now
        self._kept[feed_id] = (since, fingerprint)
        if now - self._swept > self.recheck:
            self._swept = now
            stale = [
                feed for feed, (whole_at, _) in self._kept.items() if now - whole_at > self.recheck
            ]
            for feed in stale:
                del self._kept[feed]

    def __len__(self) -> int:
        return len(self._kept)


class _Unsupported(Exception):
    """An item somewhere other than under the root or a channel."""


class _Finder:
    """Expat's callbacks: the item ranges, and the bytes enclosing them (everything up to
    the end of the root's start tag, and the start tag of each channel holding items)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.ranges: list[tuple[int, int]] = []
        self.unused: list[tuple[int, int]] = []
        self.enclosing: list[bytes] = []
        self._path: list[str] = []  # local names of the open elements
        self._starts: list[int] = []  # where each open element's start tag begins
        self._item_depth = 0  # depth of the open item, 0 when none is open
        self._item_start = 0
        self._unused_depth = 0  # depth of the open unused element, 0 when none is open
        self._unused_start = 0
        self._channels: set[int] = set()  # channel start offsets already in ``enclosing``
        parser = expat.ParserCreate(namespace_separator=" ")
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        self.parser = parser

    def _start(self, name: str, attributes: dict[str, str]) -> None:
        start = self.parser.CurrentByteIndex
        local = name.rpartition(" ")[2]
        self._path.append(local)
        self._starts.append(start)
        depth = len(self._path)
        if depth == 1:
            self.enclosing.append(self.data[: self._tag_end(start)])
        item = self._item_depth or local in _ITEM_NAMES
        if item and (_XML_BASE in attributes or "base" in attributes):
            raise _Unsupported("xml:base in an item")
        if local == "category" and not item and 2 <= depth <= 3 and self._path[-2] in _FEED_NAMES:
            self._unused_depth, self._unused_start = depth, start
            return
        if self._item_depth or local not in _ITEM_NAMES:
            return
        if depth == 2:
            pass
        elif depth == 3 and self._path[1] == "channel":
            channel = self._starts[1]
            if channel not in self._channels:
                self._channels.add(channel)
                self.enclosing.append(self.data[channel : self._tag_end(channel)])
        else:
            raise _Unsupported(name)
        self._item_depth, self._item_start = depth, start

    def _end(self, _name: str) -> None:
        if len(self._path) == self._unused_depth:
            self.unused.append((self._unused_start, self._element_end(self._unused_start)))
            self._unused_depth = 0
        if len(self._path) == self._item_depth:
            end = self._element_end(self._item_start)
            self.ranges.append((self._item_start, end))
            self._item_depth = 0
            if len(self.ranges) > MAX_ITEMS:  # stop here: not a range more held
                raise _Unsupported("too many items")
        self._path.pop()
        self._starts.pop()

    def _element_end(self, start: int) -> int:
        """The end of the element whose start tag begins at ``start`` and which expat just
        closed: the end of its end tag, or of its start tag when that closes it (``<x/>``;
        expat's position at its end is past it)."""
        tag_end = self._tag_end(start)
        if self.data[tag_end - 2 : tag_end] == b"/>":
            return tag_end
        return self._tag_end(self.parser.CurrentByteIndex)

    def _tag_end(self, start: int) -> int:
        found = _TAG_END.match(self.data, start)
        if found is None:
            raise _Unsupported("a tag without an end")
        return found.end()
