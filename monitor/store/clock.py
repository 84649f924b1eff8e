"""The clock leases and schedules are read on: the database server's, on PostgreSQL."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from monitor.types import utcnow

log = logging.getLogger(__name__)


class DatabaseClock:
    """The database server's time, read through this host's clock: the clock of every lease.

    Instances claim due feeds and deliveries with leases stored in the database. On
    PostgreSQL they may run on several hosts, and a host whose clock runs ahead would take
    over another's lease before it ends (a double poll, a duplicate alert). So every instance
    reads time as the server's: this host's clock plus the server's offset from it, measured
    at start and again every ``refresh`` seconds, in the background (one query; half its round
    trip is allowed for). SQLite only runs on this host: its offset is zero and never
    measured. If a measurement fails, the last offset is kept: the clock itself never fails
    and never waits.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        local: Callable[[], datetime] = utcnow,
        refresh: float = 3600.0,
    ) -> None:
        self.engine = engine
        self.local = local
        self.refresh = refresh
        self.offset = timedelta(0)
        self._measured_at: float | None = None
        if engine.dialect.name == "postgresql":
            self.measure()
            if abs(self.offset) > timedelta(seconds=1):
                log.warning(
                    "this host's clock is %.1f s %s the database server's; leases and "
                    "schedules use the server's time",
                    abs(self.offset.total_seconds()),
                    "behind" if self.offset > timedelta(0) else "ahead of",
                )

    def __call__(self) -> datetime:
        if self._measured_at is not None and time.monotonic() - self._measured_at > self.refresh:
            # measured again in the background: reading the clock never waits on the network
            self._measured_at = time.monotonic()
            threading.Thread(target=self.measure, name="clock-offset", daemon=True).start()
        return self.local() + self.offset

    def measure(self) -> None:
        """Measure the server's offset from this host's clock (PostgreSQL only)."""
        self._measured_at = time.monotonic()
        try:
            with self.engine.connect() as connection:
                before = self.local()
                server = connection.execute(text("SELECT clock_timestamp()")).scalar_one()
                after = self.local()
        except SQLAlchemyError as exc:
            log.warning(
                "cannot read the database server's clock (keeping the last offset): %s", exc
            )
            return
        self.offset = server - (before + (after - before) / 2)
