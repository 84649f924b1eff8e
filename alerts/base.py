"""What a channel receives and the one method every channel implements.

An ``Alert`` is built by the pipeline from a stored item and its matches, a ``Notice`` by
the feed-health check when a feed starts failing, goes silent, is gone or moved, or
recovers; channels render and send them. A channel raises ``DeliveryError`` on failure and
returns a ``DeliveryResult`` on success; it never touches the database (the outbox records
outcomes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

frozen = dataclass(frozen=True, slots=True, kw_only=True)
"""The one decorator for values handed between stages and packages (``monitor.types``
takes it from here, the lowest floor): immutable, slotted, keyword-only."""


@frozen
class AlertItem:
    title: str
    link: str | None
    published: datetime | None
    summary: str
    guid: str | None


@frozen
class AlertFeed:
    name: str
    url: str


@frozen
class AlertMatch:
    term: str
    field: str
    snippet: str


@frozen
class StorySource:
    """One outlet carrying a story: its feed and the item it carried the story in."""

    feed: str
    title: str
    link: str | None
    published: datetime | None


@frozen
class AlertStory:
    """The story an alert's item belongs to: the same news from several feeds, folded into
    one alert. ``size`` counts its items; ``sources`` are its distinct feeds in the order
    they carried it (the first is the alerted item's), listed up to a bound while
    ``source_count`` counts them all."""

    id: str
    title: str
    size: int
    source_count: int
    sources: tuple[StorySource, ...]


@frozen
class Alert:
    """One (item, watchlist) alert. ``id`` is stable: the same on every retry and restart,
    so receivers can drop duplicates (the idempotency key).

    ``story`` is the story the item belongs to, as stored when the message is built (so a
    story that grew while the alert waited is sent at its size then). ``update`` marks a
    spread update instead of a new alert: the story reached ``story.source_count``
    sources, a configured step; ``item`` is then the one that brought it there."""

    id: str
    watchlist: str
    item: AlertItem
    feed: AlertFeed
    matches: tuple[AlertMatch, ...]
    created_at: datetime
    story: AlertStory | None = None
    update: bool = False


@frozen
class Digest:
    """Several alerts sent as one message: a channel's (or a route's) digest, or alerts
    folded together because the channel reached its ``max_per_hour``.

    ``id`` is stable for the same set of deliveries (the same on a retry of that set).
    ``alerts`` are newest first; renderers group them by watchlist."""

    id: str
    channel: str
    alerts: tuple[Alert, ...]
    created_at: datetime


class NoticeKind(StrEnum):
    """What a feed-health notice announces: the feed's new health, or its move."""

    FAILING = "failing"  # its polls have failed, with no success, for longer than a bound
    SILENT = "silent"  # polled fine, but no new item for far longer than its usual gap
    GONE = "gone"  # HTTP 410: polling stopped
    MOVED = "moved"  # a permanent redirect: polled at ``feed.url`` from now on
    RECOVERED = "recovered"  # healthy again after ``recovered_from``


@frozen
class Notice:
    """A change in a feed's health, for the operator rather than a watchlist's reader.

    ``id`` is stable: the same on every retry and on every channel, so receivers can drop
    duplicates. ``since`` is when the condition began (failing: the last successful poll;
    silent: the last new item; gone, moved, recovered: the poll that showed it).
    ``feed.url`` is the URL polled now, without credentials; ``previous_url`` is the URL it
    moved from (moved only)."""

    id: str
    kind: NoticeKind
    feed: AlertFeed
    since: datetime
    detail: str
    previous_url: str | None = None
    recovered_from: NoticeKind | None = None
    created_at: datetime


Message = Alert | Digest | Notice


@frozen
class DeliveryResult:
    """A successful delivery; ``detail`` is for the log (``HTTP 200``, ``250 OK``)."""

    detail: str


class Channel(Protocol):
    """A destination for alerts and notices. ``name`` is the channel's name in the
    configuration."""

    name: str

    async def send(self, message: Message) -> DeliveryResult:
        """Deliver one alert, a digest of several, or a notice, or raise ``DeliveryError``."""
        ...

    async def aclose(self) -> None:
        """Release connections and clients."""
        ...
