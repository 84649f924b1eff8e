"""Commands that run the pipeline: ``run``, ``poll``, ``check``, ``version``."""

from __future__ import annotations

import asyncio
import logging
import signal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import click

from monitor import __version__
from monitor.cli.common import (
    config_option,
    load,
    log_level_option,
    refuse,
    run_async,
    setup_logging,
)
from monitor.cli.terminal import echo
from monitor.config import Settings, load_settings
from monitor.errors import ConfigError, MonitorError
from monitor.types import FeedState

if TYPE_CHECKING:
    from monitor.schedule import Service

log = logging.getLogger("monitor.service")


@click.command()
@config_option
def check(config: Path | None) -> None:
    """Validate the configuration; exit non-zero naming each problem."""
    settings = load(config)
    problems = _unusable_parts(settings)
    if problems:
        refuse(ConfigError(settings.source, problems))
    echo(
        f"{settings.source}: ok ({len(settings.feeds)} feeds, "
        f"{len(settings.watchlists)} watchlists, {len(settings.channels)} channels)"
    )


def _unusable_parts(settings: Settings) -> list[str]:
    """What only building the parts can tell: that the database's driver is installed and
    each channel can be built (a CA file that cannot be read). Nothing is connected to,
    created or sent; the messages hide the database password."""
    from alerts.base import Channel
    from alerts.errors import ChannelConfigError
    from alerts.registry import build_channel, delivery_targets
    from monitor.store.engine import create_db_engine

    problems: list[str] = []
    try:
        create_db_engine(settings.database).dispose()
    except MonitorError as exc:
        problems.append(f"database: {exc}")
    built: list[Channel] = []
    for i, channel in enumerate(settings.channels):
        try:
            built.extend(build_channel(target) for target in delivery_targets(channel))
        except ChannelConfigError as exc:
            problems.append(f"channels[{i}]: {exc}")

    async def close() -> None:
        await asyncio.gather(*(channel.aclose() for channel in built))

    asyncio.run(close())
    return problems


@click.command()
@config_option
@log_level_option
def run(config: Path | None, log_level: str) -> None:
    """Run the service until SIGTERM or SIGINT; SIGHUP reloads the configuration."""
    settings = load(config)
    setup_logging(log_level, settings.log.format)
    run_async(_serve(settings))


async def _serve(settings: Settings) -> None:
    from monitor.app import App
    from monitor.schedule import Service
    from monitor.web.server import serve_http

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with await asyncio.to_thread(partial(App, settings, long_running=True)) as built:
        service = Service(built)
        reloads: set[asyncio.Task[None]] = set()

        def reload() -> None:
            task = asyncio.create_task(_reload(service, Path(settings.source)))
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, reload)
        # Stopped after the service: while it drains, /readyz answers "stopping".
        async with serve_http(service, settings.http):
            await service.run(stop)


async def _reload(service: Service, path: Path) -> None:
    """SIGHUP: read the configuration file again and have the service apply it. A file with
    problems is reported (each problem named) and the running configuration stays."""
    try:
        settings = await asyncio.to_thread(load_settings, path)
        changes = await service.reload(settings)
    except MonitorError as exc:
        _not_reloaded(exc)
        return
    log.info("configuration reloaded from %s: %s", path, "; ".join(changes) or "no change")


def _not_reloaded(exc: MonitorError) -> None:
    """One log line, each problem named."""
    if isinstance(exc, ConfigError):
        reason = f"{exc.source}: {'; '.join(exc.problems)}"
    else:
        reason = str(exc)
    log.error("configuration not reloaded, the running one stays: %s", reason)


@click.command()
@config_option
@click.option("--due", is_flag=True, help="Only the feeds that are due.")
@log_level_option
def poll(config: Path | None, due: bool, log_level: str) -> None:
    """Poll every feed once (or only the due ones), deliver pending alerts, exit."""
    settings = load(config)
    setup_logging(log_level, settings.log.format)
    from monitor.app import poll_once

    reports, sent = run_async(poll_once(settings, only_due=due))
    failed = [r for r in reports if r.state != FeedState.OK]
    echo(
        f"polled {len(reports)} feed(s): {sum(r.new for r in reports)} new item(s), "
        f"{sum(r.matched for r in reports)} alert(s); {sent} delivery attempt(s); "
        f"{len(failed)} feed(s) failing"
    )
    for r in failed:
        echo(f"  {r.state}: {r.url}: {r.error}")


@click.command()
def version() -> None:
    """Print the version."""
    echo(__version__)


COMMANDS = (check, run, poll, version)
