"""The outbox's tables: deliveries, their claims and outcomes, and the alert listings.

Deliveries are written with their alert and item (:mod:`monitor.store.items`); here they
are claimed with a lease (and ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several instances
never send the same one), each attempt's outcome is recorded, and rate-limited ones are
folded into a digest. Feed-health notices have a delivery table of their own
(:mod:`monitor.store.health`), claimed and recorded by the same two functions below. It
does not send anything (:mod:`monitor.outbox` does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Row, Select, func, or_, select, update
from sqlalchemy.orm import Session

from alerts.base import Alert, AlertFeed, AlertItem, AlertMatch, AlertStory
from httpfields import redact_url
from monitor.store.base import StoreBase, storage_errors
from monitor.store.schema import (
    AlertRow,
    ChannelRow,
    DeliveryRow,
    FeedRow,
    ItemRow,
    NoticeDeliveryRow,
)
from monitor.store.stories import alert_stories
from monitor.stories.plan import StoryRole
from monitor.types import DeliveryMode, DeliveryState, feed_display_name, frozen

CLAIMABLE = (DeliveryState.PENDING, DeliveryState.FAILED)
_DISABLED = select(ChannelRow.name).where(ChannelRow.disabled_at.is_not(None))
Outbox = type[DeliveryRow] | type[NoticeDeliveryRow]  # an outbox table: alerts' or notices'


@frozen
class ClaimedDelivery:
    id: int
    channel: str
    mode: DeliveryMode
    attempts: int
    alert: Alert


@frozen
class DeliveryStatus:
    channel: str
    state: DeliveryState
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    sent_at: datetime | None


@frozen
class AlertRecord:
    """One row of ``monitor alerts``; ``role``: its part in its story, if any."""

    alert: Alert
    deliveries: tuple[DeliveryStatus, ...]
    role: StoryRole | None = None


class DeliveryStore(StoreBase):
    def claim_due_deliveries(
        self,
        now: datetime,
        lease: float,
        channels: Sequence[str],
        limit: int = 100,
        *,
        due_by: datetime | None = None,
    ) -> list[ClaimedDelivery]:
        """Lease deliveries due by ``due_by`` (default: now), for the channels this
        instance has. The lease runs from ``now``, the moment of the claim."""
        if not channels:
            return []
        with storage_errors("claim deliveries"), self._session() as s, s.begin():
            ids = lease_due(s, DeliveryRow, now, lease, channels, limit, due_by or now)
            if not ids:
                return []
            rows = list(s.execute(_alert_query().where(DeliveryRow.id.in_(ids))))
            stories = alert_stories(s, (a.story_id for _, a, _, _ in rows))
            return [
                ClaimedDelivery(
                    id=d.id,
                    channel=d.channel,
                    mode=DeliveryMode(d.mode),
                    attempts=d.attempts,
                    alert=_alert(a, i, f, stories),
                )
                for d, a, i, f in rows
            ]

    def record_delivery(
        self,
        delivery_ids: Sequence[int],
        *,
        state: DeliveryState,
        now: datetime,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        """Write one attempt's outcome (for one delivery, or every one in a digest) and
        release the lease."""
        values = attempt_values(DeliveryRow, state, now, error, next_attempt_at)
        query = update(DeliveryRow).where(DeliveryRow.id.in_(list(delivery_ids)))
        with storage_errors("record delivery"), self._session() as s, s.begin():
            s.execute(query.values(**values))

    def release_deliveries(self, delivery_ids: Sequence[int]) -> None:
        """Hand claimed deliveries back unsent (their claim would expire before sending)."""
        query = update(DeliveryRow).where(DeliveryRow.id.in_(list(delivery_ids)))
        with storage_errors("release deliveries"), self._session() as s, s.begin():
            s.execute(query.values(lease_until=None))

    def fold_deliveries(self, delivery_ids: Sequence[int], until: datetime) -> None:
        """Move deliveries into their channel's next digest (rate limit reached)."""
        query = update(DeliveryRow).where(DeliveryRow.id.in_(list(delivery_ids)))
        with storage_errors("fold deliveries"), self._session() as s, s.begin():
            s.execute(
                query.values(mode=DeliveryMode.DIGEST, next_attempt_at=until, lease_until=None)
            )

    def count_sent_since(self, channel: str, since: datetime) -> int:
        """Messages sent on a channel since ``since``; a digest counts once, however many
        alerts it carried (its deliveries share one ``sent_at``)."""
        query = select(func.count(func.distinct(DeliveryRow.sent_at))).where(
            DeliveryRow.channel == channel, DeliveryRow.sent_at >= since
        )
        with storage_errors("count deliveries"), self._session() as s:
            return s.scalar(query) or 0

    def retry_deliveries(
        self, now: datetime, *, alert_id: str | None = None, dead_only: bool = True
    ) -> tuple[int, int]:
        """Send again: the deliveries of one alert (any state but sent), or every dead one.
        The retry schedule starts over. A delivery claimed right now is being sent: it is
        left alone (resetting it would send it twice). Returns (queued, being sent)."""
        wanted = [DeliveryRow.state != DeliveryState.SENT]
        if alert_id is not None:
            wanted.append(DeliveryRow.alert_id == alert_id)
        if dead_only:
            wanted.append(DeliveryRow.state == DeliveryState.DEAD)
        free = or_(DeliveryRow.lease_until.is_(None), DeliveryRow.lease_until < now)
        values = {
            "state": DeliveryState.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "lease_until": None,
        }
        busy = select(func.count()).select_from(DeliveryRow).where(*wanted, ~free)
        with storage_errors("retry deliveries"), self._session() as s, s.begin():
            queued = s.execute(update(DeliveryRow).where(*wanted, free).values(**values))
            return queued.rowcount, s.scalar(busy) or 0

    def alert_exists(self, alert_id: str) -> bool:
        with storage_errors("look up alert"), self._session() as s:
            return s.get(AlertRow, alert_id) is not None

    def list_alerts(self, limit: int = 50, state: DeliveryState | None = None) -> list[AlertRecord]:
        query = (
            select(AlertRow, ItemRow, FeedRow)
            .join(ItemRow, ItemRow.id == AlertRow.item_id)
            .join(FeedRow, FeedRow.id == ItemRow.feed_id)
            .order_by(AlertRow.created_at.desc(), AlertRow.id)
            .limit(limit)
        )
        if state:
            query = query.where(
                AlertRow.id.in_(select(DeliveryRow.alert_id).where(DeliveryRow.state == state))
            )
        with storage_errors("list alerts"), self._session() as s:
            return alert_records(s, list(s.execute(query)))


def alert_records(
    s: Session, found: Sequence[Row[tuple[AlertRow, ItemRow, FeedRow]]]
) -> list[AlertRecord]:
    """Alerts read with their item and feed, each with its deliveries (one more query)."""
    ids = [a.id for a, _, _ in found]
    deliveries: dict[str, list[DeliveryStatus]] = {}
    rows = s.scalars(
        select(DeliveryRow).where(DeliveryRow.alert_id.in_(ids)).order_by(DeliveryRow.channel)
    )
    for d in rows:
        deliveries.setdefault(d.alert_id, []).append(
            DeliveryStatus(
                channel=d.channel,
                state=DeliveryState(d.state),
                attempts=d.attempts,
                last_error=d.last_error,
                next_attempt_at=d.next_attempt_at,
                sent_at=d.sent_at,
            )
        )
    stories = alert_stories(s, (a.story_id for a, _, _ in found))
    return [
        AlertRecord(
            alert=_alert(a, i, f, stories),
            deliveries=tuple(deliveries.get(a.id, ())),
            role=StoryRole(a.story_role) if a.story_role else None,
        )
        for a, i, f in found
    ]


def lease_due(
    s: Session,
    table: Outbox,
    now: datetime,
    lease: float,
    channels: Sequence[str],
    limit: int,
    due_by: datetime,
) -> list[int]:
    """Lease an outbox table's deliveries due by ``due_by`` to these channels (none to a
    disabled one, none leased by another instance), oldest due first; returns their ids.
    The lease runs from ``now``, the moment of the claim."""
    query = (
        select(table.id)
        .where(
            table.state.in_(CLAIMABLE),
            table.channel.in_(list(channels)),
            table.channel.not_in(_DISABLED),
            table.next_attempt_at <= due_by,
            or_(table.lease_until.is_(None), table.lease_until < now),
        )
        .order_by(table.next_attempt_at, table.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(s.scalars(query))
    if ids:
        until = now + timedelta(seconds=lease)
        s.execute(update(table).where(table.id.in_(ids)).values(lease_until=until))
    return ids


def attempt_values(
    table: Outbox,
    state: DeliveryState,
    now: datetime,
    error: str | None,
    next_attempt_at: datetime | None,
) -> dict[str, object]:
    """The columns one attempt's outcome sets in an outbox table; the lease ends."""
    values: dict[str, object] = {
        "state": state,
        "attempts": table.attempts + 1,
        "last_error": error,
        "next_attempt_at": next_attempt_at,
        "lease_until": None,
    }
    if state == DeliveryState.SENT:
        values["sent_at"] = now
    return values


def _alert_query() -> Select[tuple[DeliveryRow, AlertRow, ItemRow, FeedRow]]:
    return (
        select(DeliveryRow, AlertRow, ItemRow, FeedRow)
        .join(AlertRow, AlertRow.id == DeliveryRow.alert_id)
        .join(ItemRow, ItemRow.id == AlertRow.item_id)
        .join(FeedRow, FeedRow.id == ItemRow.feed_id)
    )


def _alert(a: AlertRow, i: ItemRow, f: FeedRow, stories: Mapping[str, AlertStory]) -> Alert:
    return Alert(
        id=a.id,
        watchlist=a.watchlist,
        item=AlertItem(
            title=i.title,
            link=i.link,
            published=i.published or i.updated,
            summary=i.summary or i.content,
            guid=i.guid,
        ),
        # Receivers get the feed's URL without the credentials it may carry.
        feed=AlertFeed(
            name=feed_display_name(f.name, f.title, f.url), url=redact_url(f.current_url)
        ),
        matches=tuple(AlertMatch(**m) for m in a.matches),
        created_at=a.created_at,
        story=stories.get(a.story_id) if a.story_id else None,
        update=a.story_role == StoryRole.UPDATE,
    )
