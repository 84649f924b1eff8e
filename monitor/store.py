"""Storage: with ``store_outbox.py``, the only modules that speak SQL.

Claims due feeds (with a lease, and ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so several
instances can share one database), stores items once by identity, writes alerts and their
deliveries in the same transaction as the items (the outbox), and answers the listings of
the command line. ``Store`` also has the delivery methods of ``store_outbox.OutboxStore``.

It does not fetch, parse, match or send: it is called with values and returns values.
Methods are synchronous; the async pipeline runs them in a worker thread.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from monitor.schema import AlertRow, DeliveryRow, FeedRow, ItemRow
from monitor.store_outbox import (
    AlertRecord,
    ChannelStatus,
    ClaimedDelivery,
    DeliveryStatus,
    OutboxStore,
    storage_errors,
)
from monitor.types import FeedState, Item, NewAlert, PollUpdate, StoredItems

__all__ = [
    "AlertRecord",
    "ChannelStatus",
    "ClaimedDelivery",
    "DeliveryStatus",
    "FeedSpec",
    "FeedStatus",
    "Store",
    "StoredItem",
    "key_hash",
]

frozen = dataclass(frozen=True, slots=True, kw_only=True)


@frozen
class FeedSpec:
    """A configured feed as the store needs it."""

    url: str
    name: str | None


@frozen
class FeedStatus:
    """One row of ``monitor feeds``."""

    url: str
    configured_url: str
    name: str
    state: str
    active: bool
    last_polled_at: datetime | None
    last_status: int | None
    last_error: str | None
    warning: str | None
    error_count: int
    items: int
    next_poll_at: datetime | None


@frozen
class StoredItem:
    """An item as stored, with its feed (for ``monitor backtest``)."""

    item: Item
    feed_url: str
    feed_configured_url: str
    feed_name: str
    first_seen_at: datetime


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Store(OutboxStore):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect.name
        self._insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]

    # -- feeds -----------------------------------------------------------------------------

    def sync_feeds(self, feeds: Sequence[FeedSpec], now: datetime) -> None:
        """Make the feeds table follow the configuration: add new feeds (due now), update
        names, deactivate feeds no longer configured (their items stay)."""
        wanted = {f.url: f for f in feeds}
        with storage_errors("sync feeds"), self._session() as s, s.begin():
            rows = {r.url: r for r in s.scalars(select(FeedRow))}
            for url, spec in wanted.items():
                row = rows.get(url)
                if row is None:
                    s.add(
                        FeedRow(
                            url=url,
                            current_url=url,
                            name=spec.name,
                            active=True,
                            state="new",
                            error_count=0,
                            next_poll_at=now,
                            created_at=now,
                        )
                    )
                else:
                    row.name, row.active = spec.name, True
            for url, row in rows.items():
                if url not in wanted:
                    row.active = False

    def release_leases(self) -> None:
        """Drop every lease (only safe when no other instance shares the database)."""
        with storage_errors("release leases"), self._session() as s, s.begin():
            s.execute(update(FeedRow).values(lease_until=None))
            s.execute(update(DeliveryRow).values(lease_until=None))

    def claim_due_feeds(
        self, now: datetime, lease: float, *, only_due: bool = True, limit: int | None = None
    ) -> list[FeedState]:
        """Lease the feeds that may be polled now. Without ``only_due`` every active feed is
        taken, except one that is gone, leased by another poller, or under Retry-After."""
        cond = [
            FeedRow.active.is_(True),
            FeedRow.state != "gone",
            or_(FeedRow.lease_until.is_(None), FeedRow.lease_until < now),
            or_(FeedRow.retry_after.is_(None), FeedRow.retry_after <= now),
        ]
        if only_due:
            cond.append(FeedRow.next_poll_at <= now)
        query = (
            select(FeedRow)
            .where(*cond)
            .order_by(FeedRow.next_poll_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with storage_errors("claim feeds"), self._session() as s, s.begin():
            rows = list(s.scalars(query))
            for row in rows:
                row.lease_until = now + timedelta(seconds=lease)
            return [_feed_state(r) for r in rows]

    def record_poll(self, feed_id: int, update_: PollUpdate) -> None:
        """Write a poll's outcome without items (304, errors, gone)."""
        with storage_errors("record poll"), self.engine.begin() as conn:
            _apply_poll(conn, feed_id, update_)

    def existing_items(self, feed_id: int, keys: Iterable[str]) -> dict[str, str]:
        """Content hashes of the stored items among ``keys``: one indexed query per feed."""
        by_hash = {key_hash(k): k for k in keys}
        if not by_hash:
            return {}
        query = select(ItemRow.key_hash, ItemRow.content_hash).where(
            ItemRow.feed_id == feed_id, ItemRow.key_hash.in_(list(by_hash))
        )
        with storage_errors("look up items"), self._session() as s:
            return {by_hash[h]: content for h, content in s.execute(query)}

    def add_items(
        self,
        feed_id: int,
        *,
        new: Sequence[Item],
        changed: Sequence[Item],
        alerts: Sequence[NewAlert],
        poll: PollUpdate,
    ) -> StoredItems:
        """Store new items, update edited ones, write alerts and their pending deliveries,
        and record the poll: all in one transaction, so a crash loses nothing half-done."""
        now = poll.polled_at
        with storage_errors("store items"), self._session() as s, s.begin():
            ids: dict[str, int] = {}
            if new:
                items = ItemRow.__table__  # Core insert: the ORM bulk path costs 2x per row
                stmt = (
                    self._insert(items)
                    .on_conflict_do_nothing(index_elements=["feed_id", "key_hash"])
                    .returning(items.c.id, items.c.key)
                )
                rows = [_item_values(feed_id, item, now) for item in new]
                ids = {key: id_ for id_, key in s.execute(stmt, rows)}
            for item in changed:
                values = _item_values(feed_id, item, now)
                del values["first_seen_at"]
                s.execute(
                    update(ItemRow)
                    .where(ItemRow.feed_id == feed_id, ItemRow.key_hash == values["key_hash"])
                    .values(**values)
                )
            written = 0
            for alert in alerts:
                if alert.item_key not in ids:  # stored by a concurrent poll: not ours to alert
                    continue
                written += self._add_alert(s, ids[alert.item_key], alert, now)
            _apply_poll(s, feed_id, poll)
            return StoredItems(new=len(ids), changed=len(changed), alerts=written)

    def _add_alert(self, s: Session, item_id: int, alert: NewAlert, now: datetime) -> int:
        matches = [{"term": m.term, "field": m.field, "snippet": m.snippet} for m in alert.matches]
        stmt = (
            self._insert(AlertRow)
            .values(
                id=alert.id,
                item_id=item_id,
                watchlist=alert.watchlist,
                matches=matches,
                created_at=now,
            )
            .on_conflict_do_nothing()
        )
        if s.execute(stmt).rowcount == 0:
            return 0
        for route in alert.routes:
            s.add(
                DeliveryRow(
                    alert_id=alert.id,
                    channel=route.channel,
                    mode="digest" if route.digest_at else "now",
                    state="pending",
                    attempts=0,
                    next_attempt_at=route.digest_at or now,
                )
            )
        return 1

    def items_since(self, since: datetime, limit: int = 100_000) -> list[StoredItem]:
        """Items first seen since ``since``, newest first."""
        query = (
            select(ItemRow, FeedRow)
            .join(FeedRow, FeedRow.id == ItemRow.feed_id)
            .where(ItemRow.first_seen_at >= since)
            .order_by(ItemRow.first_seen_at.desc(), ItemRow.id.desc())
            .limit(limit)
        )
        with storage_errors("read items"), self._session() as s:
            return [
                StoredItem(
                    item=_item(i),
                    feed_url=f.current_url,
                    feed_configured_url=f.url,
                    feed_name=f.name or f.title or f.url,
                    first_seen_at=i.first_seen_at,
                )
                for i, f in s.execute(query)
            ]

    def list_feeds(self) -> list[FeedStatus]:
        counts = (
            select(ItemRow.feed_id, func.count().label("n")).group_by(ItemRow.feed_id).subquery()
        )
        query = (
            select(FeedRow, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.feed_id == FeedRow.id)
            .order_by(FeedRow.active.desc(), FeedRow.id)
        )
        with storage_errors("list feeds"), self._session() as s:
            return [_feed_status(row, n) for row, n in s.execute(query)]

    # -- deliveries ------------------------------------------------------------------------


def _item(i: ItemRow) -> Item:
    return Item(
        key=i.key,
        guid=i.guid,
        link=i.link,
        title=i.title,
        summary=i.summary,
        content=i.content,
        author=i.author,
        categories=tuple(i.categories),
        published=i.published,
        updated=i.updated,
        content_hash=i.content_hash,
    )


def _item_values(feed_id: int, item: Item, now: datetime) -> dict[str, object]:
    return {
        "feed_id": feed_id,
        "key": item.key,
        "key_hash": key_hash(item.key),
        "guid": item.guid,
        "link": item.link,
        "title": item.title,
        "summary": item.summary,
        "content": item.content,
        "author": item.author,
        "categories": list(item.categories),
        "published": item.published,
        "updated": item.updated,
        "content_hash": item.content_hash,
        "first_seen_at": now,
        "changed_at": now,
    }


def _apply_poll(s: Session | Connection, feed_id: int, p: PollUpdate) -> None:
    """A Core UPDATE on the table: the ORM's per-call bookkeeping doubled the cost of the
    most frequent write (a 304), measured by bench/poll.py."""
    values: dict[str, object] = {
        "state": p.state,
        "last_polled_at": p.polled_at,
        "last_status": p.status,
        "last_error": p.error,
        "warning": p.warning,
        "error_count": p.error_count,
        "next_poll_at": p.next_poll_at,
        "retry_after": p.retry_after,
        "lease_until": None,
    }
    if p.state == "ok":
        values.update(last_success_at=p.polled_at, etag=p.etag, last_modified=p.last_modified)
    if p.current_url:
        values["current_url"] = p.current_url
    if p.title:
        values["title"] = p.title
    if p.state == "ok" and p.status != 304:
        values["ttl_seconds"] = p.ttl_seconds
    feeds = FeedRow.__table__
    s.execute(update(feeds).where(feeds.c.id == feed_id).values(**values))


def _feed_state(r: FeedRow) -> FeedState:
    return FeedState(
        id=r.id,
        url=r.url,
        current_url=r.current_url,
        name=r.name,
        title=r.title,
        etag=r.etag,
        last_modified=r.last_modified,
        error_count=r.error_count,
        ttl_seconds=r.ttl_seconds,
        first_poll=r.last_success_at is None,
    )


def _feed_status(r: FeedRow, items: int) -> FeedStatus:
    return FeedStatus(
        url=r.current_url,
        configured_url=r.url,
        name=r.name or r.title or r.url,
        state=r.state,
        active=r.active,
        last_polled_at=r.last_polled_at,
        last_status=r.last_status,
        last_error=r.last_error,
        warning=r.warning,
        error_count=r.error_count,
        items=items,
        next_poll_at=None if r.state == "gone" else r.next_poll_at,
    )
