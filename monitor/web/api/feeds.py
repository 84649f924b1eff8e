"""``/api/feeds``: every feed with its health; adding, removing, pausing and resuming one.

Feeds the configuration file declares are the file's: they can be paused here, not removed
(409, edit the file). Feeds added here are kept in the database (source ``api``), with the
defaults and their own tags, until removed here. A feed is named by its id or by its URL
(as configured, or where it moved); URLs go out without the credentials they may carry.
Pausing takes effect at the next claim: a poll under way finishes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Body, Query, Request, status
from pydantic import BaseModel, Field, model_validator

from alerts.settings import HttpUrl, Name
from httpfields import redact_url
from monitor.config import MAX_URL, Settings
from monitor.store import FeedSpec, FeedStatus
from monitor.trial import feed_tags
from monitor.types import FeedSource, FeedState
from monitor.web.api.base import ApiError, StrictModel, api_router, running_app

router = api_router()
MAX_TAGS = 50
FeedId = Annotated[int, Field(ge=1, le=2**63 - 1)]
FeedUrl = Annotated[str, Field(min_length=1, max_length=MAX_URL)]
Tag = Annotated[Name, Field(min_length=1, max_length=100)]


class FeedOut(BaseModel):
    id: int
    name: str = Field(description="Its configured name, else its own title, else its URL.")
    url: str = Field(description="The URL polled now (after permanent redirects).")
    configured_url: str
    title: str | None = Field(description="The title the feed gives itself.")
    source: FeedSource = Field(description="Where it is declared: config, opml or api.")
    active: bool = Field(description="False once removed from where it was declared.")
    paused: bool
    paused_at: datetime | None
    state: FeedState
    last_polled_at: datetime | None
    last_status: int | None
    last_error: str | None
    warning: str | None
    error_count: int = Field(description="Failed polls in a row.")
    items: int = Field(description="Items stored.")
    next_poll_at: datetime | None
    tags: list[str]

    @classmethod
    def of(cls, feed: FeedStatus, settings: Settings) -> FeedOut:
        return cls(
            id=feed.id,
            name=feed.name,
            url=redact_url(feed.url),
            configured_url=redact_url(feed.configured_url),
            title=feed.title,
            source=feed.source,
            active=feed.active,
            paused=feed.paused_at is not None,
            paused_at=feed.paused_at,
            state=feed.state,
            last_polled_at=feed.last_polled_at,
            last_status=feed.last_status,
            last_error=feed.last_error,
            warning=feed.warning,
            error_count=feed.error_count,
            items=feed.items,
            next_poll_at=feed.next_poll_at,
            tags=sorted(feed_tags(settings, feed)),
        )


class FeedList(BaseModel):
    feeds: list[FeedOut]


class NewFeed(StrictModel):
    """A feed to keep in the database, validated as the configuration's feeds are."""

    url: Annotated[HttpUrl, Field(max_length=MAX_URL)]
    name: Name | None = None
    tags: list[Tag] = Field(default=[], max_length=MAX_TAGS)


class FeedChoice(StrictModel):
    """One feed: by ``id``, or by ``url`` (as configured, or where it moved)."""

    id: FeedId | None = None
    url: FeedUrl | None = None

    @model_validator(mode="after")
    def _one(self) -> FeedChoice:
        if (self.id is None) == (self.url is None):
            raise ValueError("give either id or url")
        return self


@router.get("/feeds", summary="Every feed with its health")
def list_feeds(request: Request) -> FeedList:
    app = running_app(request)
    return FeedList(feeds=[FeedOut.of(f, app.settings) for f in app.store.list_feeds()])


@router.post(
    "/feeds",
    status_code=status.HTTP_201_CREATED,
    summary="Add a feed, kept in the database",
    responses={409: {"description": "A feed with this URL, or with this name, exists."}},
)
def add_feed(request: Request, feed: NewFeed) -> FeedOut:
    app = running_app(request)
    # one name, one feed: watchlists' `feeds:` and `feed:` queries go by names
    taken = {f.name for f in app.store.list_feeds() if f.active}
    if feed.name is not None and feed.name in taken | {f.name for f in app.settings.feeds}:
        raise ApiError(409, "name: another feed has this name", field="name")
    spec = FeedSpec(url=feed.url, name=feed.name, tags=frozenset(feed.tags))
    if not app.store.add_feeds([spec], FeedSource.API, app.clock()):  # a removed one comes back
        raise ApiError(409, "url: a feed with this URL exists", field="url")
    return FeedOut.of(_find(request, FeedChoice(url=feed.url)), app.settings)


@router.delete(
    "/feeds",
    summary="Remove a feed added here or imported",
    responses={409: {"description": "The configuration file declares it: edit the file."}},
)
def remove_feed(
    request: Request,
    feed_id: Annotated[FeedId | None, Query(alias="id", description="The feed's id.")] = None,
    url: Annotated[FeedUrl | None, Query(description="The feed's URL.")] = None,
    choice: Annotated[FeedChoice | None, Body()] = None,
) -> FeedOut:
    """The feed by `id` or `url`, in the query or in the body. Its items and alerts stay;
    it is no longer polled."""
    if choice is None:
        if (feed_id is None) == (url is None):
            raise ApiError(400, "id: give either id or url", field="id")
        choice = FeedChoice(id=feed_id, url=url)
    elif feed_id is not None or url is not None:
        raise ApiError(400, "id: give the feed in the query or in the body, not both", field="id")
    app = running_app(request)
    feed = _find(request, choice)
    if feed.source == FeedSource.CONFIG and feed.active:
        raise ApiError(
            409,
            f"url: the configuration file declares this feed; remove it from "
            f"{app.settings.source} and reload",
            field="url",
        )
    if not app.store.remove_feed(feed.configured_url):
        raise ApiError(404, "url: this feed was removed already", field="url")
    return FeedOut.of(_find(request, FeedChoice(id=feed.id)), app.settings)


@router.post("/feeds/pause", summary="Stop polling a feed until resumed")
def pause_feed(request: Request, choice: FeedChoice) -> FeedOut:
    return _pause(request, choice, pause=True)


@router.post("/feeds/resume", summary="Poll a paused feed again")
def resume_feed(request: Request, choice: FeedChoice) -> FeedOut:
    return _pause(request, choice, pause=False)


def _pause(request: Request, choice: FeedChoice, *, pause: bool) -> FeedOut:
    app = running_app(request)
    feed = _find(request, choice)
    app.store.pause_feed(feed.id, app.clock() if pause else None)
    return FeedOut.of(_find(request, FeedChoice(id=feed.id)), app.settings)


def _find(request: Request, choice: FeedChoice) -> FeedStatus:
    store = running_app(request).store
    found = store.find_feed(feed_id=choice.id, url=choice.url)
    if found is None:
        field = "id" if choice.id is not None else "url"
        raise ApiError(404, f"{field}: no such feed", field=field)
    return found
