"""Shared fixtures: a fresh database of each kind, real servers on 127.0.0.1.

Storage and service tests take ``db_url`` and run once on SQLite and once on PostgreSQL.
PostgreSQL: ``$MONITOR_TEST_POSTGRES_URL`` (default: postgres on 127.0.0.1:5432, as set up
by ``make test``); each run creates its own database and drops it at the end, and each test
starts from empty tables. ``MONITOR_TEST_SKIP_POSTGRES=1`` skips the PostgreSQL runs.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from monitor.store.engine import create_db_engine, migrate

pytest_plugins = ["feedserver", "receivers"]

ADMIN_URL = os.environ.get(
    "MONITOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TABLES = ("deliveries", "alerts", "items", "feeds")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if os.environ.get("MONITOR_TEST_SKIP_POSTGRES") == "1":
        pytest.skip("MONITOR_TEST_SKIP_POSTGRES=1")
    name = f"monitor_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {ADMIN_URL} ({exc.__class__.__name__}); "
            "run `make test` (it starts PostgreSQL) or set MONITOR_TEST_SKIP_POSTGRES=1"
        )
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = create_db_engine(url)
    migrate(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with the current schema and no rows, of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'monitor.db'}"
    url: str = request.getfixturevalue("postgres_url")
    engine = create_db_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'monitor.db'}"
