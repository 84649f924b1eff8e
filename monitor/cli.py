"""The ``monitor`` command: parse arguments, call the app, print.

Every command takes ``--config FILE`` (default ``$MONITOR_CONFIG``, else ``./monitor.yaml``).
Problems the user can fix (configuration, database URL) are printed as one clear message
with exit status 2 (configuration) or 1 (anything else), never as a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from monitor import __version__
from monitor.config import Settings, default_config_path, load_settings
from monitor.errors import ConfigError, MonitorError
from monitor.store import AlertRecord, FeedStatus

app = typer.Typer(
    help="Poll feeds, match watchlists, send alerts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Configuration file [default: $MONITOR_CONFIG, else ./monitor.yaml].",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
LogLevel = Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")]
T = TypeVar("T")


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config or default_config_path())
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except MonitorError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command()
def check(config: ConfigOption = None) -> None:
    """Validate the configuration; exit non-zero naming each problem."""
    settings = _settings(config)
    typer.echo(
        f"{settings.source}: ok ({len(settings.feeds)} feeds, "
        f"{len(settings.watchlists)} watchlists, {len(settings.channels)} channels)"
    )


@app.command()
def run(config: ConfigOption = None, log_level: LogLevel = "INFO") -> None:
    """Run the service until SIGTERM or SIGINT."""
    settings = _settings(config)
    _logging(log_level)
    _run(_serve(settings))


async def _serve(settings: Settings) -> None:
    from monitor.app import App
    from monitor.schedule import Service

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with await asyncio.to_thread(App, settings) as built:
        service = Service(
            built.pipeline,
            tick=settings.service.tick,
            max_inflight=settings.polling.max_concurrency * 2,
        )
        await service.run(stop)


@app.command()
def poll(
    config: ConfigOption = None,
    due: Annotated[bool, typer.Option("--due", help="Only the feeds that are due.")] = False,
    log_level: LogLevel = "INFO",
) -> None:
    """Poll every feed once (or only the due ones), deliver pending alerts, exit."""
    settings = _settings(config)
    _logging(log_level)
    from monitor.app import poll_once

    reports, sent = _run(poll_once(settings, only_due=due))
    failed = [r for r in reports if r.state != "ok"]
    typer.echo(
        f"polled {len(reports)} feed(s): {sum(r.new for r in reports)} new item(s), "
        f"{sum(r.matched for r in reports)} alert(s); {sent} delivery attempt(s); "
        f"{len(failed)} feed(s) failing"
    )
    for r in failed:
        typer.echo(f"  {r.state}: {r.url}: {r.error}")


def _with_store(settings: Settings, query: Callable[[Any], T]) -> T:
    from monitor.db import create_db_engine, migrate
    from monitor.store import Store

    try:
        engine = create_db_engine(settings.database)
        migrate(engine)
        try:
            return query(Store(engine))
        finally:
            engine.dispose()
    except MonitorError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def feeds(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List feeds with their state; failing feeds are flagged."""
    settings = _settings(config)
    rows = _with_store(settings, lambda store: store.list_feeds())
    if as_json:
        typer.echo(json.dumps([_feed_json(r) for r in rows], indent=2, ensure_ascii=False))
        return
    typer.echo(_feeds_table(rows))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _feed_json(r: FeedStatus) -> dict[str, Any]:
    return {
        "url": r.url,
        "configured_url": r.configured_url,
        "name": r.name,
        "state": r.state,
        "active": r.active,
        "last_polled_at": _iso(r.last_polled_at),
        "last_status": r.last_status,
        "last_error": r.last_error,
        "warning": r.warning,
        "error_count": r.error_count,
        "items": r.items,
        "next_poll_at": _iso(r.next_poll_at),
    }


def _feeds_table(rows: list[FeedStatus]) -> str:
    if not rows:
        return "no feeds configured"
    lines = [f"{'STATE':7} {'ITEMS':>6} {'ERRS':>4} {'LAST POLL':20} {'NEXT POLL':20} NAME / URL"]
    for r in rows:
        state = r.state if r.active else f"{r.state}*"
        flag = "!" if r.state in {"error", "gone"} else " "
        lines.append(
            f"{state:7} {r.items:>6} {r.error_count:>4} "
            f"{(_iso(r.last_polled_at) or '-')[:19]:20} {(_iso(r.next_poll_at) or '-')[:19]:20} "
            f"{flag}{r.name}"
        )
        if r.url != r.name:
            lines.append(f"{'':62}{r.url}")
        if r.url != r.configured_url:
            lines.append(f"{'':62}moved permanently from {r.configured_url}")
        if r.last_error and r.state != "ok":
            lines.append(f"{'':62}last error: {r.last_error}")
        elif r.warning:
            lines.append(f"{'':62}warning: {r.warning}")
    if any(not r.active for r in rows):
        lines.append("* no longer in the configuration (not polled; items kept)")
    return "\n".join(lines)


@app.command()
def alerts(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 20,
    state: Annotated[
        str | None,
        typer.Option("--state", help="Only alerts with a delivery in this state."),
    ] = None,
) -> None:
    """List recent alerts and the state of their deliveries."""
    settings = _settings(config)
    if state and state not in {"pending", "sent", "failed", "dead"}:
        typer.echo("error: --state must be one of pending, sent, failed, dead", err=True)
        raise typer.Exit(2)
    rows = _with_store(settings, lambda store: store.list_alerts(limit=limit, state=state))
    if as_json:
        typer.echo(json.dumps([_alert_json(r) for r in rows], indent=2, ensure_ascii=False))
        return
    if not rows:
        typer.echo("no alerts")
    for r in rows:
        a = r.alert
        typer.echo(f"{_iso(a.created_at)} [{a.watchlist}] {a.item.title or '(untitled)'}")
        typer.echo(f"    {a.item.link or '-'}  ({a.feed.name})  id={a.id}")
        for d in r.deliveries:
            error = f": {d.last_error}" if d.last_error else ""
            typer.echo(f"    -> {d.channel}: {d.state} after {d.attempts} attempt(s){error}")


def _alert_json(r: AlertRecord) -> dict[str, Any]:
    a = r.alert
    return {
        "id": a.id,
        "watchlist": a.watchlist,
        "item": {
            "title": a.item.title,
            "link": a.item.link,
            "published": _iso(a.item.published),
            "guid": a.item.guid,
        },
        "feed": {"name": a.feed.name, "url": a.feed.url},
        "matches": [{"term": m.term, "field": m.field, "snippet": m.snippet} for m in a.matches],
        "created_at": _iso(a.created_at),
        "deliveries": [
            {
                "channel": d.channel,
                "state": d.state,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "next_attempt_at": _iso(d.next_attempt_at),
                "sent_at": _iso(d.sent_at),
            }
            for d in r.deliveries
        ],
    }


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    app()
