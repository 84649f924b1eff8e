"""``/api/items``: stored items newest first, optionally searched with a query.

The search is the watchlists' own query language and matcher (``q=Тоқаев``,
``q="World Cup" NOT football``, ``q=title:ОДКБ``), so it folds case, scripts and
inflections the way alerting does, in any script; SQL ``LIKE`` would fold ASCII only. It
runs in Python over the stored items (:mod:`monitor.web.search`), newest first, looking at most at
:data:`MAX_SCAN` items per request: a page may then hold fewer than ``limit`` items and
still have a ``next``, which goes on where this one stopped looking. A malformed query is
a 400 with the reason and its position.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from pydantic import BaseModel, Field

from monitor.errors import QueryError
from monitor.match import Matcher
from monitor.store import Store
from monitor.web.api.base import Bad, api_router, running_app
from monitor.web.api.models import ItemOut, MatchOut
from monitor.web.api.paging import Cursor, Limit, Since, item_cursor, parse_since
from monitor.web.api.paging import read_item_cursor as read_cursor
from monitor.web.search import MAX_QUERY, MAX_SCAN, SCAN_BATCH, find_feed_id, search_items
from monitor.web.search import search_matcher as compile_search

router = api_router()


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
    page = search_items(
        app.store,
        matcher,
        after=after,
        limit=limit,
        since=start,
        feed_id=feed_id,
        max_scan=MAX_SCAN,  # read here, at each request: a test may lower them
        batch=SCAN_BATCH,
    )
    items = [
        FoundItem(
            **ItemOut.of(hit.row.stored, id=hit.row.id, feed_id=hit.row.feed_id).model_dump(),
            matches=[MatchOut.of(m) for m in hit.matches],
        )
        for hit in page.hits
    ]
    following = item_cursor(page.next) if page.next else None
    return ItemPage(items=items, next=following, scanned=page.scanned)


def _search_matcher(q: str) -> Matcher:
    try:
        return compile_search(q)
    except QueryError as exc:
        raise Bad("q", f"at position {exc.position}: {exc.reason}", position=exc.position) from None


def _feed_id(store: Store, feed: str) -> int:
    found = find_feed_id(store, feed)
    if found is None:
        raise Bad("feed", "no feed has this name or URL")
    return found
