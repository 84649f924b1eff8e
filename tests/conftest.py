"""Shared fixtures: a fresh database of each kind, real servers on 127.0.0.1.

Storage and service tests take ``db_url`` and run once on SQLite and once on PostgreSQL.
PostgreSQL: ``$MONITOR_TEST_POSTGRES_URL`` (default: postgres on 127.0.0.1:5432, as set up
by ``make test``); each run creates its own database and drops it at the end, and each test
starts from empty tables. ``MONITOR_TEST_SKIP_POSTGRES=1`` skips the PostgreSQL runs.

``make test`` runs the suite on two pytest-xdist workers (``-n 2 --dist loadgroup``). Each
worker is a pytest session of its own, so it creates and drops a database of its own (the
name carries the worker and a random part: two workers, or two runs at once, never share
one). Tests marked ``slow`` are started first, so the long ones do not end up last on one
worker while the other idles. The tests that judge how several ``monitor`` processes
share the work, and the crash test that starts one again and again, carry
``xdist_group("processes")``: they run one after the other on one worker (run beside the
crash tests on a starved CPU, one of three instances got too small a share of the polls).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from monitor.store.engine import create_db_engine, migrate

pytest_plugins = ["feedserver", "receivers"]

ADMIN_URL = os.environ.get(
    "MONITOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked ``slow`` first, each kept in its order (``sort`` is stable)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def _utf8(text: str) -> str:
    """``text`` with any lone surrogate written as ``\\udXXX``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A worker sends each report to the controller as UTF-8, and a lone surrogate (the
    hostile-input tests log and assert on them) would kill the worker: escape it there."""
    report = yield
    if os.environ.get("PYTEST_XDIST_WORKER"):
        report.sections = [(title, _utf8(content)) for title, content in report.sections]
        if report.failed and _utf8(longrepr := str(report.longrepr)) != longrepr:
            report.longrepr = _utf8(longrepr)
    return report


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if os.environ.get("MONITOR_TEST_SKIP_POSTGRES") == "1":
        pytest.skip("MONITOR_TEST_SKIP_POSTGRES=1")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"monitor_test_{worker}_{uuid.uuid4().hex[:12]}"
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


@pytest.fixture(scope="session")
def postgres_emptier(postgres_url: str) -> Iterator[Callable[[], None]]:
    """Empties every table of the schema but Alembic's (a table a migration adds is
    included without a list to keep up to date), with one engine for the whole session: a
    new engine and connection for each test cost more than the TRUNCATE itself."""
    engine = create_db_engine(postgres_url)
    with engine.connect() as conn:
        tables = conn.execute(
            text(
                "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = "
                "current_schema() AND tablename <> 'alembic_version' ORDER BY tablename"
            )
        ).scalars()
        truncate = text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")

    def empty() -> None:
        with engine.begin() as conn:
            conn.execute(truncate)

    yield empty
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with the current schema and no rows, of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'monitor.db'}"
    url: str = request.getfixturevalue("postgres_url")
    request.getfixturevalue("postgres_emptier")()
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'monitor.db'}"
