"""The clock leases are read on (monitor/store/clock.py): the database server's time on
PostgreSQL, this host's on SQLite; wired into the pipeline and the outbox by the app."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from monitor.app import App
from monitor.config import load_settings
from monitor.store.clock import DatabaseClock
from monitor.store.engine import create_db_engine

HOUR = timedelta(hours=1)


def server_now(url: str) -> datetime:
    engine = create_db_engine(url)
    with engine.connect() as connection:
        now: datetime = connection.execute(text("SELECT clock_timestamp()")).scalar_one()
    engine.dispose()
    return now


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_postgresql_time_is_the_servers_even_when_this_hosts_clock_is_wrong(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    def behind() -> datetime:
        return datetime.now(UTC) - HOUR

    with caplog.at_level(logging.WARNING, logger="monitor.store.clock"):
        clock = DatabaseClock(create_db_engine(postgres_url), local=behind)
    assert abs(clock() - server_now(postgres_url)) < timedelta(seconds=2)
    assert abs(clock.offset - HOUR) < timedelta(seconds=2)
    assert "this host's clock is 3600" in caplog.text and "behind the database" in caplog.text


def test_the_offset_is_measured_again_after_refresh(postgres_url: str) -> None:
    shift = [timedelta(0)]

    def drifting() -> datetime:
        return datetime.now(UTC) + shift[0]

    clock = DatabaseClock(create_db_engine(postgres_url), local=drifting, refresh=0.0)
    shift[0] = 2 * HOUR  # this host's clock jumps ahead
    clock()  # stale: measured again, in the background
    assert wait_until(lambda: abs(clock.offset + 2 * HOUR) < timedelta(seconds=2))
    assert abs(clock() - server_now(postgres_url)) < timedelta(seconds=2)


def test_sqlite_time_is_this_hosts(sqlite_url: str) -> None:
    def fixed() -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)

    clock = DatabaseClock(create_db_engine(sqlite_url), local=fixed)
    assert clock() == datetime(2026, 1, 1, tzinfo=UTC)
    assert clock.offset == timedelta(0)


def test_an_unreachable_server_keeps_the_last_offset(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_db_engine(postgres_url)
    clock = DatabaseClock(engine, local=lambda: datetime.now(UTC) - HOUR, refresh=0.0)
    offset = clock.offset
    engine.dispose()
    clock.engine = create_db_engine("postgresql+psycopg://postgres@127.0.0.1:9/nothing")
    with caplog.at_level(logging.WARNING, logger="monitor.store.clock"):
        now = clock()  # measuring fails, in the background: no exception, the last offset
        assert wait_until(lambda: "cannot read the database server's clock" in caplog.text)
    assert clock.offset == offset
    assert abs(now - server_now(postgres_url)) < timedelta(seconds=2)


def test_the_app_reads_every_lease_on_one_clock(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"""
database: {db_url}
polling: {{parse_workers: 0}}
feeds: [{{url: "http://127.0.0.1:9/feed.xml"}}]
watchlists: [{{name: csto, terms: [CSTO], notify: [log]}}]
channels: [{{name: log, type: log}}]
"""
    )
    app = App(load_settings(path))
    try:
        assert isinstance(app.clock, DatabaseClock)
        assert app.pipeline.clock is app.clock
        assert app.outbox.clock is app.clock
    finally:
        asyncio.run(app.aclose())
