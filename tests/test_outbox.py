"""The outbox on both databases, against a real webhook receiver: digests, the hourly
rate limit, a receiver's 410, and sending again by hand."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from feedserver import FeedServer
from receivers import WebhookReceiver
from test_service import rss

from alerts.base import DeliveryResult, Message
from monitor.app import App, poll_once
from monitor.config import Settings, load_settings
from monitor.outbox import Outbox
from monitor.store import Store
from monitor.store.engine import create_db_engine

NOW = datetime.now(UTC)


def items(count: int) -> bytes:
    return rss(
        *((f"g{i}", f"CSTO report {i}", "text", NOW - timedelta(minutes=i)) for i in range(count))
    )


@pytest.fixture
def config(
    tmp_path: Path, db_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> Callable[..., Path]:
    def make(*, channel: str = "", notify: str = "[hook]") -> Path:
        path = tmp_path / "monitor.yaml"
        path.write_text(
            f"""
database: {db_url}
polling: {{parse_workers: 0}}
feeds:
  - url: {feed_server.url("/feed.xml")}
watchlists:
  - name: csto
    terms: [CSTO]
    notify: {notify}
channels:
  - name: hook
    type: webhook
    url: {webhook_receiver.url}
    retry: [0s]
{channel}
""",
            encoding="utf-8",
        )
        return path

    return make


def outbox_at(app: App, moment: datetime) -> Outbox:
    """The app's outbox with its clock set to ``moment``."""
    return Outbox(
        store=app.store,
        channels=app.channels,
        configs={c.name: c for c in app.settings.channels},
        retry=app.retry,
        lease=60,
        clock=lambda: moment,
        rng=random.Random(0),
    )


async def poll_only(settings: Settings) -> App:
    app = await asyncio.to_thread(App, settings)
    feeds = await app.pipeline.claim_feeds(only_due=False)
    await app.pipeline.poll_feeds(feeds)
    return app


async def test_digest_route_collects_alerts_into_one_message(
    config: Callable[..., Path], feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    settings = load_settings(config(notify="[{channel: hook, digest: 1h}]"), {})
    feed_server.set_feed("/feed.xml", items(3))
    app = await poll_only(settings)
    try:
        assert await outbox_at(app, datetime.now(UTC)).deliver_due() == 0  # not yet
        assert await outbox_at(app, datetime.now(UTC) + timedelta(hours=1)).deliver_due() == 3
    finally:
        await app.aclose()
    [digest] = await webhook_receiver.wait_for_async(1)
    body = digest.json()
    assert body["type"] == "feed.digest" and body["count"] == 3
    titles = [a["item"]["title"] for a in body["alerts"]]
    assert titles == ["CSTO report 0", "CSTO report 1", "CSTO report 2"]  # newest first


async def test_rate_limit_folds_the_excess_into_one_later_digest(
    config: Callable[..., Path], feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    settings = load_settings(config(channel="    max_per_hour: 2"), {})
    feed_server.set_feed("/feed.xml", items(5))
    app = await poll_only(settings)
    # Five minutes into the next clock hour: the minute after stays in the same rate window
    # whenever the test runs (at 21:59 it used to cross into the next one).
    now = datetime.now(UTC).replace(minute=5, second=0, microsecond=0) + timedelta(hours=1)
    try:
        await outbox_at(app, now).deliver_due()
        sent_now = await webhook_receiver.wait_for_async(2)
        assert [r.json().get("type") for r in sent_now] == ["feed.item.matched"] * 2
        await outbox_at(app, now + timedelta(minutes=1)).deliver_due()
        assert len(webhook_receiver.requests) == 2  # held back: the hour is used up
        await outbox_at(app, now + timedelta(hours=1)).deliver_due()
    finally:
        await app.aclose()
    requests = await webhook_receiver.wait_for_async(3)
    assert len(requests) == 3
    assert requests[2].json()["type"] == "feed.digest" and requests[2].json()["count"] == 3


async def test_410_disables_the_channel_until_enabled(
    config: Callable[..., Path], feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    path = config()
    settings = load_settings(path, {})
    webhook_receiver.script(410)
    feed_server.set_feed("/feed.xml", items(1))
    await poll_once(settings)
    feed_server.set_feed("/feed.xml", items(2))
    await poll_once(settings)
    assert len(webhook_receiver.requests) == 1  # the second alert waits: channel disabled
    listing = monitor("channels", "--config", str(path))
    assert "DISABLED" in listing.stdout and "410" in listing.stdout

    assert monitor("channels", "enable", "hook", "--config", str(path)).returncode == 0
    await poll_once(settings)
    requests = await webhook_receiver.wait_for_async(2)
    assert requests[1].json()["item"]["title"] == "CSTO report 1"


async def test_retry_all_dead_sends_again_after_a_fix(
    config: Callable[..., Path], feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    path = config()
    webhook_receiver.script(404)
    feed_server.set_feed("/feed.xml", items(1))
    await poll_once(load_settings(path, {}))
    dead = monitor("alerts", "--state", "dead", "--json", "--config", str(path))
    assert len(json.loads(dead.stdout)) == 1

    result = monitor("alerts", "retry", "--all-dead", "--config", str(path))
    assert result.returncode == 0 and "1 delivery queued" in result.stdout
    await poll_once(load_settings(path, {}))
    requests = await webhook_receiver.wait_for_async(2)
    assert [r.status for r in requests] == [404, 200]
    assert requests[0].json()["id"] == requests[1].json()["id"]


def test_channels_test_reports_what_happened(
    config: Callable[..., Path], webhook_receiver: WebhookReceiver
) -> None:
    path = config()
    ok = monitor("channels", "test", "hook", "--config", str(path))
    assert ok.returncode == 0 and "delivered" in ok.stdout
    assert webhook_receiver.wait_for(1)[0].json()["watchlist"] == "test"

    webhook_receiver.script(503)
    failed = monitor("channels", "test", "hook", "--config", str(path))
    assert failed.returncode == 1
    assert (
        "FAILED" in failed.stdout and "503" in failed.stdout and "would be retried" in failed.stdout
    )


def monitor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


class SlowChannel:
    """A receiver that takes its time: long enough for a pass to outlive the lease."""

    name = "hook"

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def send(self, message: Message) -> DeliveryResult:
        self.log.append(message.id)
        await asyncio.sleep(0.3)
        return DeliveryResult(detail="ok")

    async def aclose(self) -> None:
        return None


async def test_two_instances_never_send_the_same_alert(
    config: Callable[..., Path], feed_server: FeedServer
) -> None:
    """A pass longer than the lease hands work back and claims it afresh: a second
    instance starting meanwhile must find nothing it may take twice."""
    settings = load_settings(config(), {})
    feed_server.set_feed("/feed.xml", items(8))
    app = await poll_only(settings)
    sent: list[str] = []

    def instance() -> Outbox:
        return Outbox(
            store=app.store,
            channels={"hook": SlowChannel(sent)},
            configs={c.name: c for c in settings.channels},
            retry=app.retry,
            lease=2.0,
            clock=lambda: datetime.now(UTC),
            rng=random.Random(0),
        )

    async def later() -> int:
        await asyncio.sleep(2.1)
        return await instance().deliver_due()

    try:
        settled = await asyncio.gather(instance().deliver_due(), later())
    finally:
        await app.aclose()
    assert sum(settled) == 8
    assert sorted(sent) == sorted(set(sent)) and len(sent) == 8


async def test_restart_in_the_middle_of_a_retry_schedule_continues_it(
    config: Callable[..., Path], feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    """Each ``poll_once`` is a fresh process's worth of state: the schedule lives in the
    database, so a restart neither resends early nor forgets the delivery."""
    path = config()
    path.write_text(path.read_text().replace("retry: [0s]", "retry: [0s, 1h]"))
    webhook_receiver.script(500, 500)
    feed_server.set_feed("/feed.xml", items(1))
    await poll_once(load_settings(path, {}))  # attempt 1 fails; attempt 2 due at once
    await poll_once(load_settings(path, {}))  # a restart: attempt 2 fails; next in 1h
    [record] = Store(create_db_engine(load_settings(path, {}).database)).list_alerts()
    [delivery] = record.deliveries
    assert (delivery.state, delivery.attempts) == ("failed", 2)
    assert delivery.next_attempt_at is not None
    wait = (delivery.next_attempt_at - datetime.now(UTC)).total_seconds()
    assert 3000 < wait < 4000
    await poll_once(load_settings(path, {}))  # another restart: not due, nothing sent
    assert len(webhook_receiver.requests) == 2

    app = await asyncio.to_thread(App, load_settings(path, {}))
    try:
        await outbox_at(app, delivery.next_attempt_at + timedelta(seconds=1)).deliver_due()
    finally:
        await app.aclose()
    requests = await webhook_receiver.wait_for_async(3)
    assert [r.status for r in requests] == [500, 500, 200]
    assert len({r.json()["id"] for r in requests}) == 1
