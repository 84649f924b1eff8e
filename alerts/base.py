"""What a channel receives and the one method every channel implements.

An ``Alert`` is built by the pipeline from a stored item and its matches; channels render
and send it. A channel raises ``DeliveryError`` on failure and returns a ``DeliveryResult``
on success; it never touches the database (the outbox records outcomes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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
class Alert:
    """One (item, watchlist) alert. ``id`` is stable: the same on every retry and restart,
    so receivers can drop duplicates (the idempotency key)."""

    id: str
    watchlist: str
    item: AlertItem
    feed: AlertFeed
    matches: tuple[AlertMatch, ...]
    created_at: datetime


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


Message = Alert | Digest


@frozen
class DeliveryResult:
    """A successful delivery; ``detail`` is for the log (``HTTP 200``, ``250 OK``)."""

    detail: str


class Channel(Protocol):
    """A destination for alerts. ``name`` is the channel's name in the configuration."""

    name: str

    async def send(self, message: Message) -> DeliveryResult:
        """Deliver one alert, or a digest of several, or raise ``DeliveryError``."""
        ...

    async def aclose(self) -> None:
        """Release connections and clients."""
        ...
