"""What the dashboard charts: alerts per watchlist and day, and when feeds were last
polled.

Each query is one aggregate over an indexed column (``alerts.created_at``, feeds are few);
days are UTC days. It changes nothing.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select

from monitor.store.base import StoreBase, storage_errors
from monitor.store.schema import AlertRow, FeedRow


class ActivityStore(StoreBase):
    def count_alerts_by_day(
        self, since: datetime, watchlist: str | None = None
    ) -> dict[str, dict[date, int]]:
        """Alerts created at or after ``since``: per watchlist, per UTC day."""
        day = func.date(AlertRow.created_at)
        query = (
            select(AlertRow.watchlist, day, func.count())
            .where(AlertRow.created_at >= since)
            .group_by(AlertRow.watchlist, day)
        )
        if watchlist is not None:
            query = query.where(AlertRow.watchlist == watchlist)
        counts: dict[str, dict[date, int]] = {}
        with storage_errors("count alerts by day"), self._session() as s:
            for name, when, count in s.execute(query):
                as_date = when if isinstance(when, date) else date.fromisoformat(str(when))
                counts.setdefault(name, {})[as_date] = count
        return counts

    def last_poll_at(self) -> datetime | None:
        """When any active feed was last polled."""
        query = select(func.max(FeedRow.last_polled_at)).where(FeedRow.active.is_(True))
        with storage_errors("read the last poll"), self._session() as s:
            # max() keeps the column's type: an aware UTC datetime on both databases
            last: datetime | None = s.execute(query).scalar_one_or_none()
        return last
