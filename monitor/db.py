"""Database engine, migrations and the clock leases are read on.

SQLite (the embedded default) runs in WAL mode with a busy timeout so the service's threads
and a concurrent ``monitor`` command can share the file; PostgreSQL (psycopg 3) is the
production option. The schema is brought to the latest Alembic revision at start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from monitor.errors import StorageError

MIGRATIONS = Path(__file__).with_name("migrations")
log = logging.getLogger(__name__)


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``; ``postgresql://`` is taken to mean psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageError(f"invalid database URL {url!r}: {exc}") from None
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=10)
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError) as exc:
        raise StorageError(f"cannot use database URL {url!r}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_begin_immediate(connection: Any) -> None:
    """Take SQLite's write lock when a transaction starts, not at its first write, so that
    a claim (select, then update) by ``monitor poll`` and by ``monitor run`` cannot both
    read the same due feed. This is SQLAlchemy's documented recipe for pysqlite."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let the "begin" hook issue BEGIN itself
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine) -> None:
    """Apply every pending migration (idempotent)."""
    config = alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot migrate database {engine.url!r}: {exc}") from exc


def _local_now() -> datetime:
    return datetime.now(UTC)


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
        local: Callable[[], datetime] = _local_now,
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
