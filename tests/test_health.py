"""Feed health notices (issue 11): a feed failing for long, silent for far longer than its
own usual gap, gone or moved raises one notice per channel, and one when it recovers.

First the decision's rules without I/O (monitor.health) and the rendering of a notice in
every format; then the whole path on SQLite and PostgreSQL with a clock the test sets
(polls, the health check and the outbox all read it): a feed server, a webhook receiver
and an SMTP server on 127.0.0.1, restarts and two instances on one database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from feedserver import FeedServer, Response
from receivers import SmtpSink, WebhookReceiver, check_payload, sample_notice
from test_service import rss

from alerts.base import AlertFeed, Notice, NoticeKind
from alerts.email import EmailConfig, build_message
from alerts.log import LogChannel, LogConfig, format_notice_line
from alerts.render_notice import (
    render_notice_discord,
    render_notice_html,
    render_notice_payload,
    render_notice_slack,
    render_notice_subject,
    render_notice_text,
)
from alerts.webhook import WebhookChannel, WebhookConfig
from monitor.app import App
from monitor.config import Settings, load_settings
from monitor.health import HealthRules, decide_health, silence_bound, usual_gap
from monitor.notices import raise_notices
from monitor.store import Store
from monitor.store.engine import alembic_config, create_db_engine
from monitor.store.health import FeedHealth, FeedHealthFacts
from monitor.types import FeedState

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
RULES = HealthRules(failing_after=86400, silent_factor=5, silent_after=3600)
HOURLY = tuple(3600.0 + (i % 3 - 1) * 600 for i in range(20))  # 50, 60, 70 minutes ...
WEEKLY = (7 * 86400.0,) * 5


def facts(**changes: Any) -> FeedHealthFacts:
    """A feed polled fine at T0, which brought a new item then."""
    base: dict[str, Any] = {
        "id": 7,
        "name": "Kazinform",
        "url": "https://inform.kz/en/rss",
        "current_url": "https://inform.kz/en/rss",
        "state": FeedState.OK,
        "watched": True,
        "created_at": T0 - 30 * DAY,
        "last_polled_at": T0,
        "last_success_at": T0,
        "last_error": None,
        "last_arrival_at": T0,
        "gaps": HOURLY,
        "health": FeedHealth.OK,
        "health_since": None,
        "health_url": None,
        "version": 3,
    }
    return FeedHealthFacts(**(base | changes))


def kinds(change: Any) -> list[NoticeKind]:
    return [n.kind for n in change.notices] if change else []


# --- The rules, without I/O ---------------------------------------------------------------


def test_failing_is_announced_only_once_it_lasts_longer_than_failing_after() -> None:
    failing = facts(state=FeedState.ERROR, last_polled_at=T0 + 23 * HOUR, last_error="HTTP 503")
    assert decide_health(failing, RULES, T0 + 23 * HOUR) is None
    change = decide_health(failing, RULES, T0 + 25 * HOUR)
    assert change is not None and kinds(change) == [NoticeKind.FAILING]
    assert change.health == FeedHealth.FAILING and change.since == T0
    assert change.version == 3  # written only if no other instance changed it meanwhile
    assert "HTTP 503" in change.notices[0].detail and "1d1h" in change.notices[0].detail


def test_a_feed_that_never_worked_is_failing_since_it_was_added() -> None:
    never = facts(state=FeedState.ERROR, last_success_at=None, created_at=T0)
    change = decide_health(never, RULES, T0 + 2 * DAY)
    assert change is not None and change.since == T0
    assert "never" in change.notices[0].detail


def test_a_short_failure_keeps_what_was_announced() -> None:
    silent = facts(state=FeedState.ERROR, health=FeedHealth.SILENT, last_success_at=T0)
    assert decide_health(silent, RULES, T0 + HOUR) is None


def test_silence_is_judged_against_the_feeds_own_usual_gap() -> None:
    assert usual_gap(HOURLY) == 3600 and silence_bound(HOURLY, RULES) == 5 * 3600
    assert decide_health(facts(last_success_at=T0 + 4 * HOUR), RULES, T0 + 4 * HOUR) is None
    change = decide_health(facts(last_success_at=T0 + 10 * HOUR), RULES, T0 + 10 * HOUR)
    assert kinds(change) == [NoticeKind.SILENT] and change and change.since == T0
    # Weekly: three quiet days are its normal life; the hourly feed's would be silence.
    weekly = facts(gaps=WEEKLY, last_success_at=T0 + 3 * DAY)
    assert decide_health(weekly, RULES, T0 + 3 * DAY) is None
    hourly = replace(weekly, gaps=HOURLY)
    assert kinds(decide_health(hourly, RULES, T0 + 3 * DAY)) == [NoticeKind.SILENT]


def test_silence_needs_enough_history_and_silent_after_is_a_floor() -> None:
    short = facts(gaps=HOURLY[:4], last_success_at=T0 + 10 * HOUR)
    assert decide_health(short, RULES, T0 + 10 * HOUR) is None
    minutely = facts(
        gaps=(60.0,) * 20, last_success_at=T0 + timedelta(minutes=50)
    )  # 5 x 1m < 1h floor
    assert decide_health(minutely, RULES, T0 + HOUR) is None


def test_silence_is_measured_up_to_the_last_successful_poll_not_to_now() -> None:
    """A feed nobody polled (paused, the service stopped) was not seen to be silent."""
    assert decide_health(facts(last_success_at=T0 + HOUR), RULES, T0 + 30 * DAY) is None


def test_recovery_is_announced_with_what_the_feed_recovered_from() -> None:
    was_failing = facts(health=FeedHealth.FAILING, health_since=T0 - 2 * DAY)
    change = decide_health(was_failing, RULES, T0)
    assert change is not None and kinds(change) == [NoticeKind.RECOVERED]
    assert change.health == FeedHealth.OK
    assert change.notices[0].recovered_from == NoticeKind.FAILING


def test_gone_and_moved_feeds_and_urls_without_credentials() -> None:
    gone = facts(state=FeedState.GONE, last_error="HTTP 410 Gone")
    assert kinds(decide_health(gone, RULES, T0)) == [NoticeKind.GONE]
    moved = facts(
        url="https://example.org/old?token=s3cr3t",
        current_url="https://example.org/new?token=s3cr3t",
    )
    change = decide_health(moved, RULES, T0)
    assert change is not None and kinds(change) == [NoticeKind.MOVED]
    notice = change.notices[0]
    assert notice.previous_url == "https://example.org/old?token=***"
    assert notice.feed.url == "https://example.org/new?token=***"
    assert change.url == moved.current_url and change.health == FeedHealth.OK
    assert decide_health(replace(moved, health_url=moved.current_url), RULES, T0) is None


@pytest.mark.parametrize(
    "feed",
    [
        facts(state=FeedState.ERROR, watched=False),  # paused or no longer configured
        facts(state=FeedState.GONE, watched=False, current_url="https://moved.example/"),
        facts(state=FeedState.NEW, last_success_at=None, created_at=T0 - 9 * DAY),
    ],
)
def test_paused_inactive_and_unpolled_feeds_raise_nothing(feed: FeedHealthFacts) -> None:
    assert decide_health(feed, RULES, T0 + 9 * DAY) is None


def test_a_change_has_one_id_whoever_decides_it_and_the_next_change_another() -> None:
    failing = facts(state=FeedState.ERROR)
    first = decide_health(failing, RULES, T0 + 2 * DAY)
    again = decide_health(failing, RULES, T0 + 3 * DAY)
    later = decide_health(replace(failing, version=4), RULES, T0 + 2 * DAY)
    assert first and again and later
    assert first.notices[0].id == again.notices[0].id != later.notices[0].id


# --- Rendering: every format escapes what the feed controls -------------------------------

HOSTILE = "Evil\x1b[31m <b>x</b> *bold*\u202e @everyone\r\nBcc: x@evil.example"


def notice(kind: NoticeKind = NoticeKind.FAILING, name: str = "Kazinform") -> Notice:
    """The sample notice, its last error (a server's words) hostile."""
    return sample_notice(
        kind=kind,
        feed=AlertFeed(name=name, url="https://inform.kz/en/rss"),
        detail=f"no successful poll for 1d1h; last error: {HOSTILE}",
    )


def test_notice_subject_names_the_feed_and_when() -> None:
    assert render_notice_subject(notice()) == (
        "[monitor] feed Kazinform failing since 2026-11-30 08:00 UTC"
    )


def test_every_format_escapes_a_hostile_feed_title() -> None:
    hostile = notice(name=HOSTILE)
    subject = render_notice_subject(hostile)
    text, html = render_notice_text(hostile), render_notice_html(hostile)
    for rendered in (subject, text, html, format_notice_line(hostile)):
        assert "\x1b" not in rendered and "\u202e" not in rendered and "\r" not in rendered
    assert "\n" not in subject and "\n" not in format_notice_line(hostile)
    assert "<b>" not in html and "&lt;b&gt;" in html
    slack = render_notice_slack(hostile)["text"]
    assert "<b>" not in slack and "@\u200beveryone" in slack
    discord = render_notice_discord(hostile)
    assert discord["allowed_mentions"] == {"parse": []} and "\\*bold\\*" in discord["content"]
    check_payload(render_notice_payload(hostile))  # the published schema, as is


def test_notice_mail_has_its_own_id_and_list() -> None:
    config = EmailConfig.model_validate(
        {
            "type": "email",
            "name": "mail",
            "to": ["ops@example.org"],
            "from": "monitor@example.org",
            "smtp": {"host": "127.0.0.1"},
        }
    )
    mail = build_message(notice(name=HOSTILE), config)
    assert mail["Message-ID"] == "<notice-5b0d6c1e-0000-4000-8000-000000000001@feed-monitor>"
    assert mail["List-Id"] == "<feed-health.feed-monitor>"
    assert "\n" not in str(mail["Subject"]) and "\x1b" not in str(mail["Subject"])


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, "feed.health"),
        ({"format": "slack"}, "*feed Kazinform failing since 2026-11-30 08:00 UTC*"),
        ({"format": "discord"}, "feed Kazinform failing since 2026-11-30 08:00 UTC"),
        (
            {"template": "{% if is_notice %}{{ kind }}: {{ subject }}{% endif %}"},
            "failing: [monitor] feed Kazinform failing since 2026-11-30 08:00 UTC",
        ),
    ],
)
async def test_each_webhook_format_posts_a_notice(
    webhook_receiver: WebhookReceiver, options: dict[str, str], expected: str
) -> None:
    config = WebhookConfig(type="webhook", name="hook", url=webhook_receiver.url, **options)
    channel = WebhookChannel(config)
    try:
        await channel.send(notice())
    finally:
        await channel.aclose()
    [request] = webhook_receiver.requests
    assert expected in request.body.decode()


async def test_log_channel_writes_one_escaped_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="alerts.log"):
        await LogChannel(LogConfig(type="log", name="log")).send(notice(name=HOSTILE))
        await LogChannel(LogConfig(type="log", name="log")).send(notice(NoticeKind.RECOVERED))
    failing, recovered = caplog.records
    assert failing.levelno == logging.WARNING and recovered.levelno == logging.INFO
    line = failing.getMessage()
    assert line.startswith("notice kind=failing ") and "\\u001b" in line and "\x1b" not in line


# --- The whole path, on both databases, with a clock the test sets -------------------------


FEED = "/kazinform.xml"
HELLO = rss(("k1", "Hello", "text", T0))


class Clocked:
    """An app whose polls, health checks and deliveries happen at the times the test says."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def poll(self, at: datetime) -> None:
        self.app.pipeline.clock = lambda: at
        await self.app.pipeline.poll_feeds(await self.app.pipeline.claim_feeds(only_due=False))

    async def check(self, at: datetime) -> int:
        return await raise_notices(self.app.store, self.app.settings.health, lambda: at)

    async def deliver(self, at: datetime) -> int:
        self.app.outbox.clock = lambda: at
        return await self.app.outbox.deliver_due()

    async def step(self, at: datetime) -> int:
        """A poll, a health check and a delivery pass; returns the notices raised."""
        await self.poll(at)
        raised = await self.check(at)
        await self.deliver(at)
        return raised

    def health(self) -> FeedHealthFacts:
        [feed] = self.app.store.health_facts()
        return feed


class World:
    """The test's database, a feed server, a webhook receiver and an SMTP server, and the
    apps opened on them (closed at the end)."""

    def __init__(
        self, tmp_path: Path, db_url: str, feeds: FeedServer, hook: WebhookReceiver, smtp: SmtpSink
    ) -> None:
        self.tmp_path, self.db_url = tmp_path, db_url
        self.feeds, self.hook, self.smtp = feeds, hook, smtp
        self.running: list[App] = []

    def settings(self, *, path: str = FEED, notify: str = "[hook, mail]") -> Settings:
        file = self.tmp_path / "monitor.yaml"
        file.write_text(
            f"""
database: {self.db_url}
http: null
defaults: {{interval: 1m, backlog: all}}
polling: {{parse_workers: 0, jitter: 0}}
feeds:
  - url: {self.feeds.url(path)}
    name: Kazinform
channels:
  - name: hook
    type: webhook
    url: {self.hook.url}
    retry: [1m]
  - name: mail
    type: email
    to: [ops@example.org]
    from: monitor@example.org
    smtp: {{host: 127.0.0.1, port: {self.smtp.port}}}
health: {{notify: {notify}, failing_after: 1d, silent_after: 1h}}
""",
            encoding="utf-8",
        )
        return load_settings(file, {})

    async def open(self, settings: Settings | None = None) -> Clocked:
        self.running.append(await asyncio.to_thread(App, settings or self.settings()))
        return Clocked(self.running[-1])

    async def close(self, run: Clocked) -> None:
        self.running.remove(run.app)
        await run.app.aclose()

    async def failing_since_t0(self, status: int = 503, **settings: str) -> Clocked:
        """An app whose feed was polled fine at T0 and fails from then on."""
        self.feeds.set_feed(FEED, HELLO)
        run = await self.open(self.settings(**settings))
        await run.step(T0)
        self.feeds.set_response(FEED, status)
        return run

    def notices(self) -> list[dict[str, Any]]:
        """Every notice POSTed to the webhook, checked against the published schema."""
        return [r.checked_json() for r in self.hook.requests]


@pytest.fixture
async def world(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    smtp_sink: SmtpSink,
) -> AsyncIterator[World]:
    made = World(tmp_path, db_url, feed_server, webhook_receiver, smtp_sink)
    yield made
    for app in made.running:
        await app.aclose()


async def test_failing_feed_raises_one_notice_per_channel_then_one_recovered(
    world: World,
) -> None:
    run = await world.failing_since_t0()
    for hours in (1, 12, 23):
        assert await run.step(T0 + hours * HOUR) == 0
    assert world.hook.requests == [] and world.smtp.messages == []

    assert await run.step(T0 + 25 * HOUR) == 2  # one notice, on each of the two channels
    [failing] = world.notices()
    assert failing["kind"] == "failing" and failing["feed"]["name"] == "Kazinform"
    assert failing["since"] == "2026-11-30T08:00:00+00:00" and "503" in failing["detail"]
    [mail] = world.smtp.messages
    assert mail.message["Subject"] == "[monitor] feed Kazinform failing since 2026-11-30 08:00 UTC"

    assert await run.step(T0 + 30 * HOUR) == 0  # still failing: still one notice
    await world.close(run)
    run = await world.open()  # a restart: the health is in the database
    assert await run.step(T0 + 40 * HOUR) == 0
    assert len(world.hook.requests) == 1 and len(world.smtp.messages) == 1

    world.feeds.set_feed(FEED, HELLO)
    assert await run.step(T0 + 41 * HOUR) == 2
    assert await run.step(T0 + 42 * HOUR) == 0
    first, recovered = world.notices()
    assert recovered["kind"] == "recovered" and recovered["recovered_from"] == "failing"
    assert recovered["id"] != first["id"]
    assert world.smtp.messages[1].message["Subject"] == (
        "[monitor] feed Kazinform recovered at 2026-12-02 01:00 UTC"
    )


async def learn_hourly(world: World, run: Clocked) -> tuple[list[Any], datetime]:
    """A first poll, then 20 polls an hour or so apart that each bring one new item."""
    items: list[Any] = []
    at = T0
    for gap in (0.0, *HOURLY):
        at += timedelta(seconds=gap)
        items.append((f"k{len(items)}", f"Item {len(items)}", "text", at))
        world.feeds.set_feed(FEED, rss(*items))
        await run.step(at)
    return items, at


async def test_silence_is_learned_from_the_feeds_history_and_raised_once(world: World) -> None:
    run = await world.open()
    items, last = await learn_hourly(world, run)
    learned = run.health()
    assert len(learned.gaps) == 19 and usual_gap(learned.gaps) == 3600  # not the backlog's
    for hours in range(1, 5):
        assert await run.step(last + hours * HOUR) == 0  # quiet, but not for long
    raised = [await run.step(last + hours * HOUR) for hours in range(5, 11)]
    assert raised == [0, 2, 0, 0, 0, 0]  # over 5 x its usual hour: silent, once
    [silent] = world.notices()
    assert silent["kind"] == "silent" and silent["since"] == last.isoformat()

    items.append(("new", "Back", "text", last + 11 * HOUR))
    world.feeds.set_feed(FEED, rss(*items))
    assert await run.step(last + 11 * HOUR) == 2
    assert world.notices()[-1]["recovered_from"] == "silent"


async def test_a_weekly_feed_is_not_silent_after_three_quiet_days(world: World) -> None:
    run = await world.open()
    items: list[Any] = []
    for week in range(7):
        items.append((f"w{week}", f"Weekly {week}", "text", T0 + week * 7 * DAY))
        world.feeds.set_feed(FEED, rss(*items))
        await run.step(T0 + week * 7 * DAY)
    assert run.health().gaps == WEEKLY
    for days in (1, 2, 3):
        assert await run.step(T0 + (42 + days) * DAY) == 0
    assert world.hook.requests == []


async def test_gone_feed_raises_one_gone_notice(world: World) -> None:
    run = await world.failing_since_t0(410)
    assert await run.step(T0 + HOUR) == 2
    assert await run.step(T0 + 2 * DAY) == 0
    [gone] = world.notices()
    assert gone["kind"] == "gone" and "410" in gone["detail"]


async def test_moved_feed_raises_one_notice_naming_both_urls_without_the_token(
    world: World,
) -> None:
    moved_to = Response.redirect("/new.xml?token=s3cr3t", 301)
    world.feeds.set_handler("/old.xml", lambda _request: moved_to)
    world.feeds.set_feed("/new.xml", HELLO)
    run = await world.open(world.settings(path="/old.xml?token=s3cr3t"))
    assert await run.step(T0) == 2
    assert await run.step(T0 + HOUR) == 0
    [moved] = world.notices()
    assert moved["kind"] == "moved"
    assert moved["previous_url"] == world.feeds.url("/old.xml?token=***")
    assert moved["feed"]["url"] == world.feeds.url("/new.xml?token=***")
    assert b"s3cr3t" not in world.hook.requests[0].body
    assert b"s3cr3t" not in world.smtp.messages[0].raw


async def test_a_failed_notice_delivery_is_retried_and_not_duplicated(world: World) -> None:
    run = await world.failing_since_t0(500)
    world.hook.script(503)
    assert await run.step(T0 + 25 * HOUR) == 2
    assert await run.deliver(T0 + 25 * HOUR + timedelta(seconds=10)) == 0  # retry in a minute
    assert await run.deliver(T0 + 25 * HOUR + timedelta(minutes=2)) == 1
    assert await run.step(T0 + 26 * HOUR) == 0
    first, second = world.hook.requests
    assert (first.status, second.status) == (503, 200) and first.body == second.body
    assert len(world.smtp.messages) == 1


async def test_two_instances_raise_each_notice_once(world: World) -> None:
    run = await world.failing_since_t0(500)
    await run.poll(T0 + HOUR)
    at = T0 + 25 * HOUR
    a, b = (Store(create_db_engine(world.db_url)) for _ in range(2))
    try:
        # Both decide on the same facts; the version lets only the first write.
        change = decide_health(a.health_facts()[0], RULES, at)
        assert change is not None
        assert [s.change_health(change, ["hook"], at) for s in (b, a)] == [True, False]
        assert decide_health(a.health_facts()[0], RULES, at) is None  # failing is known
        # The same race through the chore itself, after a recovery.
        world.feeds.set_feed(FEED, HELLO)
        await run.poll(at + HOUR)
        health = run.app.settings.health
        checks = (raise_notices(s, health, lambda: at + HOUR) for s in (a, b))
        assert sum(await asyncio.gather(*checks)) == 2
    finally:
        a.engine.dispose()
        b.engine.dispose()
    await run.deliver(at + HOUR)
    assert [n["kind"] for n in world.notices()] == ["failing", "recovered"]
    assert len(world.smtp.messages) == 1  # "failing" was written for "hook" only


async def test_without_notify_channels_the_health_is_tracked_and_nothing_raised(
    world: World,
) -> None:
    run = await world.failing_since_t0(500, notify="[]")
    assert await run.step(T0 + 25 * HOUR) == 0
    assert run.health().health == FeedHealth.FAILING and run.health().health_since == T0
    assert await run.deliver(T0 + 26 * HOUR) == 0 and world.hook.requests == []


async def test_the_service_health_chore_raises_and_the_outbox_sends(world: World) -> None:
    """The chore the service runs, on the app's own (database) clock."""
    world.feeds.set_feed(FEED, HELLO)
    run = await world.open()
    await run.poll(run.app.clock() - 2 * DAY)  # worked two days ago ...
    world.feeds.set_response(FEED, 500)
    run.app.pipeline.clock = run.app.clock  # ... and fails now
    await run.app.pipeline.poll_feeds(await run.app.pipeline.claim_feeds(only_due=False))
    [chore] = [c for c in run.app.chores() if c.name == "health"]
    assert chore.every == 300 and await chore.run() == 2
    run.app.outbox.clock = run.app.clock
    await run.app.outbox.deliver_due()
    assert [n["kind"] for n in world.notices()] == ["failing"]


async def test_the_migration_learns_arrivals_from_the_items_already_stored(world: World) -> None:
    """A database upgraded to feed health knows each feed's usual gap at once: the same
    as if it had been learned poll by poll, the first poll's backlog left out. Going down
    and up again keeps the items (SQLite drops the columns in place)."""
    run = await world.open()
    await learn_hourly(world, run)
    learned = run.health()
    await world.close(run)
    engine = create_db_engine(world.db_url)
    alembic = alembic_config()
    try:
        for migrate, revision in ((command.downgrade, "0004"), (command.upgrade, "head")):
            with engine.begin() as connection:
                alembic.attributes["connection"] = connection
                migrate(alembic, revision)
        [upgraded] = Store(engine).health_facts()
    finally:
        engine.dispose()
    assert upgraded.gaps == learned.gaps and len(upgraded.gaps) == 19
    assert upgraded.last_arrival_at == learned.last_arrival_at
