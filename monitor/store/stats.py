"""What the HTTP server asks of the database: is it there, and how many feeds and
deliveries are in each state.

Read at each readiness probe and each Prometheus scrape, so every query is one cheap
aggregate over an indexed or small table (feeds are few; deliveries are counted through
``ix_deliveries_due``, which leads with ``state``). It changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import case, func, select

from monitor.errors import StorageError
from monitor.store.base import StoreBase, storage_errors
from monitor.store.schema import DeliveryRow, FeedRow
from monitor.types import DeliveryState, frozen

PAUSED = "paused"  # a feed the operator paused, whatever its last poll's state
# Sent deliveries are history, not work: only these states are counted.
WAITING = (DeliveryState.PENDING, DeliveryState.FAILED, DeliveryState.DEAD)


@frozen
class StateCounts:
    """Active feeds by state (paused ones as ``paused``) and deliveries still to be
    settled or given up (pending, failed, dead)."""

    feeds: Mapping[str, int]
    deliveries: Mapping[str, int]


class StatsStore(StoreBase):
    def ping(self) -> None:
        """One round trip to the database, or ``StorageError``.

        On the raw DBAPI connection: through a session, SQLite would begin its transaction
        with ``BEGIN IMMEDIATE`` (see ``engine.py``) and wait behind a writer. The driver's
        own errors (connecting too) are not wrapped by SQLAlchemy: they are caught here."""
        driver_error = self.engine.dialect.loaded_dbapi.Error
        try:
            with storage_errors("reach the database"):  # e.g. no connection free in time
                connection = self.engine.raw_connection()
        except driver_error as exc:
            raise StorageError(f"cannot reach the database: {exc}") from exc
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT 1")
            cursor.fetchall()
            cursor.close()
        except driver_error as exc:
            connection.invalidate()  # not back to the pool: it may be broken
            raise StorageError(f"cannot reach the database: {exc}") from exc
        finally:
            connection.close()

    def count_states(self) -> StateCounts:
        state = case((FeedRow.paused_at.is_not(None), PAUSED), else_=FeedRow.state)
        feeds = select(state, func.count()).where(FeedRow.active.is_(True)).group_by(state)
        deliveries = (
            select(DeliveryRow.state, func.count())
            .where(DeliveryRow.state.in_([str(s) for s in WAITING]))
            .group_by(DeliveryRow.state)
        )
        with storage_errors("count feeds and deliveries"), self._session() as s:
            return StateCounts(
                feeds={str(k): n for k, n in s.execute(feeds)},
                deliveries={str(k): n for k, n in s.execute(deliveries)},
            )
