"""STORE stage: the only package that speaks SQL.

:class:`Store` is one object composed of one part per group of tables: feeds (claims and
polls), items (with their alerts and deliveries, in one transaction), deliveries (the
outbox's claims and outcomes), channels, retention (old items pruned in batches, and
their tombstones), feed health (each feed's arrivals and announced health, the notices
and their deliveries), each feed's last polls and failed polls (polls, for the dashboard)
and the counts that /readyz and /metrics read (stats). ``schema``
has the tables, ``migrations`` the Alembic revisions applied at start
(``engine.migrate``), ``engine`` the SQLite and PostgreSQL set-up, ``clock`` the database
server's time that leases are read on.

Rows never leave this package: callers get the frozen values of :mod:`monitor.types` and of
the part modules. It does not fetch, parse, match or send. Methods are synchronous; the
async stages run them in a worker thread.
"""

from __future__ import annotations

from sqlalchemy import update

from monitor.store.activity import ActivityStore
from monitor.store.base import storage_errors
from monitor.store.channels import ChannelStatus, ChannelStore
from monitor.store.deliveries import AlertRecord, ClaimedDelivery, DeliveryStatus, DeliveryStore
from monitor.store.feeds import FeedSpec, FeedStatus, FeedStore
from monitor.store.health import ClaimedNotice, HealthStore
from monitor.store.items import ItemStore, StoredItem
from monitor.store.polls import PollHistory, PollOutcome, PollRecord, PollStore
from monitor.store.queries import AlertPosition, ItemPosition, ListedItem, QueryStore
from monitor.store.retention import RetentionStore
from monitor.store.schema import DeliveryRow, FeedRow, NoticeDeliveryRow
from monitor.store.stats import StateCounts, StatsStore

__all__ = [
    "AlertPosition",
    "AlertRecord",
    "ChannelStatus",
    "ClaimedDelivery",
    "ClaimedNotice",
    "DeliveryStatus",
    "FeedSpec",
    "FeedStatus",
    "ItemPosition",
    "ListedItem",
    "PollHistory",
    "PollOutcome",
    "PollRecord",
    "StateCounts",
    "Store",
    "StoredItem",
]


class Store(
    FeedStore,
    ItemStore,
    DeliveryStore,
    ChannelStore,
    RetentionStore,
    StatsStore,
    QueryStore,
    HealthStore,
    ActivityStore,
    PollStore,
):
    """Feeds, items, deliveries, channels, retention and feed health over one engine."""

    def release_leases(self) -> None:
        """Drop every lease on feeds and on deliveries of alerts and notices (only safe
        when no other instance shares the database)."""
        with storage_errors("release leases"), self._session() as s, s.begin():
            s.execute(update(FeedRow).values(lease_until=None))
            s.execute(update(DeliveryRow).values(lease_until=None))
            s.execute(update(NoticeDeliveryRow).values(lease_until=None))
