"""Retention's tables: pruning old items, and the tombstones that stand in for them.

An item first seen before a cutoff is deleted with its alerts and deliveries (the foreign
keys cascade: PostgreSQL always, SQLite because the engine turns ``foreign_keys`` on), unless
one of its deliveries is still to be made: pending, failed, or dead (the operator may still
retry a dead one). Its identity (feed, key hash) goes to ``pruned_items`` in the same
transaction, so a feed that serves it again is not taken to have a new item (nor alerts
again; :mod:`monitor.store.items` reads the tombstones). A tombstone the feed has not served
for a retention period is forgotten, so neither table grows without bound.

Each call is one short transaction of at most ``batch`` rows (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so several instances pruning at once take different rows): never one huge
DELETE holding the database. It does not loop over batches or schedule itself
(:mod:`monitor.retention` does).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import delete, exists, func, select, tuple_

from monitor.store.base import StoreBase, storage_errors
from monitor.store.schema import AlertRow, DeliveryRow, ItemRow, PrunedItemRow
from monitor.store.stories import prune_story_keys
from monitor.types import DeliveryState

# Bound parameters per IN list: SQLite allows 32,766 per statement, psycopg 65,535; a batch
# may be up to 100,000 rows (``retention.batch``), so its ids go in slices.
_IN_SLICE = 1000

# An item with any delivery not yet sent keeps its alert (and so itself) in the database.
_UNDELIVERED = (
    select(DeliveryRow.id)
    .join(AlertRow, AlertRow.id == DeliveryRow.alert_id)
    .where(AlertRow.item_id == ItemRow.id, DeliveryRow.state != DeliveryState.SENT)
)


class RetentionStore(StoreBase):
    def prune_story_keys(self, before: datetime, batch: int) -> int:
        """The stories index's rows older than its window: one transaction."""
        with storage_errors("prune the stories index"), self._session() as s, s.begin():
            return prune_story_keys(s, before, batch)

    def prune_items(self, before: datetime, now: datetime, batch: int) -> int:
        """Delete up to ``batch`` items first seen before ``before`` whose deliveries are
        all sent (or that have none), with their alerts and deliveries, and tombstone each
        one as seen at ``now``: one transaction. Returns how many went; fewer than
        ``batch`` means none are left to go."""
        due = (
            select(ItemRow.id, ItemRow.feed_id, ItemRow.key_hash)
            .where(ItemRow.first_seen_at < before, ~exists(_UNDELIVERED))
            # No ORDER BY: every row found is due, and sorting them all (a backlog of
            # years, one first_seen_at per poll) for each batch would cost more than it.
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        with storage_errors("prune items"), self._session() as s, s.begin():
            rows = s.execute(due).all()
            if not rows:
                return 0
            tombstones = self._insert(PrunedItemRow).on_conflict_do_nothing()
            s.execute(
                tombstones,
                [{"feed_id": r.feed_id, "key_hash": r.key_hash, "last_seen_at": now} for r in rows],
            )
            for part in _slices(rows):
                s.execute(delete(ItemRow).where(ItemRow.id.in_([r.id for r in part])))
            return len(rows)

    def forget_pruned(self, before: datetime, batch: int) -> int:
        """Forget up to ``batch`` tombstones last served before ``before``: one
        transaction. Returns how many went; fewer than ``batch`` means none are left."""
        due = (
            select(PrunedItemRow.feed_id, PrunedItemRow.key_hash)
            .where(PrunedItemRow.last_seen_at < before)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        key = tuple_(PrunedItemRow.feed_id, PrunedItemRow.key_hash)
        with storage_errors("forget pruned items"), self._session() as s, s.begin():
            rows = s.execute(due).all()
            for part in _slices(rows):
                s.execute(delete(PrunedItemRow).where(key.in_([tuple(r) for r in part])))
            return len(rows)

    def count_held_items(self, before: datetime) -> int:
        """Items first seen before ``before`` that stay because a delivery is still to be
        made: what the operator may want to look at (``monitor alerts``)."""
        query = (
            select(func.count())
            .select_from(ItemRow)
            .where(ItemRow.first_seen_at < before, exists(_UNDELIVERED))
        )
        with storage_errors("count held items"), self._session() as s:
            return s.scalar(query) or 0


T = TypeVar("T")


def _slices(rows: Sequence[T]) -> list[Sequence[T]]:
    return [rows[i : i + _IN_SLICE] for i in range(0, len(rows), _IN_SLICE)]
