"""Database engine and migrations.

SQLite (the embedded default) runs in WAL mode with a busy timeout so the service's threads
and a concurrent ``monitor`` command can share the file; PostgreSQL (psycopg 3) is the
production option. The schema is brought to the latest Alembic revision at start.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from monitor.errors import StorageError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
# The advisory lock migrations take on PostgreSQL: any constant other code does not use
# ("monitor" in ASCII). Advisory locks are per database, so databases do not contend.
MIGRATE_LOCK = 0x6D6F6E69746F72
log = logging.getLogger(__name__)

SQLITE_POOL = 2
SQLITE_OVERFLOW = 18  # as many as threads that may want one at once
SQLITE_STATEMENTS = 32


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``; ``postgresql://`` is taken to mean psycopg 3. Messages show
    the URL with its password hidden (they reach the terminal and the logs)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        # The library's message may quote a piece of the URL: only the scheme is shown.
        message = f"invalid database URL {_scheme_only(url)}: expected dialect://user@host/db"
        raise StorageError(message) from None
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        # SQLite's memory is each connection's own (its page cache and prepared statements),
        # and one writer at a time is all the database allows: two connections kept, more
        # opened for a burst and closed after it, and 32 statements prepared per connection
        # (the steady state's own; the driver's 128 held 40 MB at the first pass).
        kwargs["connect_args"] = {"timeout": 30, "cached_statements": SQLITE_STATEMENTS}
        kwargs.update(pool_size=SQLITE_POOL, max_overflow=SQLITE_OVERFLOW)
    else:
        kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=10)
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError, ValueError, TypeError) as exc:
        # ValueError, TypeError: a query parameter the driver cannot take (?pool_size=x)
        shown = parsed.render_as_string(hide_password=True)
        raise StorageError(f"cannot use database URL {shown!r}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine


def _scheme_only(url: str) -> str:
    """A URL that does not parse may have its password anywhere: only its scheme is shown."""
    scheme, separator, _ = url.partition("://")
    if separator and scheme.replace("+", "").isalnum():
        return repr(f"{scheme}://…")
    return "(not shown)"


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
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine) -> None:
    """Apply every pending migration (idempotent).

    Replicas started together on one PostgreSQL database all migrate at once: without a
    lock, all but one fail (a duplicate key creating ``alembic_version``). So the
    migration transaction first takes a transaction-level advisory lock: the others wait
    for it, then find the schema at head and change nothing. The lock ends with the
    transaction, even if the process dies. On SQLite the transaction's ``BEGIN IMMEDIATE``
    already serialises migrations.

    A database already at the newest revision is left alone without loading Alembic:
    about 10 MB the running service would otherwise keep for nothing."""
    if _at_head(engine):
        return
    from alembic import command

    config = alembic_config()
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot migrate database {engine.url!r}: {exc}") from exc


def head_revision() -> str:
    """The newest migration's revision: the number its file name starts with (they are
    numbered, each revising the one before; a test holds this to Alembic's own head)."""
    return max(p.name.split("_")[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def _at_head(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            found = connection.execute(text("SELECT version_num FROM alembic_version"))
            return found.scalar() == head_revision()
    except SQLAlchemyError:  # a new database: no version table yet
        return False


def migrate_apart(engine: Engine) -> None:
    """:func:`migrate`, with Alembic run in a child process when a migration is due: the
    service that runs for months never loads it (about 10 MB it would keep until it
    stops). The database URL reaches the child through its environment, not its command
    line, which other users of the machine can read."""
    if _at_head(engine):
        return
    url = engine.url.render_as_string(hide_password=False)
    done = subprocess.run(
        [sys.executable, "-m", "monitor.store.engine"],
        env={**os.environ, _URL_VARIABLE: url},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise StorageError(lines[-1])


_URL_VARIABLE = "MONITOR_MIGRATE_URL"

if __name__ == "__main__":  # the child of migrate_apart
    try:
        migrate(create_db_engine(os.environ[_URL_VARIABLE]))
    except StorageError as exc:  # one line: the parent reports the last one
        sys.exit(" ".join(str(exc).split()))
