"""``POST /api/match`` and ``POST /api/backtest``: ``monitor match`` and ``monitor
backtest`` over HTTP (the core is :mod:`monitor.trial`); nothing is stored or sent.

``match`` runs the running configuration's watchlists over a text (or a title and a
summary), unscoped unless the request names the feed it comes from. ``backtest`` runs a
query, or one configured watchlist, over the items stored within a window and says what
would have alerted. Its work is bounded: a window of at most :data:`MAX_WINDOW`, the newest
:data:`MAX_ITEMS` items of it (``truncated`` says when there were more), and ``limit``
hits in the answer (the counts cover them all).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Request
from pydantic import BaseModel, Field, model_validator

from alerts.durations import DAY, format_duration, parse_duration
from monitor.errors import QueryError
from monitor.match import Matcher, compile_query
from monitor.trial import feed_context, run_backtest, tags_by_url, text_item, trial_matcher
from monitor.types import Watchlist
from monitor.web.api.base import Bad, StrictModel, api_router, running_app
from monitor.web.api.models import ItemOut, WatchlistMatchOut

router = api_router()
MAX_TEXT = 100_000  # characters of a text to match
MAX_QUERY = 1000  # characters of a query to backtest
MAX_WINDOW = 366 * DAY
MAX_ITEMS = 5000  # items a backtest matches, newest first: bounded work
Text = Annotated[str, Field(max_length=MAX_TEXT)]


class MatchRequest(StrictModel):
    """A ``text`` (taken as title and summary), or a ``title`` and/or a ``summary``."""

    text: Text | None = None
    title: Text | None = None
    summary: Text | None = None
    feed: str | None = Field(
        default=None,
        max_length=2048,
        description="The feed's name or URL: the watchlists' feed and tag scopes apply.",
    )

    @model_validator(mode="after")
    def _one(self) -> MatchRequest:
        fields = self.title is not None or self.summary is not None
        if (self.text is None) == (not fields):
            raise ValueError("give text, or title and/or summary")
        return self


class MatchResult(BaseModel):
    watchlists: list[WatchlistMatchOut]


class BacktestRequest(StrictModel):
    """A ``query`` (in the watchlists' language) or the name of a configured ``watchlist``."""

    query: str | None = Field(default=None, min_length=1, max_length=MAX_QUERY)
    watchlist: str | None = Field(default=None, min_length=1, max_length=200)
    window: str = Field(default="7d", max_length=32, description="How far back: 24h, 7d ...")
    limit: int = Field(default=100, ge=1, le=1000, description="Hits to return, newest first.")

    @model_validator(mode="after")
    def _one(self) -> BacktestRequest:
        if (self.query is None) == (self.watchlist is None):
            raise ValueError("give either query or watchlist")
        return self


class BacktestHitOut(BaseModel):
    item: ItemOut
    watchlists: list[WatchlistMatchOut]


class BacktestResult(BaseModel):
    scanned: int = Field(description="Items matched, newest first.")
    truncated: bool = Field(description=f"The window held more than {MAX_ITEMS} items.")
    alerts: dict[str, int] = Field(description="Items each watchlist would have alerted on.")
    hits: list[BacktestHitOut] = Field(description="The newest `limit` of them.")


@router.post("/match", summary="Which watchlists match a text, and why")
def match(request: Request, body: MatchRequest) -> MatchResult:
    app = running_app(request)
    settings = app.settings
    if body.text is not None:
        item = text_item(body.text, body.text)
    else:
        item = text_item(body.title or "", body.summary or "")
    matcher = trial_matcher(tuple(settings.watchlists_for()), scoped=body.feed is not None)
    context = feed_context(settings, body.feed, app.store.list_feeds)
    return MatchResult(watchlists=WatchlistMatchOut.all_of(matcher.match_item(item, context)))


@router.post("/backtest", summary="What a query or a watchlist would have alerted on")
def backtest(request: Request, body: BacktestRequest) -> BacktestResult:
    try:
        window = parse_duration(body.window)
    except ValueError:
        raise Bad("window", "expected a duration: 24h, 7d, 2w") from None
    if window > MAX_WINDOW:
        raise Bad("window", f"at most {format_duration(MAX_WINDOW)}")
    app = running_app(request)
    if body.query is not None:
        matcher = _query_matcher(body.query)
    else:
        chosen = [w for w in app.settings.watchlists_for() if w.name == body.watchlist]
        if not chosen:
            raise Bad("watchlist", "no watchlist has this name")
        matcher = Matcher(chosen)
    tags = tags_by_url(app.settings, app.store.list_feeds())
    since = app.clock() - timedelta(seconds=window)
    result = run_backtest(app.store, matcher, tags, since, MAX_ITEMS)
    return BacktestResult(
        scanned=result.scanned,
        truncated=result.truncated,
        alerts=result.per_watchlist(),
        hits=[
            BacktestHitOut(item=ItemOut.of(h.stored), watchlists=WatchlistMatchOut.all_of(h.found))
            for h in result.hits[: body.limit]
        ],
    )


def _query_matcher(query: str) -> Matcher:
    try:
        compile_query(query)
        return Matcher([Watchlist(name="query", query=query)])
    except QueryError as exc:
        reason = f"at position {exc.position}: {exc.reason}"
        raise Bad("query", reason, position=exc.position) from None
