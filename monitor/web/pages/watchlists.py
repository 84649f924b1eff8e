"""The watchlists pages: each watchlist as configured with its alerts per day, and the
query tester.

Input: the running configuration's watchlists, the alerts and the items stored. Output:
``/watchlists`` (every watchlist: its query or terms, scope, language, routes and alerts
per day over :data:`ALERT_DAYS` days), ``/watchlists/{name}`` (one of them, with the
tester), ``/watchlists/new`` (the tester for a query that is not a watchlist yet) and
``/watchlists/{name}/test`` (the tester's results alone, which ``monitor.js`` fetches as
the query is typed; the full page renders the same template without JavaScript).

The tester takes ``?q=`` and ``?days=`` (GET: testing changes nothing). A malformed query
is shown with its position; a good one is run, with the watchlist's own feed and tag
scope and language, over the items first seen in the window, in the same pass as the
current query, so the page says which items it would match, how many per day, and which
matches it adds or loses. The work of a request is bounded as the API's backtest is: the
newest :data:`~monitor.web.api.trial.MAX_ITEMS` items of the window, :data:`LISTED` items
per list. The current query rides in the same matcher, so comparing costs no second read
of the items and needs no cache; typing runs one pass per pause (the browser drops the
answer it no longer needs, the server still finishes it). Watchlists live in the
configuration file: the page shows the YAML to paste, it never writes the file.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Annotated
from urllib.parse import quote, urljoin

import yaml
from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from monitor.config import NotifyRoute, Settings, WatchlistConfig
from monitor.errors import QueryError
from monitor.match import Matcher, compile_query
from monitor.store import StoredItem
from monitor.trial import BacktestHit, run_backtest, tags_by_url
from monitor.types import MatchDetail, Watchlist, frozen
from monitor.web.api.trial import MAX_ITEMS, MAX_QUERY
from monitor.web.context import WebContext, get_context
from monitor.web.pages.base import PageError, pages_router, render, visible
from monitor.web.pages.chart import Chart, Row, day_chart, last_days

router = pages_router()
ALERT_DAYS = 30  # the alerts-per-day charts
WINDOWS = (7, 30)  # the tester's windows, in UTC days ending today
LISTED = 100  # items each list of the tester shows (the counts cover them all)
SNIPPETS = 3  # snippets shown per item
CARET_MAX = 60  # characters of a broken query shown with a caret line under it
NEW = "new"  # /watchlists/new: the tester without a watchlist (unless one has this name)
TESTED, CURRENT = "tested", "current"  # the tester's matcher's own two watchlists


@frozen
class Listed:
    """A watchlist as the pages show it: its configuration, its query as matched (the
    terms become one), and its alerts per day."""

    config: WatchlistConfig
    query: str
    alerts: Row


@frozen
class QueryProblem:
    """A malformed query, split around the character its ``position`` points at (``at``
    is empty when the query ended too soon), and a caret line under it when the query
    is one short line."""

    reason: str
    position: int
    before: str
    at: str
    after: str
    caret: str | None


@frozen
class Found:
    """A stored item a query matches, and why."""

    stored: StoredItem
    link: str | None
    matches: tuple[MatchDetail, ...]


@frozen
class Hits:
    """Up to :data:`LISTED` items, newest first, and how many there were in all."""

    items: tuple[Found, ...]
    count: int


@frozen
class Tested:
    """What the tester shows for one query (``problem`` set, or the rest)."""

    query: str
    days: int
    problem: QueryProblem | None = None
    diff: bool = False  # there is a current query to compare with
    scanned: int = 0
    truncated: bool = False
    since: datetime | None = None
    chart: Chart | None = None
    matched: Hits | None = None
    new: Hits | None = None
    lost: Hits | None = None
    yaml: str = ""


@router.get("/watchlists", response_class=HTMLResponse)
def list_watchlists(request: Request) -> HTMLResponse:
    ctx = get_context(request)
    listed, chart = _listed(ctx, ctx.settings.watchlists)
    return render(
        request, "watchlists.html", {"watchlists": listed, "chart": chart, "days": ALERT_DAYS}
    )


# Declared before the page: a path parameter takes slashes (a name may hold one).
@router.get("/watchlists/{name:path}/test", response_class=HTMLResponse)
def tester_fragment(
    request: Request,
    name: str,
    q: Annotated[str | None, Query()] = None,
    days: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    ctx = get_context(request)
    config = _config(ctx.settings, name)
    return render(request, "_tester.html", _tester(ctx, name, config, q, days))


@router.get("/watchlists/{name:path}", response_class=HTMLResponse)
def watchlist_page(
    request: Request,
    name: str,
    q: Annotated[str | None, Query()] = None,
    days: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    ctx = get_context(request)
    config = _config(ctx.settings, name)
    listed, chart = _listed(ctx, [config] if config is not None else [])
    return render(
        request,
        "watchlist.html",
        {
            "watchlist": listed[0] if listed else None,
            "alerts_chart": chart,
            **_tester(ctx, name, config, q, days),
        },
    )


def _config(settings: Settings, name: str) -> WatchlistConfig | None:
    """The watchlist named ``name``, or None for the tester of a new query."""
    config = next((w for w in settings.watchlists if w.name == name), None)
    if config is None and name != NEW:
        raise PageError(404, "No watchlist has this name in the running configuration.")
    return config


def _listed(ctx: WebContext, configs: list[WatchlistConfig]) -> tuple[list[Listed], Chart]:
    days = last_days(ctx.app.clock(), ALERT_DAYS)
    since = datetime.combine(days[0], time.min, tzinfo=UTC)
    only = configs[0].name if len(configs) == 1 else None
    per_day = ctx.store.count_alerts_by_day(since, watchlist=only) if configs else {}
    chart = day_chart({w.name: per_day.get(w.name, {}) for w in configs}, days)
    listed = [
        Listed(config=w, query=w.to_watchlist().query, alerts=row)
        for w, row in zip(configs, chart.rows, strict=True)
    ]
    return listed, chart


def _tester(
    ctx: WebContext,
    name: str,
    config: WatchlistConfig | None,
    q: str | None,
    days: str | None,
) -> dict[str, object]:
    """The tester's context: its form (the query, the window, the URLs) and its results."""
    window = 30 if days == "30" else WINDOWS[0]
    current = config.to_watchlist() if config is not None else None
    query = q if q is not None else (current.query if current is not None else None)
    tested = None if query is None else try_query(ctx, config, query, window)
    base = f"/watchlists/{quote(name, safe='')}"
    return {
        "name": name,
        "query": query or "",
        "days": window,
        "windows": WINDOWS,
        "tested": tested,
        "page_url": base,
        "test_url": f"{base}/test",
        "max_items": MAX_ITEMS,
        "max_query": MAX_QUERY,
        "source": ctx.settings.source,
    }


def try_query(ctx: WebContext, config: WatchlistConfig | None, query: str, days: int) -> Tested:
    """Run ``query`` (scoped as ``config``) and the current query over the window's items
    in one pass: each item is read and matched once, and compared there."""
    problem = query_problem(query)
    if problem is not None:
        return Tested(query=query, days=days, problem=problem)
    current = config.to_watchlist() if config is not None else None
    watchlists = [
        dataclasses.replace(current, name=TESTED, query=query)
        if current is not None
        else Watchlist(name=TESTED, query=query)
    ]
    if current is not None:
        watchlists.append(dataclasses.replace(current, name=CURRENT))
    try:
        matcher = Matcher(watchlists)
    except QueryError as exc:  # the configuration's own query was checked at load
        return Tested(query=query, days=days, problem=_problem(query, exc.position, exc.reason))
    chart_days = last_days(ctx.app.clock(), days)
    since = datetime.combine(chart_days[0], time.min, tzinfo=UTC)
    tags = tags_by_url(ctx.settings, ctx.store.list_feeds())
    result = run_backtest(ctx.store, matcher, tags, since, MAX_ITEMS)
    matched, new, lost, per_day = _compare(result.hits, diff=current is not None)
    rows = {"this query": per_day[TESTED]}
    if current is not None:
        rows["current query"] = per_day[CURRENT]
    return Tested(
        query=query,
        days=days,
        diff=current is not None,
        scanned=result.scanned,
        truncated=result.truncated,
        since=since,
        chart=day_chart(rows, chart_days),
        matched=matched,
        new=new,
        lost=lost,
        yaml=watchlist_yaml(config, query),
    )


def _compare(
    hits: Sequence[BacktestHit], *, diff: bool
) -> tuple[Hits, Hits, Hits, dict[str, dict[date, int]]]:
    """The tested query's matches, its new and lost ones against the current query, and
    each query's matches per UTC day. Lists keep the first :data:`LISTED`; counts, all."""
    lists: dict[str, list[Found]] = {"matched": [], "new": [], "lost": []}
    counts = dict.fromkeys(lists, 0)
    per_day: dict[str, dict[date, int]] = {TESTED: {}, CURRENT: {}}

    def add(which: str, stored: StoredItem, matches: tuple[MatchDetail, ...]) -> None:
        counts[which] += 1
        if len(lists[which]) < LISTED:
            lists[which].append(_found(stored, matches))

    for hit in hits:
        found = {f.watchlist: f.matches for f in hit.found}
        day = _utc(hit.stored.first_seen_at).date()
        for which in found:
            per_day[which][day] = per_day[which].get(day, 0) + 1
        if TESTED in found:
            add("matched", hit.stored, found[TESTED])
            if diff and CURRENT not in found:
                add("new", hit.stored, found[TESTED])
        elif CURRENT in found:
            add("lost", hit.stored, found[CURRENT])
    matched, new, lost = (
        Hits(items=tuple(lists[k]), count=counts[k]) for k in ("matched", "new", "lost")
    )
    return matched, new, lost, per_day


def query_problem(query: str) -> QueryProblem | None:
    """What is wrong with ``query`` and where, or None when it compiles."""
    if len(query) > MAX_QUERY:
        return _problem(query, MAX_QUERY, f"the query is longer than {MAX_QUERY} characters")
    try:
        compile_query(query)
    except QueryError as exc:
        return _problem(query, exc.position, exc.reason)
    return None


def _problem(query: str, position: int, reason: str) -> QueryProblem:
    position = max(0, min(position, len(query)))
    before, at, after = query[:position], query[position : position + 1], query[position + 1 :]
    # a caret lines up only under one short line; a longer query wraps, marked alone
    one_line = len(query) <= CARET_MAX and "\n" not in query and "\r" not in query
    return QueryProblem(
        reason=reason,
        position=position,
        before=before,
        at=at,
        after=after,
        caret=" " * _columns(visible(before)) + "^" if one_line else None,
    )


def _columns(text: str) -> int:
    """How many monospace columns ``text`` takes: wide (CJK) letters two, marks none."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _found(stored: StoredItem, matches: tuple[MatchDetail, ...]) -> Found:
    link = stored.item.link
    absolute = urljoin(stored.feed_url, link.strip()) if link else None
    return Found(stored=stored, link=absolute, matches=matches[:SNIPPETS])


def watchlist_yaml(config: WatchlistConfig | None, query: str) -> str:
    """The watchlist's entry for the configuration file with ``query`` as its query,
    dumped by PyYAML (so quoted as YAML needs). A query holding an invisible or
    reordering character is written with escapes, so the text shown is the text pasted."""
    entry: dict[str, object] = {"name": config.name if config else "new-watchlist"}
    entry["query"] = query
    if config is not None:
        if config.feeds:
            entry["feeds"] = sorted(config.feeds)
        if config.tags:
            entry["tags"] = sorted(config.tags)
        if config.language != "auto":
            entry["language"] = config.language
        if config.notify:
            entry["notify"] = [_route(r) for r in config.notify]
    plain = all(visible(v) == v for v in _strings(entry))
    return yaml.safe_dump(
        [entry], allow_unicode=plain, sort_keys=False, width=100_000, default_flow_style=False
    )


def _route(route: NotifyRoute) -> str | dict[str, str]:
    """A route as the file writes it: a bare channel name unless it has settings of its
    own (a pasted entry that dropped ``stories: separate`` would route differently)."""
    settings = {"channel": route.channel}
    if route.digest is not None:
        settings["digest"] = str(route.digest)
    if route.stories != "collapse":
        settings["stories"] = route.stories
    return route.channel if len(settings) == 1 else settings


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
