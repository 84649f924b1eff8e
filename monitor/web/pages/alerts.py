"""The alerts page: alerts newest first with their item, feed, matched terms and
deliveries, filtered by watchlist, delivery state and text; and Retry for an alert whose
deliveries failed or were given up.

Input: the running service's store and settings, the page's GET filters, the Retry form.
Output: the page, or after a retry a 303 back to the list the viewer was on. Pages are the
API's keyset pages with the API's cursor (``/api/alerts``): alerts raised while someone
pages on sort before the first page, so paging neither repeats nor skips one. The text
filter is the watchlists' query language and matcher over each alert's item title and
summary, so it folds case, scripts and inflections as alerting does (SQL ``LIKE`` folds
ASCII only); it runs in Python over at most :data:`MAX_SCAN` alerts per request, and when
it stops looking before the page is full the page says so and its Next goes on from
there. A filter value the page cannot take is said on the page (400), never a traceback.
It sends nothing: a retry queues the alert's unsent deliveries again (the API's and
``monitor alerts retry``'s store call) and the outbox sends them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from alerts.base import Alert
from alerts.render import item_link
from monitor.errors import QueryError
from monitor.match import Matcher
from monitor.store import AlertPosition, DeliveryStatus, Store
from monitor.store.queries import ListedAlert
from monitor.types import DeliveryState, Item, MatchContext, frozen
from monitor.web.api.base import ApiError
from monitor.web.api.paging import alert_cursor, read_alert_cursor
from monitor.web.context import get_context
from monitor.web.pages.base import PageError, form_of, pages_router, render, safe_next
from monitor.web.search import search_matcher

router = pages_router()
PAGE = 25  # alerts per page
MAX_SCAN = 2000  # alerts a text filter looks at per request: bounded work, whatever it finds
SCAN_BATCH = 250  # alerts read from the database at a time while filtering by text
MAX_TEXT = 1000  # characters of a text filter (the API's limit for a search)
MAX_NAME = 200  # characters of a watchlist name (the column's size)
SEEN_DAYS = 30  # watchlists with alerts this recent are offered besides the configured ones
RETRYABLE = (DeliveryState.FAILED, DeliveryState.DEAD)
NOTICE = ("done", "queued", "busy")  # the parameters a retry's redirect adds


@frozen
class Filters:
    """The page's filters as given (each None when empty), for the form and the links."""

    watchlist: str | None = None
    state: str | None = None
    q: str | None = None
    cursor: str | None = None

    def link(self, *, cursor: str | None = None) -> str:
        """This list at ``cursor`` (None: its first page)."""
        values = {"watchlist": self.watchlist, "state": self.state, "q": self.q}
        query = urlencode({k: v for k, v in {**values, "cursor": cursor}.items() if v})
        return f"/alerts?{query}" if query else "/alerts"


@frozen
class Shown:
    """One alert as the page shows it."""

    alert: Alert
    feed_id: int
    link: str | None  # the item's link, absolute, if it is http(s)
    deliveries: tuple[DeliveryStatus, ...]
    retryable: bool  # a delivery failed or was given up: the Retry button
    role: str | None = None  # its part in its story: lead, member or update


@frozen
class Listing:
    """A page of alerts, where the next one starts (None: this is the last), and for a
    text filter how many alerts it looked at and whether it stopped before the end."""

    shown: tuple[Shown, ...]
    next: AlertPosition | None
    scanned: int
    stopped: bool


def _blank(value: str | None) -> str | None:
    return value if value and value.strip() else None


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    watchlist: Annotated[str | None, Query()] = None,
    state: Annotated[str | None, Query()] = None,
    q: Annotated[str | None, Query()] = None,
    cursor: Annotated[str | None, Query()] = None,
    done: Annotated[str | None, Query()] = None,
    queued: Annotated[str | None, Query()] = None,
    busy: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    # The parameters are plain strings checked here: FastAPI's own refusal would be a JSON
    # body, and a page says what is wrong on the page.
    ctx = get_context(request)
    filters = Filters(
        watchlist=_blank(watchlist), state=_blank(state), q=_blank(q), cursor=_blank(cursor)
    )
    errors: list[str] = []
    chosen_state = _state(filters.state, errors)
    after = _after(filters.cursor, errors)
    matcher = _matcher(filters.q, errors)
    if filters.watchlist is not None and len(filters.watchlist) > MAX_NAME:
        errors.append(f"A watchlist name has at most {MAX_NAME} characters.")
    listing = None
    if not errors:
        listing = _listing(
            ctx.store,
            after=after,
            watchlist=filters.watchlist,
            state=chosen_state,
            matcher=matcher,
        )
    return render(
        request,
        "alerts.html",
        {
            "filters": filters,
            "watchlists": _watchlists(ctx.store, [w.name for w in ctx.settings.watchlists]),
            "states": [s.value for s in DeliveryState],
            "errors": errors,
            "listing": listing,
            "next_link": filters.link(cursor=alert_cursor(listing.next))
            if listing and listing.next
            else None,
            "first_link": filters.link() if filters.cursor else None,
            "back": filters.link(cursor=filters.cursor),
            "notice": _notice(done, queued, busy),
            "max_scan": MAX_SCAN,
            "now": datetime.now(UTC),
        },
        status=400 if errors else 200,
    )


@router.post("/alerts/{alert_id}/retry")
def retry_alert(request: Request, alert_id: str) -> Response:
    app = get_context(request).app
    if len(alert_id) > 36 or not app.store.alert_exists(alert_id):
        raise PageError(404, "There is no such alert (retention may have removed it).")
    queued, busy = app.store.retry_deliveries(app.clock(), alert_id=alert_id, dead_only=False)
    back = _back(form_of(request).get("back"))
    query = [(k, v) for k, v in parse_qsl(urlsplit(back).query) if k not in NOTICE]
    query += [("done", "retried"), ("queued", str(queued)), ("busy", str(busy))]
    return RedirectResponse(f"/alerts?{urlencode(query)}", 303)


def _back(value: object) -> str:
    """The list the Retry came from: a path of this page, else its first page."""
    target = safe_next(value if isinstance(value, str) and len(value) <= 4096 else None)
    return target if urlsplit(target).path == "/alerts" else "/alerts"


def _state(value: str | None, errors: list[str]) -> DeliveryState | None:
    if value is None:
        return None
    try:
        return DeliveryState(value)
    except ValueError:
        names = ", ".join(s.value for s in DeliveryState)
        errors.append(f"There is no such delivery state: choose one of {names}.")
        return None


def _after(cursor: str | None, errors: list[str]) -> AlertPosition | None:
    if cursor is None:
        return None
    try:
        return read_alert_cursor(cursor[:256])
    except ApiError:
        errors.append("This page's position is not valid: start again from the first page.")
        return None


def _matcher(text: str | None, errors: list[str]) -> Matcher | None:
    """The text filter as a one-watchlist matcher, as ``/api/items`` searches."""
    if text is None:
        return None
    if len(text) > MAX_TEXT:
        errors.append(f"The text filter has at most {MAX_TEXT} characters.")
        return None
    try:
        return search_matcher(text)
    except QueryError as exc:
        errors.append(f"The text filter is not valid at position {exc.position}: {exc.reason}.")
        return None


def _watchlists(store: Store, configured: list[str]) -> list[str]:
    """The configured watchlists, then any other with recent alerts (a removed one)."""
    since = datetime.now(UTC) - timedelta(days=SEEN_DAYS)
    seen = store.count_alerts_by_watchlist(since)
    return configured + sorted(name for name in seen if name not in configured)


def _notice(done: str | None, queued: str | None, busy: str | None) -> str | None:
    """The confirmation a retry's redirect asked for, from its counts alone."""
    if done != "retried":
        return None
    sent = int(queued) if queued and queued.isdigit() and len(queued) < 7 else 0
    left = int(busy) if busy and busy.isdigit() and len(busy) < 7 else 0
    parts = [
        f"{sent} {'delivery' if sent == 1 else 'deliveries'} queued to be sent again."
        if sent
        else "Nothing was queued: every delivery of that alert was sent."
    ]
    if left:
        parts.append(f"{left} being sent right now {'was' if left == 1 else 'were'} left alone.")
    return " ".join(parts)


def _listing(
    store: Store,
    *,
    after: AlertPosition | None,
    watchlist: str | None,
    state: DeliveryState | None,
    matcher: Matcher | None,
) -> Listing:
    if matcher is None:
        rows = store.page_listed_alerts(
            after=after, limit=PAGE + 1, watchlist=watchlist, state=state
        )
        page = rows[:PAGE]
        more = len(rows) > PAGE
        return Listing(
            shown=tuple(_shown(r) for r in page),
            next=_position(page[-1]) if more else None,
            scanned=len(page),
            stopped=False,
        )
    return _search(store, matcher, after, watchlist, state)


def _search(
    store: Store,
    matcher: Matcher,
    after: AlertPosition | None,
    watchlist: str | None,
    state: DeliveryState | None,
) -> Listing:
    """Up to :data:`PAGE` alerts whose item the text filter matches, looking at
    :data:`MAX_SCAN` alerts at most."""
    found: list[Shown] = []
    scanned = 0
    position = after
    while True:
        want = min(SCAN_BATCH, MAX_SCAN - scanned)
        batch = store.page_listed_alerts(
            after=position, limit=want, watchlist=watchlist, state=state
        )
        for row in batch:
            scanned += 1
            position = _position(row)
            if _matches(matcher, row.record.alert):
                found.append(_shown(row))
                if len(found) == PAGE:
                    return Listing(
                        shown=tuple(found), next=position, scanned=scanned, stopped=False
                    )
        if len(batch) < want:
            return Listing(shown=tuple(found), next=None, scanned=scanned, stopped=False)
        if scanned >= MAX_SCAN:
            return Listing(shown=tuple(found), next=position, scanned=scanned, stopped=True)


def _matches(matcher: Matcher, alert: Alert) -> bool:
    """Whether the alert's item title or summary matches (the fields an alert keeps)."""
    item = Item(
        key=alert.id,
        guid=alert.item.guid,
        link=alert.item.link,
        title=alert.item.title,
        summary=alert.item.summary,
        content="",
        author="",
        categories=(),
        published=alert.item.published,
        updated=None,
        content_hash="",
    )
    context = MatchContext(feed_name=alert.feed.name, feed_url=alert.feed.url)
    return bool(matcher.match_item(item, context))


def _position(row: ListedAlert) -> AlertPosition:
    alert = row.record.alert
    return AlertPosition(created_at=alert.created_at, id=alert.id)


def _shown(row: ListedAlert) -> Shown:
    deliveries = row.record.deliveries
    return Shown(
        alert=row.record.alert,
        feed_id=row.feed_id,
        link=item_link(row.record.alert),
        deliveries=deliveries,
        retryable=any(d.state in RETRYABLE for d in deliveries),
        role=row.record.role,
    )
