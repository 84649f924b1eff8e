"""``monitor alerts`` and ``monitor channels``: what was sent, what waits, and repairs.

``alerts`` lists recent alerts with each delivery's state; ``alerts retry`` sends again
after a receiver is fixed; ``channels`` shows each channel's state, ``channels test``
sends a sample alert and says exactly what happened, ``channels enable`` lifts the
disabling a receiver's 410 caused.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import click
from click.exceptions import Exit

from alerts.base import Alert, AlertFeed, AlertItem, AlertMatch
from alerts.config_apprise import target_address
from alerts.errors import DeliveryError
from alerts.registry import build_channel
from alerts.render import plain_snippet
from monitor import PROJECT_URL
from monitor.cli.common import (
    Commands,
    config_option,
    iso,
    json_option,
    load,
    run_async,
    with_store,
)
from monitor.cli.terminal import echo, echo_json
from monitor.config import Settings
from monitor.store import AlertRecord
from monitor.store.clock import DatabaseClock
from monitor.stories.plan import StoryRole
from monitor.targets import target_configs, target_names
from monitor.types import DeliveryState, frozen, utcnow


@click.group(cls=Commands, invoke_without_command=True, help="Recent alerts and their deliveries.")
@config_option
@json_option
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many, newest first.",
)
@click.option("--state", help="Only alerts with a delivery in this state.")
@click.pass_context
def alerts(
    ctx: click.Context, config: Path | None, as_json: bool, limit: int, state: str | None
) -> None:
    """List recent alerts and the state of their deliveries."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load(config)
    if state and state not in set(DeliveryState):
        echo(f"error: --state must be one of {', '.join(DeliveryState)}", err=True)
        raise Exit(2)
    wanted = DeliveryState(state) if state else None
    rows = with_store(settings, lambda store: store.list_alerts(limit=limit, state=wanted))
    if as_json:
        echo_json([_alert_json(r) for r in rows])
        return
    if not rows:
        echo("no alerts")
    for r in rows:
        a = r.alert
        echo(f"{iso(a.created_at)} [{a.watchlist}] {a.item.title or '(untitled)'}")
        echo(f"    {a.item.link or '-'}  ({a.feed.name})  id={a.id}")
        if a.story is not None:
            echo(f"    {story_line(r)}")
        for d in r.deliveries:
            error = f": {d.last_error}" if d.last_error else ""
            echo(f"    -> {d.channel}: {d.state} after {d.attempts} attempt(s){error}")


@alerts.command("retry")
@click.argument("alert_id", required=False)
@click.option("--all-dead", is_flag=True, help="Every dead delivery.")
@config_option
def retry(alert_id: str | None, all_dead: bool, config: Path | None) -> None:
    """Send again, after fixing a receiver: one alert's unsent deliveries, or all dead ones.

    ALERT_ID: the alert to send again. The retry schedule starts over; the running service
    (or the next `monitor poll`) sends them."""
    if (alert_id is None) == (not all_dead):
        echo("error: give an alert id or --all-dead (not both)", err=True)
        raise Exit(2)
    settings = load(config)

    def reset(store: Any) -> int:
        if alert_id is not None and not store.alert_exists(alert_id):
            echo(f"error: no alert with id {alert_id}", err=True)
            raise Exit(1)
        now = DatabaseClock(store.engine)()  # leases are on the database server's clock
        return store.retry_deliveries(now, alert_id=alert_id, dead_only=all_dead)

    count, busy = with_store(settings, reset)
    echo(f"{count} deliver{'y' if count == 1 else 'ies'} queued to be sent again")
    if busy:
        echo(f"{busy} left alone: being sent right now (retry once they have an outcome)")


def _alert_json(r: AlertRecord) -> dict[str, Any]:
    a = r.alert
    return {
        "id": a.id,
        "watchlist": a.watchlist,
        "item": {
            "title": a.item.title,
            "link": a.item.link,
            "published": iso(a.item.published),
            "guid": a.item.guid,
        },
        "feed": {"name": a.feed.name, "url": a.feed.url},
        "matches": [
            {"term": m.term, "field": m.field, "snippet": plain_snippet(m.snippet)[0]}
            for m in a.matches
        ],
        "created_at": iso(a.created_at),
        "story": _story_json(r),
        "deliveries": [
            {
                "channel": d.channel,
                "state": d.state,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "next_attempt_at": iso(d.next_attempt_at),
                "sent_at": iso(d.sent_at),
            }
            for d in r.deliveries
        ],
    }


def story_line(r: AlertRecord) -> str:
    """The alert's story in words: how widely it is carried, and what this alert is to it."""
    story = r.alert.story
    assert story is not None
    part = {
        StoryRole.LEAD: "first alert",
        StoryRole.MEMBER: "attached: sent only where every item is wanted",
        StoryRole.UPDATE: f"spread update: now in {story.source_count} sources",
    }.get(r.role, "")
    items = f"{story.size} item{'s' if story.size != 1 else ''}"
    sources = f"{story.source_count} source{'s' if story.source_count != 1 else ''}"
    return f"story {story.id[:8]}: {items} from {sources}; {part}"


def _story_json(r: AlertRecord) -> dict[str, Any] | None:
    story = r.alert.story
    if story is None:
        return None
    return {
        "id": story.id,
        "title": story.title,
        "size": story.size,
        "source_count": story.source_count,
        "role": r.role,
        "sources": [
            {"feed": s.feed, "title": s.title, "link": s.link, "published": iso(s.published)}
            for s in story.sources
        ],
    }


@click.group(cls=Commands, invoke_without_command=True, help="Alert channels.")
@config_option
@json_option
@click.pass_context
def channels(ctx: click.Context, config: Path | None, as_json: bool) -> None:
    """List channels: type, disabled or not, deliveries by state."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load(config)
    targets = {t.name: t for t in target_configs(settings)}  # an apprise channel's URLs
    rows = with_store(settings, lambda store: store.list_channels(list(targets)))
    types = {name: t.type for name, t in targets.items()}
    where = {name: target_address(t) for name, t in targets.items()}
    if as_json:
        echo_json(
            [
                {
                    "name": r.name,
                    "type": types[r.name],
                    "address": where[r.name],
                    "disabled_at": iso(r.disabled_at),
                    "disabled_reason": r.disabled_reason,
                    "deliveries": {s: r.deliveries.get(s, 0) for s in DeliveryState},
                }
                for r in rows
            ]
        )
        return
    if not rows:
        echo("no channels configured")
    for r in rows:
        counts = ", ".join(f"{r.deliveries.get(s, 0)} {s}" for s in DeliveryState)
        state = (
            f"DISABLED since {iso(r.disabled_at)}: {r.disabled_reason}" if r.disabled_at else "ok"
        )
        kind = f"{types[r.name]} {where[r.name]}" if where[r.name] else types[r.name]
        echo(f"{r.name} ({kind}): {state}; deliveries: {counts}")


@channels.command("test")
@click.argument("name")
@config_option
def test_channel(name: str, config: Path | None) -> None:
    """Send a sample alert to a channel (each URL of an apprise channel, or one by its
    ``name#N``) and report exactly what happened.

    NAME: the channel to send a sample alert to."""
    settings = load(config)
    named = target_names(settings)
    targets = named.get(name) or [t for ts in named.values() for t in ts if t == name]
    if not targets:
        known = ", ".join(c.name for c in settings.channels) or "none"
        echo(f"error: no channel named {name!r} (configured: {known})", err=True)
        raise Exit(2)
    outcomes = [run_async(send_test_alert(settings, target)) for target in targets]
    for outcome in outcomes:
        echo(outcome.describe())
    if not all(outcome.ok for outcome in outcomes):
        raise Exit(1)


@channels.command("enable")
@click.argument("name")
@config_option
def enable(name: str, config: Path | None) -> None:
    """Enable a channel that a receiver's 410 Gone disabled; its waiting alerts go out.

    NAME: the channel to enable again."""
    settings = load(config)
    was = with_store(settings, lambda store: store.enable_channel(name))
    echo(f"channel {name} enabled" if was else f"channel {name} was not disabled")


@frozen
class SampleDelivery:
    """How a sample alert sent through one channel fared (``monitor channels test``)."""

    channel: str
    ok: bool
    detail: str
    retryable: bool = False
    ms: float = 0.0

    def describe(self) -> str:
        if self.ok:
            return f"{self.channel}: sample alert delivered in {self.ms:.0f} ms ({self.detail})"
        verdict = "would be retried" if self.retryable else "permanent: would not be retried"
        return f"{self.channel}: FAILED after {self.ms:.0f} ms: {self.detail} ({verdict})"


async def send_test_alert(settings: Settings, name: str) -> SampleDelivery:
    """Send a sample alert through one channel or target, outside the outbox (nothing is
    stored)."""
    config = next(c for c in target_configs(settings) if c.name == name)
    now = utcnow()
    alert = Alert(
        id=f"test-{uuid.uuid4()}",
        watchlist="test",
        item=AlertItem(
            title="Test alert from feed-monitor: CSTO / ОДКБ",
            link=PROJECT_URL,
            published=now,
            summary="If you can read this, the channel works.",
            guid=None,
        ),
        feed=AlertFeed(name="feed-monitor", url=PROJECT_URL),
        matches=(AlertMatch(term="CSTO", field="title", snippet="Test alert: CSTO / ОДКБ"),),
        created_at=now,
    )
    channel = build_channel(config)
    started = time.monotonic()
    try:
        result = await channel.send(alert)
        ok, detail, retryable = True, result.detail, False
    except DeliveryError as exc:
        ok, detail, retryable = False, exc.message, exc.retryable
    finally:
        await channel.aclose()
    ms = (time.monotonic() - started) * 1000
    return SampleDelivery(channel=name, ok=ok, detail=detail, retryable=retryable, ms=ms)
