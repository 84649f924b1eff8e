"""``/api/items``: stored items newest first, optionally searched with a query.

The search is the watchlists' own query language and matcher (``q=Тоқаев``,
``q="World Cup" NOT football``, ``q=title:ОДКБ``), so it folds case, scripts and
inflections the way alerting does, in any script; SQL ``LIKE`` would fold ASCII only. It
runs in Python over the stored items, newest first, looking at most at
:data:`MAX_SCAN` items per request: a page may then hold fewer than ``limit`` items and
still have a ``next``, which goes on where this one stopped looking. A malformed query is
a 400 with the reason and its position.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query, Request
from pydantic import BaseModel, Field

from monitor.errors import QueryError
from monitor.match import Matcher, compile_query
from monitor.store import ItemPosition, ListedItem, Store
from monitor.types import MatchContext, MatchDetail, Watchlist
from monitor.web.api.base import Bad, api_router, running_app
from monitor.web.api.models import ItemOut, MatchOut
from monitor.web.api.paging import Cursor, Limit, Since, item_cursor, parse_since
from monitor.web.api.paging import read_item_cursor as read_cursor

router = api_router()
MAX_QUERY = 1000  # characters of a search query
MAX_SCAN = 2000  # items a search looks at per request: bounded work, whatever it finds
SCAN_BATCH = 250  # items read from the database at a time while searching

Found = list[tuple[ListedItem, tuple[MatchDetail, ...]]]


class FoundItem(ItemOut):
    matches: list[MatchOut] = Field(description="Why it matches `q` (empty without `q`).")


class ItemPage(BaseModel):
    items: list[FoundItem]
    next: str | None = Field(description="The cursor of the next page; null on the last.")
    scanned: int = Field(description="Items looked at for this page.")


@router.get("/items", summary="Stored items, newest first, with a text search")
def list_items(
    request: Request,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_QUERY,
            description='A query in the watchlists\' language: words, "phrases", AND, OR, '
            "NOT, NEAR/n, prefix*, field:term.",
        ),
    ] = None,
    feed: Annotated[
        str | None, Query(max_length=2048, description="Only this feed's: its name or URL.")
    ] = None,
    since: Since = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ItemPage:
    app = running_app(request)
    after = read_cursor(cursor)
    matcher = _search_matcher(q) if q is not None else None
    start = parse_since(since, app.clock()) if since is not None else None
    feed_id = _feed_id(app.store, feed) if feed is not None else None
    if matcher is None:
        rows = app.store.page_items(after=after, limit=limit + 1, since=start, feed_id=feed_id)
        found: Found = [(row, ()) for row in rows[:limit]]
        position = _position(rows[limit - 1]) if len(rows) > limit else None
        scanned = len(found)
    else:
        found, position, scanned = _search(app.store, matcher, after, limit, start, feed_id)
    items = [
        FoundItem(
            **ItemOut.of(row.stored, id=row.id, feed_id=row.feed_id).model_dump(),
            matches=[MatchOut.of(m) for m in details],
        )
        for row, details in found
    ]
    return ItemPage(items=items, next=item_cursor(position) if position else None, scanned=scanned)


def _search_matcher(q: str) -> Matcher:
    try:
        compile_query(q)
        return Matcher([Watchlist(name="q", query=q)])
    except QueryError as exc:
        raise Bad("q", f"at position {exc.position}: {exc.reason}", position=exc.position) from None


def _feed_id(store: Store, feed: str) -> int:
    for row in store.list_feeds():
        if feed in {row.configured_url, row.url, row.name}:
            return row.id
    raise Bad("feed", "no feed has this name or URL")


def _position(row: ListedItem) -> ItemPosition:
    return ItemPosition(first_seen_at=row.stored.first_seen_at, id=row.id)


def _search(
    store: Store,
    matcher: Matcher,
    after: ItemPosition | None,
    limit: int,
    since: datetime | None,
    feed_id: int | None,
) -> tuple[Found, ItemPosition | None, int]:
    """Up to ``limit`` matching items after ``after``, looking at :data:`MAX_SCAN` items at
    most; the position to go on from (None: nothing is left) and how many were looked at."""
    found: Found = []
    scanned = 0
    position = after
    while True:
        want = min(SCAN_BATCH, MAX_SCAN - scanned)
        batch = store.page_items(after=position, limit=want, since=since, feed_id=feed_id)
        for row in batch:
            scanned += 1
            position = _position(row)
            context = MatchContext(feed_name=row.stored.feed_name, feed_url=row.stored.feed_url)
            hits = matcher.match_item(row.stored.item, context)
            if hits:
                found.append((row, hits[0].matches))
                if len(found) == limit:
                    return found, position, scanned
        if len(batch) < want:
            return found, None, scanned
        if scanned >= MAX_SCAN:
            return found, position, scanned
