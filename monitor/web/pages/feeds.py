"""The feeds pages: every feed's health as ``monitor feeds`` shows it, sortable by any
column; one feed with its recent polls, its recent items and its error history; pausing
and resuming a feed.

Input: the running service's store and settings, the list's ``sort``, ``dir`` and ``page``
parameters (a value the page cannot take falls back to the default order: failing feeds
first), the Pause and Resume forms. Output: the pages, or after a pause or a resume a 303
back to the feed's page saying what was done. The list sorts in Python over one query of
the feeds (as the overview reads them) and shows :data:`PAGE` of them at a time; a feed's
page reads its row, its kept polls (at most 70 rows, see :mod:`monitor.store.polls`) and
its newest :data:`ITEMS` items. Pausing is the API's store call (``pause_feed``): it takes
effect at the next claim, and a poll under way finishes. URLs are shown without the
credentials they may carry; everything a feed wrote is escaped by the templates.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode, urljoin

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from httpfields import redact_url
from monitor.config import Settings
from monitor.store import FeedStatus, ListedItem
from monitor.trial import feed_tags
from monitor.types import FeedState, frozen
from monitor.web.context import get_context
from monitor.web.pages.base import PageError, pages_router, render

router = pages_router()
PAGE = 200  # feeds per page of the list
ITEMS = 50  # newest items on a feed's page
MAX_ID = 2**63 - 1
DONE = {"paused": "Paused: the feed is not polled until resumed.", "resumed": "Resumed."}
# the list's order when none (or one the page cannot take) is given: failing feeds first
DEFAULT_SORT, DEFAULT_DIR = "state", "asc"
# how the state column sorts: what needs someone first
_STATE_RANK = {"error": 0, "gone": 1, "new": 2, "paused": 3, "ok": 4, "removed": 5}


@frozen
class Column:
    """A sortable column of the list: its parameter, its heading, the direction a first
    click sorts it in, whether a phone hides it."""

    key: str
    label: str
    first: str = "asc"
    narrow: bool = True  # shown at phone width
    numeric: bool = False


COLUMNS = (
    Column(key="name", label="Feed"),
    Column(key="state", label="State"),
    Column(key="last", label="Last poll", first="desc"),
    Column(key="status", label="Status", narrow=False, numeric=True),
    Column(key="errors", label="Errors", first="desc", numeric=True),
    Column(key="items", label="Items", first="desc", narrow=False, numeric=True),
    Column(key="next", label="Next poll", narrow=False),
    Column(key="source", label="Source", narrow=False),
)
_BY_KEY = {c.key: c for c in COLUMNS}


@frozen
class Line:
    """One feed as the list and the feed's page show it: its state as shown (paused and
    removed feeds say so), URLs without credentials, its tags by the pipeline's rule."""

    feed: FeedStatus
    shown_state: str
    url: str
    configured_url: str
    tags: tuple[str, ...]

    @property
    def failing(self) -> bool:
        return self.shown_state in ("error", "gone")


def shown_state(feed: FeedStatus) -> str:
    if not feed.active:
        return "removed"
    if feed.paused_at is not None:
        return "paused"
    return str(feed.state)


def line_of(feed: FeedStatus, settings: Settings) -> Line:
    return Line(
        feed=feed,
        shown_state=shown_state(feed),
        url=redact_url(feed.url),
        configured_url=redact_url(feed.configured_url),
        tags=tuple(sorted(feed_tags(settings, feed))),
    )


_KEYS: dict[str, Callable[[FeedStatus], Any]] = {
    "name": lambda f: f.name.casefold(),
    "state": lambda f: _STATE_RANK.get(shown_state(f), 9),
    "last": lambda f: f.last_polled_at,
    "status": lambda f: f.last_status,
    "errors": lambda f: f.error_count,
    "items": lambda f: f.items,
    "next": lambda f: None if shown_state(f) in ("paused", "removed") else f.next_poll_at,
    "source": lambda f: str(f.source),
}


def sort_feeds(feeds: list[FeedStatus], sort: str, direction: str) -> list[FeedStatus]:
    """The feeds by one column, ties by name; a feed without a value (never polled, not
    due) comes last in either direction."""
    key = _KEYS[sort]
    by_name = sorted(feeds, key=lambda f: (f.name.casefold(), f.id))
    valued = [f for f in by_name if key(f) is not None]
    valued.sort(key=key, reverse=direction == "desc")  # stable: ties stay by name
    return valued + [f for f in by_name if key(f) is None]


def _order(sort: str | None, direction: str | None) -> tuple[str, str]:
    """The order asked for, or the default one if the page cannot take it."""
    if sort not in _BY_KEY:
        return DEFAULT_SORT, DEFAULT_DIR
    if direction not in ("asc", "desc"):
        direction = _BY_KEY[sort].first
    return sort, direction


def _page_number(raw: str | None, pages: int) -> int:
    if raw is None or not raw.isdigit() or len(raw) > 9:
        return 1
    return min(max(int(raw), 1), pages)


def list_link(sort: str, direction: str, page: int = 1) -> str:
    values = {"sort": sort, "dir": direction} | ({"page": str(page)} if page > 1 else {})
    return "/feeds?" + urlencode(values)


@frozen
class Heading:
    """A column heading: where a click leads, and the order it shows (if it is sorted)."""

    column: Column
    link: str
    sorted: str | None  # "ascending", "descending" or None (aria-sort's values)


def headings(sort: str, direction: str) -> list[Heading]:
    out = []
    for column in COLUMNS:
        if column.key == sort:
            flipped = "desc" if direction == "asc" else "asc"
            current = "ascending" if direction == "asc" else "descending"
            out.append(Heading(column=column, link=list_link(sort, flipped), sorted=current))
        else:
            out.append(
                Heading(column=column, link=list_link(column.key, column.first), sorted=None)
            )
    return out


@router.get("/feeds", response_class=HTMLResponse)
def feeds_list(
    request: Request,
    sort: Annotated[str | None, Query()] = None,
    direction: Annotated[str | None, Query(alias="dir")] = None,
    page: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    ctx = get_context(request)
    sort_by, direction = _order(sort, direction)
    feeds = sort_feeds(ctx.store.list_feeds(), sort_by, direction)
    pages = max(1, -(-len(feeds) // PAGE))
    number = _page_number(page, pages)
    shown = feeds[(number - 1) * PAGE : number * PAGE]
    states = [shown_state(f) for f in feeds]
    return render(
        request,
        "feeds.html",
        {
            "lines": [line_of(f, ctx.settings) for f in shown],
            "headings": headings(sort_by, direction),
            "total": len(feeds),
            "failing": sum(s in ("error", "gone") for s in states),
            "paused": states.count("paused"),
            "page": number,
            "pages": pages,
            "previous": list_link(sort_by, direction, number - 1) if number > 1 else None,
            "next": list_link(sort_by, direction, number + 1) if number < pages else None,
        },
    )


def _feed_id(raw: str) -> int:
    """A feed's id from the path; anything else is no such feed (a page, not a 422)."""
    if not raw.isdigit() or len(raw) > 19 or not 1 <= int(raw) <= MAX_ID:
        raise PageError(404, "There is no such feed.")
    return int(raw)


@frozen
class ShownItem:
    title: str
    link: str | None  # absolute, against the feed's URL; the template shows http(s) only
    published: datetime | None
    first_seen_at: datetime


def _shown_item(row: ListedItem, base: str) -> ShownItem:
    item = row.stored.item
    link = urljoin(base, item.link.strip()) if item.link else None
    return ShownItem(
        title=item.title,
        link=link,
        published=item.published,
        first_seen_at=row.stored.first_seen_at,
    )


@router.get("/feeds/{feed_id}", response_class=HTMLResponse)
def feed_page(
    request: Request,
    feed_id: str,
    done: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    ctx = get_context(request)
    store = ctx.store
    found = store.find_feed(feed_id=_feed_id(feed_id))
    history = store.poll_history(found.id) if found else None
    if found is None or history is None:
        raise PageError(404, "There is no such feed.")
    line = line_of(found, ctx.settings)
    items = store.page_items(after=None, limit=ITEMS, feed_id=found.id)
    return render(
        request,
        "feed.html",
        {
            "line": line,
            "history": history,
            "items": [_shown_item(i, line.url) for i in items],
            "items_limit": ITEMS,
            "done": DONE.get(done or ""),
            "gone": found.state == FeedState.GONE,
        },
    )


@router.post("/feeds/{feed_id}/pause")
def pause(request: Request, feed_id: str) -> Response:
    return _pause(request, feed_id, pause=True)


@router.post("/feeds/{feed_id}/resume")
def resume(request: Request, feed_id: str) -> Response:
    return _pause(request, feed_id, pause=False)


def _pause(request: Request, raw_id: str, *, pause: bool) -> Response:
    ctx = get_context(request)
    feed_id = _feed_id(raw_id)
    if not ctx.store.pause_feed(feed_id, ctx.app.clock() if pause else None):
        raise PageError(404, "There is no such feed.")
    done = "paused" if pause else "resumed"
    return RedirectResponse(f"/feeds/{feed_id}?done={done}", 303)
