"""Searching the stored items in the watchlists' query language: what the JSON API
(``/api/items``) and the dashboard's items page share.

Input: the store, a compiled query (or none: list everything), where the previous page
stopped, and the feed and time filters. Output: a :class:`SearchPage`, the items found
newest first with why each matched, where the next page starts, and how many items were
looked at. The search runs in Python with the matcher alerting uses, so it folds case,
scripts and inflections as matching does (SQL ``LIKE`` folds ASCII only), and it looks at
no more than ``max_scan`` items per call: a page may hold fewer items than asked for and
still have a next position, which goes on where this one stopped looking.

It does not read request parameters, encode cursors or render anything: each caller says
a malformed query, an unknown feed or a bad cursor its own way.
"""

from __future__ import annotations

from datetime import datetime

from monitor.match import Matcher, compile_query
from monitor.store import ItemPosition, ListedItem, Store
from monitor.types import MatchContext, MatchDetail, Watchlist, frozen

MAX_QUERY = 1000  # characters of a search query
MAX_SCAN = 2000  # items a search looks at per call: bounded work, whatever it finds
SCAN_BATCH = 250  # items read from the database at a time while searching


@frozen
class ItemHit:
    """A stored item on a page; ``matches`` say why it matches the query (empty without)."""

    row: ListedItem
    matches: tuple[MatchDetail, ...]


@frozen
class SearchPage:
    """``next``: where the next page starts (None: nothing is left). ``bounded``: the search
    stopped because it had looked at its most items, not because the page was full."""

    hits: tuple[ItemHit, ...]
    next: ItemPosition | None
    scanned: int
    bounded: bool = False


def search_matcher(query: str) -> Matcher:
    """The matcher of a search query; raises :class:`~monitor.errors.QueryError` (with the
    position of the fault) for a malformed one."""
    compile_query(query)  # its error names the position in this query, not a watchlist
    return Matcher([Watchlist(name="q", query=query)])


def find_feed_id(store: Store, feed: str) -> int | None:
    """The id of the feed with this name or URL (configured or moved to), if any."""
    for row in store.list_feeds():
        if feed in {row.configured_url, row.url, row.name}:
            return row.id
    return None


def position_of(row: ListedItem) -> ItemPosition:
    return ItemPosition(first_seen_at=row.stored.first_seen_at, id=row.id)


def search_items(
    store: Store,
    matcher: Matcher | None,
    *,
    after: ItemPosition | None,
    limit: int,
    since: datetime | None = None,
    feed_id: int | None = None,
    max_scan: int = MAX_SCAN,
    batch: int = SCAN_BATCH,
) -> SearchPage:
    """Up to ``limit`` items after ``after`` (those matching ``matcher`` when given),
    looking at ``max_scan`` items at most, read ``batch`` at a time."""
    if matcher is None:
        rows = store.page_items(after=after, limit=limit + 1, since=since, feed_id=feed_id)
        hits = tuple(ItemHit(row=row, matches=()) for row in rows[:limit])
        following = position_of(rows[limit - 1]) if len(rows) > limit else None
        return SearchPage(hits=hits, next=following, scanned=len(hits))
    found: list[ItemHit] = []
    scanned = 0
    position = after
    while True:
        want = min(batch, max_scan - scanned)
        rows = store.page_items(after=position, limit=want, since=since, feed_id=feed_id)
        for row in rows:
            scanned += 1
            position = position_of(row)
            context = MatchContext(feed_name=row.stored.feed_name, feed_url=row.stored.feed_url)
            matched = matcher.match_item(row.stored.item, context)
            if matched:
                found.append(ItemHit(row=row, matches=matched[0].matches))
                if len(found) == limit:
                    return SearchPage(hits=tuple(found), next=position, scanned=scanned)
        if len(rows) < want:
            return SearchPage(hits=tuple(found), next=None, scanned=scanned)
        if scanned >= max_scan:
            return SearchPage(hits=tuple(found), next=position, scanned=scanned, bounded=True)
