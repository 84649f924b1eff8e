"""The feeds table: following the configuration, claiming due feeds, recording polls.

Due feeds are claimed with a lease (and ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so a feed
is never polled by two pollers at once, whichever instance they run in. Each poll's outcome
is written with one UPDATE, which also releases the lease. It does not store items
(:mod:`monitor.store.items` does, recording the poll in the same transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, or_, select, update
from sqlalchemy.orm import Session

from monitor.store.base import StoreBase, storage_errors
from monitor.store.schema import FeedRow, ItemRow
from monitor.types import ClaimedFeed, FeedState, PollUpdate, feed_display_name, frozen


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
    title: str | None
    state: FeedState
    active: bool
    last_polled_at: datetime | None
    last_status: int | None
    last_error: str | None
    warning: str | None
    error_count: int
    items: int
    next_poll_at: datetime | None


class FeedStore(StoreBase):
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
                            state=FeedState.NEW,
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

    def claim_due_feeds(
        self, now: datetime, lease: float, *, only_due: bool = True, limit: int | None = None
    ) -> list[ClaimedFeed]:
        """Lease the feeds that may be polled now. Without ``only_due`` every active feed is
        taken, except one that is gone, leased by another poller, or under Retry-After."""
        cond = [
            FeedRow.active.is_(True),
            FeedRow.state != FeedState.GONE,
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
            return [_claimed(r) for r in rows]

    def record_poll(self, feed_id: int, update_: PollUpdate) -> None:
        """Write a poll's outcome without items (304, errors, gone)."""
        with storage_errors("record poll"), self.engine.begin() as conn:
            apply_poll(conn, feed_id, update_)

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
            return [_status(row, n) for row, n in s.execute(query)]


def apply_poll(s: Session | Connection, feed_id: int, p: PollUpdate) -> None:
    """A Core UPDATE on the table: the ORM's per-call bookkeeping doubled the cost of the
    most frequent write (a 304)."""
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
    if p.state == FeedState.OK:
        values.update(last_success_at=p.polled_at, etag=p.etag, last_modified=p.last_modified)
    if p.current_url:
        values["current_url"] = p.current_url
    if p.title:
        values["title"] = p.title
    if p.state == FeedState.OK and p.status != 304:
        values["ttl_seconds"] = p.ttl_seconds
    feeds = FeedRow.__table__
    s.execute(update(feeds).where(feeds.c.id == feed_id).values(**values))


def _claimed(r: FeedRow) -> ClaimedFeed:
    return ClaimedFeed(
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


def _status(r: FeedRow, items: int) -> FeedStatus:
    state = FeedState(r.state)
    return FeedStatus(
        url=r.current_url,
        configured_url=r.url,
        name=feed_display_name(r.name, r.title, r.url),
        title=r.title,
        state=state,
        active=r.active,
        last_polled_at=r.last_polled_at,
        last_status=r.last_status,
        last_error=r.last_error,
        warning=r.warning,
        error_count=r.error_count,
        items=items,
        next_poll_at=None if state == FeedState.GONE else r.next_poll_at,
    )
