"""The overview page: problems first (failing feeds, deliveries given up, disabled
channels, a scheduler behind), then feeds by state, deliveries still to settle, the last
poll, and alerts per watchlist over the last 7 days.

Input: the running service and its store. Output: the page. Every figure is one cheap
aggregate (the queries of ``/metrics`` and ``/readyz`` and one over ``alerts.created_at``),
so the page stays fast with many feeds and alerts; failing feeds are listed up to
:data:`MAX_LISTED`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request
from fastapi.responses import HTMLResponse

from monitor.types import DeliveryState, FeedState, frozen
from monitor.web.context import get_context
from monitor.web.pages.base import pages_router, render, when
from monitor.web.pages.chart import day_chart, last_days

router = pages_router()
DAYS = 7
MAX_LISTED = 10


@frozen
class Problem:
    """One line of the problems list: what is wrong, where to look."""

    level: str  # "bad" (needs someone) or "warn" (may settle on its own)
    text: str
    link: str | None
    detail: str | None = None


def counted(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


@router.get("/", response_class=HTMLResponse)
def overview(request: Request) -> HTMLResponse:
    ctx = get_context(request)
    store, settings = ctx.store, ctx.settings
    now = datetime.now(UTC)
    counts = store.count_states()
    feeds = store.list_feeds(count_items=False)
    days = last_days(now, DAYS)
    since = datetime.combine(days[0], datetime.min.time(), tzinfo=UTC)
    per_day = store.count_alerts_by_day(since)
    names = [w.name for w in settings.watchlists]
    ordered = {name: per_day.get(name, {}) for name in names}
    ordered.update({k: v for k, v in sorted(per_day.items()) if k not in ordered})
    channels = store.list_channels([c.name for c in settings.channels])
    lag = ctx.service.tick_lag()

    problems: list[Problem] = []
    failing = [
        f
        for f in feeds
        if f.active and f.paused_at is None and f.state in (FeedState.ERROR, FeedState.GONE)
    ]
    for feed in failing[:MAX_LISTED]:
        what = (
            "is gone (HTTP 410)"
            if feed.state is FeedState.GONE
            else f"is failing ({feed.error_count} in a row)"
        )
        problems.append(
            Problem(
                level="bad",
                text=f"{feed.name} {what}",
                link=f"/feeds/{feed.id}",
                detail=feed.last_error,
            )
        )
    if len(failing) > MAX_LISTED:
        problems.append(
            Problem(
                level="bad",
                text=f"… and {len(failing) - MAX_LISTED} more failing feeds",
                link="/feeds?sort=state",
            )
        )
    dead = counts.deliveries.get(DeliveryState.DEAD, 0)
    if dead:
        problems.append(
            Problem(
                level="bad",
                text=f"{counted(dead, 'delivery', 'deliveries')} given up (dead)",
                link="/alerts?state=dead",
            )
        )
    failed = counts.deliveries.get(DeliveryState.FAILED, 0)
    if failed:
        problems.append(
            Problem(
                level="warn",
                text=f"{counted(failed, 'delivery', 'deliveries')} failed, to be retried",
                link="/alerts?state=failed",
            )
        )
    for channel in channels:
        if channel.disabled_at is not None:
            problems.append(
                Problem(
                    level="bad",
                    text=f"Channel {channel.name} is disabled since {when(channel.disabled_at)}",
                    link=None,
                    detail=channel.disabled_reason,
                )
            )
    if lag > ctx.http.max_lag:
        problems.append(
            Problem(level="bad", text=f"The scheduler is {lag:.0f} s behind", link=None)
        )

    return render(
        request,
        "overview.html",
        {
            "problems": problems,
            "feed_states": dict(sorted(counts.feeds.items())),
            "feed_total": sum(counts.feeds.values()),
            "deliveries": {
                str(s): counts.deliveries.get(s, 0)
                for s in (DeliveryState.PENDING, DeliveryState.FAILED, DeliveryState.DEAD)
            },
            "last_poll": store.last_poll_at(),
            "lag": lag,
            "chart": day_chart(ordered, days),
            "now": now,
        },
    )
