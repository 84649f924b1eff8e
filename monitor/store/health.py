"""Feed health in the feeds table, and the notices' own outbox.

Each feed row keeps what its health needs beside its polling state: the last poll that
brought new items and the gaps between the last such polls (written in the items'
transaction by :func:`remember_arrival`, so pruning items never erases them), and the
health last announced with a version. A change of health is written by a conditional
UPDATE on that version, with its notices and their per-channel deliveries, in one
transaction: of several instances that decide the same change, exactly one writes it, and
a change is written with its notices or not at all. Notice deliveries are claimed with a
lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and their outcomes recorded, as alerts'
deliveries are.

It decides nothing (:mod:`monitor.health` does) and sends nothing (:mod:`monitor.outbox`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from alerts.base import AlertFeed, Notice, NoticeKind
from monitor.store.base import StoreBase, storage_errors
from monitor.store.deliveries import attempt_values, lease_due
from monitor.store.schema import FeedRow, NoticeDeliveryRow, NoticeRow
from monitor.types import DeliveryState, FeedState, feed_display_name, frozen

GAPS_KEPT = 20  # enough for a median that one odd day does not move


class FeedHealth(StrEnum):
    """A feed's health as last announced (stored in ``feeds.health``)."""

    OK = "ok"
    FAILING = "failing"
    SILENT = "silent"
    GONE = "gone"


@frozen
class FeedHealthFacts:
    """What the health decision reads of one feed."""

    id: int
    name: str  # feed_display_name
    url: str  # the configured URL
    current_url: str
    state: FeedState
    watched: bool  # active and not paused: only those raise anything
    created_at: datetime
    last_polled_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_arrival_at: datetime | None
    gaps: tuple[float, ...]  # seconds between the last polls that brought new items
    health: FeedHealth
    health_since: datetime | None
    health_url: str | None  # the URL last announced; None: the configured one
    version: int


@frozen
class HealthChange:
    """A feed's new health (and announced URL), to write only if the feed's health
    version is still ``version``, with the notices it raises."""

    feed_id: int
    version: int
    health: FeedHealth
    since: datetime | None
    url: str | None
    notices: tuple[Notice, ...]


@frozen
class ClaimedNotice:
    id: int  # the delivery's
    channel: str
    attempts: int
    notice: Notice


class HealthStore(StoreBase):
    def health_facts(self) -> list[FeedHealthFacts]:
        """Every feed that has been polled (a new one has no health yet)."""
        query = select(FeedRow).where(FeedRow.state != FeedState.NEW).order_by(FeedRow.id)
        with storage_errors("read feed health"), self._session() as s:
            return [_facts(row) for row in s.scalars(query)]

    def change_health(self, change: HealthChange, channels: Sequence[str], now: datetime) -> bool:
        """Write a change of health and a delivery of each notice to each channel (with no
        channel, the health alone); False, and nothing written, if another instance changed
        the feed's health first."""
        feeds = FeedRow.__table__
        claim = (
            update(feeds)
            .where(feeds.c.id == change.feed_id, feeds.c.health_version == change.version)
            .values(
                health=change.health,
                health_since=change.since,
                health_url=change.url,
                health_version=change.version + 1,
            )
        )
        with storage_errors("record feed health"), self._session() as s, s.begin():
            if s.execute(claim).rowcount != 1:
                return False
            if channels:
                for notice in change.notices:
                    s.add(_notice_row(change.feed_id, notice))
                s.flush()  # the notices first: their deliveries refer to them
                s.add_all(
                    NoticeDeliveryRow(
                        notice_id=notice.id,
                        channel=channel,
                        state=DeliveryState.PENDING,
                        attempts=0,
                        next_attempt_at=now,
                    )
                    for notice in change.notices
                    for channel in channels
                )
            return True

    def claim_due_notices(
        self,
        now: datetime,
        lease: float,
        channels: Sequence[str],
        limit: int = 100,
        *,
        due_by: datetime | None = None,
    ) -> list[ClaimedNotice]:
        """Lease notice deliveries due by ``due_by`` (default: now) for these channels."""
        if not channels:
            return []
        d = NoticeDeliveryRow
        with storage_errors("claim notices"), self._session() as s, s.begin():
            ids = lease_due(s, d, now, lease, channels, limit, due_by or now)
            if not ids:
                return []
            rows = s.execute(
                select(d, NoticeRow)
                .join(NoticeRow, NoticeRow.id == d.notice_id)
                .where(d.id.in_(ids))
            )
            return [
                ClaimedNotice(
                    id=row.id, channel=row.channel, attempts=row.attempts, notice=_notice(n)
                )
                for row, n in rows
            ]

    def record_notice_delivery(
        self,
        delivery_ids: Sequence[int],
        *,
        state: DeliveryState,
        now: datetime,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        """Write one attempt's outcome and release the lease (``record_delivery``'s
        signature, so the outbox records either kind alike)."""
        d = NoticeDeliveryRow
        values = attempt_values(d, state, now, error, next_attempt_at)
        with storage_errors("record notice delivery"), self._session() as s, s.begin():
            s.execute(update(d).where(d.id.in_(list(delivery_ids))).values(**values))

    def release_notice_deliveries(self, delivery_ids: Sequence[int]) -> None:
        """Hand claimed notice deliveries back unsent."""
        d = NoticeDeliveryRow
        with storage_errors("release notices"), self._session() as s, s.begin():
            s.execute(update(d).where(d.id.in_(list(delivery_ids))).values(lease_until=None))


def remember_arrival(s: Session, feed_id: int, now: datetime) -> None:
    """A poll stored new items: the gap since the previous such poll joins the feed's
    last GAPS_KEPT. Called in the items' transaction, before the poll is recorded: a feed
    never polled successfully is on its first poll, whose items are its backlog, not an
    arrival."""
    feeds = FeedRow.__table__
    row = s.execute(
        select(feeds.c.last_success_at, feeds.c.last_arrival_at, feeds.c.arrival_gaps).where(
            feeds.c.id == feed_id
        )
    ).one()
    if row.last_success_at is None:
        return
    gaps = list(row.arrival_gaps or ())
    if row.last_arrival_at is not None:
        gaps = [*gaps, (now - row.last_arrival_at).total_seconds()][-GAPS_KEPT:]
    s.execute(
        update(feeds)
        .where(feeds.c.id == feed_id)
        .values(last_arrival_at=now, arrival_gaps=gaps or None)
    )


def _facts(r: FeedRow) -> FeedHealthFacts:
    return FeedHealthFacts(
        id=r.id,
        name=feed_display_name(r.name, r.title, r.url),
        url=r.url,
        current_url=r.current_url,
        state=FeedState(r.state),
        watched=r.active and r.paused_at is None,
        created_at=r.created_at,
        last_polled_at=r.last_polled_at,
        last_success_at=r.last_success_at,
        last_error=r.last_error,
        last_arrival_at=r.last_arrival_at,
        gaps=tuple(r.arrival_gaps or ()),
        health=FeedHealth(r.health),
        health_since=r.health_since,
        health_url=r.health_url,
        version=r.health_version,
    )


def _notice_row(feed_id: int, notice: Notice) -> NoticeRow:
    return NoticeRow(
        id=notice.id,
        feed_id=feed_id,
        kind=notice.kind,
        feed_name=notice.feed.name,
        feed_url=notice.feed.url,
        previous_url=notice.previous_url,
        recovered_from=notice.recovered_from,
        since=notice.since,
        detail=notice.detail,
        created_at=notice.created_at,
    )


def _notice(n: NoticeRow) -> Notice:
    return Notice(
        id=n.id,
        kind=NoticeKind(n.kind),
        feed=AlertFeed(name=n.feed_name, url=n.feed_url),
        since=n.since,
        detail=n.detail,
        previous_url=n.previous_url,
        recovered_from=NoticeKind(n.recovered_from) if n.recovered_from else None,
        created_at=n.created_at,
    )
