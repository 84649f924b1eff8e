"""What every command shares: the options, loading settings, reporting errors.

Problems the user can fix (configuration, database URL) are printed as one clear message
with exit status 2 (configuration) or 1 (anything else), never as a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from click.exceptions import Exit

from monitor.cli.terminal import LOG_FORMAT, SafeFormatter, SafeJsonFormatter, echo
from monitor.config import Settings, default_config_path, load_settings
from monitor.errors import ConfigError, MonitorError

# Each decorator makes a new option for each command it is applied to.
FILE_PATH = click.Path(path_type=Path)
config_option = click.option(
    "--config",
    "-c",
    type=FILE_PATH,
    help="Configuration file [default: $MONITOR_CONFIG, else ./monitor.yaml].",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
log_level_option = click.option(
    "--log-level", default="INFO", show_default=True, help="DEBUG, INFO, WARNING or ERROR."
)
T = TypeVar("T")


class Commands(click.Group):
    """Subcommands in the order they were added, not by name (click's way): ``check`` and
    ``run`` first, ``feeds import`` before ``export``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


def load(config: Path | None) -> Settings:
    try:
        return load_settings(config or default_config_path())
    except ConfigError as exc:
        refuse(exc)


def refuse(exc: ConfigError) -> NoReturn:
    """A configuration problem: each one named, exit status 2."""
    echo(f"error: {exc}", err=True)
    raise Exit(2) from None


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except MonitorError as exc:
        echo(f"error: {exc}", err=True)
        raise Exit(1) from None


# Below WARNING these log each request's URL; urllib3's (under Apprise) holds bot tokens.
QUIET_LOGGERS = ("httpx", "httpcore", "apscheduler", "alembic", "urllib3")


def setup_logging(level: str, form: str = "text") -> None:
    """Log lines to stderr (journald and container runtimes collect it), as text or, with
    ``log: {format: json}``, as one JSON object per line."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = SafeJsonFormatter() if form == "json" else SafeFormatter(LOG_FORMAT)
    handler.setFormatter(formatter)
    logging.basicConfig(level=level.upper(), handlers=[handler])
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def with_store(settings: Settings, query: Callable[[Any], T]) -> T:
    from monitor.store import Store
    from monitor.store.engine import create_db_engine, migrate

    try:
        engine = create_db_engine(settings.database)
        migrate(engine)
        try:
            return query(Store(engine))
        finally:
            engine.dispose()
    except MonitorError as exc:
        echo(f"error: {exc}", err=True)
        raise Exit(1) from None


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None
