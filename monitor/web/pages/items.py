"""The items page: the stored items newest first, searched in the watchlists' language.

Input: the GET form (a query, a feed, how far back) and the cursor of the page before.
Output: a page of items, each with its feed and times, a summary excerpt and, when
searching, the snippets that matched with the matched text marked. The search is the API's
(:mod:`monitor.web.search`): it folds case, scripts and inflections as matching does and
looks at :data:`MAX_SCAN` items at most per request; when it stops there the page says so
and links on to where it stopped. A malformed query is the form again with the reason and
the place of the fault (status 400), never a server error. It changes nothing.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from monitor.errors import QueryError
from monitor.match import Matcher
from monitor.store import ItemPosition
from monitor.web.api.base import ApiError
from monitor.web.api.paging import item_cursor, parse_since, read_item_cursor
from monitor.web.context import get_context
from monitor.web.pages.base import pages_router, render
from monitor.web.search import MAX_QUERY, MAX_SCAN, SCAN_BATCH, search_items, search_matcher

router = pages_router()
PAGE = 50  # items per page
EXCERPT = 280  # characters of a summary shown
SINCE = (("", "any time"), ("24h", "last 24 hours"), ("7d", "last 7 days"), ("30d", "last 30 days"))

Text = Annotated[str | None, Query(max_length=4096)]


@router.get("/items", response_class=HTMLResponse)
def items(
    request: Request,
    q: Text = None,
    feed: Text = None,
    since: Text = None,
    cursor: Text = None,
) -> HTMLResponse:
    ctx = get_context(request)
    query, feed_text, since_text = (q or "").strip(), (feed or "").strip(), (since or "").strip()
    feeds = sorted(ctx.store.list_feeds(count_items=False), key=lambda f: f.name.casefold())
    form = {"q": query, "feed": feed_text, "since": since_text}
    shown = {
        "form": form,
        "feeds": feeds,
        "since_choices": _since_choices(since_text),
        "fault": None,
        "error": None,
        "hits": (),
        "page": None,
        "older": None,
        "newest": _link(_kept(form)) if cursor else None,
        "excerpt": EXCERPT,
        "searching": bool(query),
    }
    try:
        after = read_item_cursor(cursor) if cursor else None
        start = parse_since(since_text, ctx.app.clock()) if since_text else None
        feed_id = _feed_id(feed_text, {f.id for f in feeds})
        matcher = _matcher(query)
    except ApiError as exc:
        return render(request, "items.html", {**shown, "error": exc.body.error}, status=400)
    except QueryError as exc:
        fault = {"position": exc.position, "reason": exc.reason, "query": query}
        return render(request, "items.html", {**shown, "fault": fault}, status=400)
    page = search_items(
        ctx.store,
        matcher,
        after=after,
        limit=PAGE,
        since=start,
        feed_id=feed_id,
        max_scan=MAX_SCAN,
        batch=SCAN_BATCH,
    )
    older = _older(form, page.next) if page.next else None
    return render(
        request,
        "items.html",
        {**shown, "hits": page.hits, "page": page, "older": older},
    )


def _matcher(query: str) -> Matcher | None:
    if not query:
        return None
    if len(query) > MAX_QUERY:
        raise ApiError(400, f"The query is longer than {MAX_QUERY} characters.")
    return search_matcher(query)


def _feed_id(text: str, known: set[int]) -> int | None:
    if not text:
        return None
    if not text.isdigit() or int(text) not in known:
        raise ApiError(400, "There is no such feed.")
    return int(text)


def _kept(form: dict[str, str]) -> dict[str, str]:
    """The form's filled fields, for links that keep the search."""
    return {name: value for name, value in form.items() if value}


def _older(form: dict[str, str], position: ItemPosition) -> str:
    return _link({**_kept(form), "cursor": item_cursor(position)})


def _link(params: dict[str, str]) -> str:
    return f"/items?{urlencode(params)}" if params else "/items"


def _since_choices(current: str) -> list[tuple[str, str]]:
    """The time filter's choices, with one typed into the address kept as it was."""
    known = [value for value, _ in SINCE]
    return [*SINCE, (current, current)] if current not in known else list(SINCE)
