"""``/api/watchlists``: each watchlist as the running configuration has it, with the number
of alerts it raised over the last seven days. Watchlists live in the configuration file
only: this lists them, it does not change them."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from fastapi import Request
from pydantic import BaseModel, Field

from monitor.config import WatchlistConfig
from monitor.web.api.base import api_router, running_app

router = api_router()
RECENT = timedelta(days=7)


class RouteOut(BaseModel):
    channel: str
    digest: str | None = Field(description="Its digest schedule, as configured, if any.")


class WatchlistOut(BaseModel):
    name: str
    query: str | None = Field(description="The query, when configured as one.")
    terms: list[str] | None = Field(description="The terms, when configured as a list.")
    language: Literal["auto", "ru", "kk", "en", "none"]
    routes: list[RouteOut]
    feeds: list[str] = Field(description="Only items of these feeds (empty: every feed).")
    tags: list[str] = Field(description="Only feeds with one of these tags (empty: all).")
    alerts_7d: int = Field(description="Alerts raised over the last 7 days.")

    @classmethod
    def of(cls, w: WatchlistConfig, alerts: int) -> WatchlistOut:
        return cls(
            name=w.name,
            query=w.query,
            terms=w.terms,
            language=w.language,
            routes=[
                RouteOut(channel=r.channel, digest=str(r.digest) if r.digest else None)
                for r in w.notify
            ],
            feeds=sorted(w.feeds),
            tags=sorted(w.tags),
            alerts_7d=alerts,
        )


class WatchlistList(BaseModel):
    watchlists: list[WatchlistOut]


@router.get("/watchlists", summary="Watchlists, with their alerts of the last 7 days")
def list_watchlists(request: Request) -> WatchlistList:
    app = running_app(request)
    counts = app.store.count_alerts_by_watchlist(app.clock() - RECENT)
    return WatchlistList(
        watchlists=[WatchlistOut.of(w, counts.get(w.name, 0)) for w in app.settings.watchlists]
    )
