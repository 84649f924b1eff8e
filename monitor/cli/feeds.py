"""``monitor feeds``: every feed's state, failing ones made obvious."""

from __future__ import annotations

from typing import Any

import typer

from monitor.cli.common import ConfigOption, JsonOption, iso, load, with_store
from monitor.cli.terminal import echo, echo_json
from monitor.store import FeedStatus
from monitor.types import FeedState

app = typer.Typer()


@app.command()
def feeds(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List feeds with their state; failing feeds are flagged."""
    settings = load(config)
    rows = with_store(settings, lambda store: store.list_feeds())
    if as_json:
        echo_json([_feed_json(r) for r in rows])
        return
    echo(_feeds_table(rows))


def _feed_json(r: FeedStatus) -> dict[str, Any]:
    return {
        "url": r.url,
        "configured_url": r.configured_url,
        "name": r.name,
        "state": r.state,
        "active": r.active,
        "last_polled_at": iso(r.last_polled_at),
        "last_status": r.last_status,
        "last_error": r.last_error,
        "warning": r.warning,
        "error_count": r.error_count,
        "items": r.items,
        "next_poll_at": iso(r.next_poll_at),
    }


def _feeds_table(rows: list[FeedStatus]) -> str:
    if not rows:
        return "no feeds configured"
    lines = [f"{'STATE':7} {'ITEMS':>6} {'ERRS':>4} {'LAST POLL':20} {'NEXT POLL':20} NAME / URL"]
    for r in rows:
        state = r.state if r.active else f"{r.state}*"
        flag = "!" if r.state in {FeedState.ERROR, FeedState.GONE} else " "
        lines.append(
            f"{state:7} {r.items:>6} {r.error_count:>4} "
            f"{(iso(r.last_polled_at) or '-')[:19]:20} {(iso(r.next_poll_at) or '-')[:19]:20} "
            f"{flag}{r.name}"
        )
        if r.url != r.name:
            lines.append(f"{'':62}{r.url}")
        if r.url != r.configured_url:
            lines.append(f"{'':62}moved permanently from {r.configured_url}")
        if r.last_error and r.state != FeedState.OK:
            lines.append(f"{'':62}last error: {r.last_error}")
        elif r.warning:
            lines.append(f"{'':62}warning: {r.warning}")
    if any(not r.active for r in rows):
        lines.append("* no longer in the configuration (not polled; items kept)")
    return "\n".join(lines)
