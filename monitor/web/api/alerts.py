"""``/api/alerts``: alerts newest first with their item, feed, matches and deliveries, in
pages; and sending one alert again.

A page ends with ``next``, the cursor of the following one (null on the last): new alerts
sort before the first page, so paging on while they arrive neither repeats nor skips one.
``retry`` is ``monitor alerts retry ID``: every delivery of the alert that is not sent is
queued again with a fresh retry schedule (one being sent right now is left alone).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path, Query, Request
from pydantic import BaseModel, Field

from httpfields import redact_url
from monitor.store import AlertPosition, AlertRecord, DeliveryStatus
from monitor.stories.plan import StoryRole
from monitor.types import DeliveryState
from monitor.web.api.base import ApiError, api_router, running_app
from monitor.web.api.models import FeedRef, MatchOut
from monitor.web.api.paging import Cursor, Limit, Since, alert_cursor, parse_since
from monitor.web.api.paging import read_alert_cursor as read_cursor

router = api_router()
AlertId = Annotated[str, Path(min_length=1, max_length=36, description="The alert's id.")]


class AlertItemOut(BaseModel):
    title: str
    link: str | None
    summary: str
    published: datetime | None
    guid: str | None


class DeliveryOut(BaseModel):
    channel: str
    state: DeliveryState
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    sent_at: datetime | None

    @classmethod
    def of(cls, d: DeliveryStatus) -> DeliveryOut:
        return cls(
            channel=d.channel,
            state=d.state,
            attempts=d.attempts,
            last_error=d.last_error,
            next_attempt_at=d.next_attempt_at,
            sent_at=d.sent_at,
        )


class StorySourceOut(BaseModel):
    feed: str
    title: str
    link: str | None
    published: datetime | None


class StoryOut(BaseModel):
    """The alert's story: ``role`` is ``lead`` (its first alert for the watchlist, sent on
    every route), ``member`` (a later item, attached: sent only on routes that keep every
    item) or ``update`` (the story reached ``source_count`` sources, a configured step)."""

    id: str
    title: str
    size: int
    source_count: int
    role: StoryRole | None
    sources: list[StorySourceOut]

    @classmethod
    def of(cls, record: AlertRecord) -> StoryOut | None:
        story = record.alert.story
        if story is None:
            return None
        return cls(
            id=story.id,
            title=story.title,
            size=story.size,
            source_count=story.source_count,
            role=record.role,
            sources=[
                StorySourceOut(feed=s.feed, title=s.title, link=s.link, published=s.published)
                for s in story.sources
            ],
        )


class AlertOut(BaseModel):
    id: str
    watchlist: str
    created_at: datetime
    item: AlertItemOut
    feed: FeedRef
    matches: list[MatchOut]
    deliveries: list[DeliveryOut]
    story: StoryOut | None = None

    @classmethod
    def of(cls, record: AlertRecord) -> AlertOut:
        a = record.alert
        return cls(
            id=a.id,
            watchlist=a.watchlist,
            created_at=a.created_at,
            item=AlertItemOut(
                title=a.item.title,
                link=a.item.link,
                summary=a.item.summary,
                published=a.item.published,
                guid=a.item.guid,
            ),
            feed=FeedRef(name=a.feed.name, url=redact_url(a.feed.url)),
            matches=[MatchOut.of(m) for m in a.matches],
            deliveries=[DeliveryOut.of(d) for d in record.deliveries],
            story=StoryOut.of(record),
        )


class AlertPage(BaseModel):
    alerts: list[AlertOut]
    next: str | None = Field(description="The cursor of the next page; null on the last.")


class RetryOut(BaseModel):
    alert_id: str
    queued: int = Field(description="Deliveries queued to be sent again.")
    being_sent: int = Field(description="Deliveries being sent right now, left alone.")


@router.get("/alerts", summary="Alerts, newest first, with their deliveries")
def list_alerts(
    request: Request,
    watchlist: Annotated[
        str | None, Query(max_length=200, description="Only this watchlist's.")
    ] = None,
    state: Annotated[
        DeliveryState | None, Query(description="Only alerts with a delivery in this state.")
    ] = None,
    since: Since = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> AlertPage:
    app = running_app(request)
    after = read_cursor(cursor)
    start = parse_since(since, app.clock()) if since is not None else None
    # one more than asked: whether a next page exists, without a count
    rows = app.store.page_alerts(
        after=after, limit=limit + 1, watchlist=watchlist, state=state, since=start
    )
    page = rows[:limit]
    more = len(rows) > limit
    last = page[-1].alert if page else None
    return AlertPage(
        alerts=[AlertOut.of(r) for r in page],
        next=alert_cursor(AlertPosition(created_at=last.created_at, id=last.id))
        if more and last
        else None,
    )


@router.post(
    "/alerts/{alert_id}/retry",
    summary="Send an alert again",
    responses={404: {"description": "No alert with this id."}},
)
def retry_alert(request: Request, alert_id: AlertId) -> RetryOut:
    app = running_app(request)
    if not app.store.alert_exists(alert_id):
        raise ApiError(404, "alert_id: no such alert", field="alert_id")
    queued, busy = app.store.retry_deliveries(app.clock(), alert_id=alert_id, dead_only=False)
    return RetryOut(alert_id=alert_id, queued=queued, being_sent=busy)
