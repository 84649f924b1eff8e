"""The service end to end, on SQLite and PostgreSQL, against real servers on 127.0.0.1:
a feed server, a webhook receiver and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from feedserver import FeedServer, Response, sequence
from receivers import SmtpSink, WebhookReceiver

from monitor.app import poll_once
from monitor.config import Settings, load_settings
from monitor.errors import ConfigError
from monitor.store import Store

NOW = datetime.now(UTC)


def rss(*items: tuple[str, str, str, datetime | None], title: str = "Central Asia wire") -> bytes:
    """An RSS 2.0 document of (guid, title, description, published) items."""
    entries = []
    for guid, item_title, text, published in items:
        date = f"<pubDate>{format_datetime(published)}</pubDate>" if published else ""
        entries.append(
            f"<item><guid>{guid}</guid><title>{item_title}</title>"
            f"<link>/news/{guid}</link><description>{text}</description>{date}</item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>https://example.org/</link>{''.join(entries)}"
        "</channel></rss>"
    ).encode()


CSTO_ITEM = ("a1", "CSTO summit opens in Astana", "Leaders of the CSTO met.", NOW)
OTHER_ITEM = ("a2", "Weather in Bishkek", "Sunny &amp; cold", NOW)


@pytest.fixture
def config(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    smtp_sink: SmtpSink,
) -> Callable[..., Settings]:
    """Writes a configuration for the local servers and loads it like ``monitor`` does."""

    def make(*, backlog: str = "24h", feeds: tuple[str, ...] = ("/feed.xml",)) -> Settings:
        feed_lines = "".join(f"  - url: {feed_server.url(p)}\n" for p in feeds)
        path = tmp_path / "monitor.yaml"
        path.write_text(
            f"""
database: {db_url}
defaults: {{interval: 1m, backlog: {backlog}}}
polling: {{parse_workers: 0, jitter: 0}}
feeds:
{feed_lines}
watchlists:
  - name: csto
    terms: [CSTO, ОДКБ]
    notify: [hook, mail]
channels:
  - name: hook
    type: webhook
    url: {webhook_receiver.url}
    retry: [0s, 0s]
  - name: mail
    type: email
    to: [analyst@example.org]
    from: monitor@example.org
    smtp: {{host: 127.0.0.1, port: {smtp_sink.port}}}
    retry: [0s, 0s]
""",
            encoding="utf-8",
        )
        return load_settings(path, {})

    return make


def store_for(settings: Settings) -> Store:
    from monitor.store.engine import create_db_engine

    return Store(create_db_engine(settings.database))


async def test_matching_item_alerts_exactly_once_across_polls_edits_and_restarts(
    config: Callable[..., Settings],
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    smtp_sink: SmtpSink,
) -> None:
    settings = config()
    feed_server.set_feed("/feed.xml", rss(CSTO_ITEM, OTHER_ITEM))
    reports, _ = await poll_once(settings)
    assert [(r.state, r.new, r.matched) for r in reports] == [("ok", 2, 1)]
    [hook] = await webhook_receiver.wait_for_async(1)
    [mail] = await smtp_sink.wait_for_async(1)
    assert hook.json()["item"]["title"] == "CSTO summit opens in Astana"
    assert hook.json()["item"]["link"] == feed_server.url("/news/a1")
    assert mail.message["Subject"] == "[csto] CSTO summit opens in Astana"

    await poll_once(settings)  # the same document again: nothing new
    new_item = ("a3", "ОДКБ проведёт учения", "Учения ОДКБ пройдут в Таджикистане", NOW)
    feed_server.set_feed("/feed.xml", rss(CSTO_ITEM, OTHER_ITEM, new_item))
    reports, _ = await poll_once(settings)
    assert [(r.new, r.matched) for r in reports] == [(1, 1)]
    edited = ("a1", "CSTO summit opens in Astana (updated)", "The CSTO met again.", NOW)
    feed_server.set_feed("/feed.xml", rss(edited, OTHER_ITEM, new_item))
    reports, _ = await poll_once(settings)
    assert [(r.new, r.matched) for r in reports] == [(0, 0)]
    await poll_once(config())  # a restart: a new App over the same database

    hooks = await webhook_receiver.wait_for_async(2)
    assert len(hooks) == 2 and len(smtp_sink.messages) == 2
    assert hooks[1].json()["item"]["title"] == "ОДКБ проведёт учения"
    assert len({h.json()["id"] for h in hooks}) == 2
    records = store_for(settings).list_alerts()
    assert all(d.state == "sent" for r in records for d in r.deliveries)


async def test_webhook_500_then_200_arrives_once_with_the_same_id(
    config: Callable[..., Settings], feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    settings = config()
    webhook_receiver.script(500)
    feed_server.set_feed("/feed.xml", rss(CSTO_ITEM))
    await poll_once(settings)
    [first] = await webhook_receiver.wait_for_async(1)
    assert first.status == 500
    [record] = store_for(settings).list_alerts()
    hook_delivery = next(d for d in record.deliveries if d.channel == "hook")
    assert (hook_delivery.state, hook_delivery.attempts) == ("failed", 1)
    assert "500" in (hook_delivery.last_error or "")

    await poll_once(settings)  # the retry is due (schedule 0s): sent now
    hooks = await webhook_receiver.wait_for_async(2)
    assert [h.status for h in hooks] == [500, 200]
    assert hooks[0].json()["id"] == hooks[1].json()["id"] == record.alert.id
    await poll_once(settings)
    assert len(webhook_receiver.requests) == 2


async def test_email_waits_while_smtp_is_down_and_goes_out_later(
    config: Callable[..., Settings], feed_server: FeedServer, smtp_sink: SmtpSink
) -> None:
    settings = config()
    smtp_sink.stop()
    feed_server.set_feed("/feed.xml", rss(CSTO_ITEM))
    await poll_once(settings)
    [record] = store_for(settings).list_alerts()
    mail = next(d for d in record.deliveries if d.channel == "mail")
    assert mail.state == "failed" and mail.last_error

    smtp_sink.start()  # same port
    await poll_once(settings)
    [received] = await smtp_sink.wait_for_async(1)
    assert "CSTO summit" in received.message["Subject"]
    [record] = store_for(settings).list_alerts()
    assert {d.channel: d.state for d in record.deliveries} == {"hook": "sent", "mail": "sent"}


async def test_first_poll_alerts_only_within_backlog_then_every_new_item(
    config: Callable[..., Settings], feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    settings = config(backlog="24h")
    old = ("old", "CSTO archive piece", "From last year", NOW - timedelta(days=400))
    undated = ("undated", "CSTO undated", "No date", None)
    recent = ("recent", "CSTO today", "Today", NOW - timedelta(hours=2))
    feed_server.set_feed("/feed.xml", rss(old, undated, recent))
    reports, _ = await poll_once(settings)
    assert [(r.new, r.matched) for r in reports] == [(3, 1)]
    late_but_old = ("late", "CSTO piece dated long ago", "Feeds lie", NOW - timedelta(days=30))
    feed_server.set_feed("/feed.xml", rss(old, undated, recent, late_but_old))
    await poll_once(settings)
    hooks = await webhook_receiver.wait_for_async(2)
    assert [h.json()["item"]["guid"] for h in hooks] == ["recent", "late"]


@pytest.mark.parametrize(("backlog", "alerts"), [("all", 2), ("none", 0)])
async def test_backlog_all_and_none(
    config: Callable[..., Settings], feed_server: FeedServer, backlog: str, alerts: int
) -> None:
    settings = config(backlog=backlog)
    old = ("old", "CSTO archive piece", "From last year", NOW - timedelta(days=400))
    feed_server.set_feed("/feed.xml", rss(old, CSTO_ITEM))
    reports, _ = await poll_once(settings)
    assert reports[0].matched == alerts


async def test_broken_feed_is_recorded_and_others_still_run(
    config: Callable[..., Settings], feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    settings = config(feeds=("/broken.xml", "/html", "/feed.xml", "/gone.xml"))
    feed_server.set_response("/broken.xml", 500, b"oops")
    feed_server.set_response("/html", 200, b"<html><body>hello</body></html>")
    feed_server.set_response("/gone.xml", 410)
    feed_server.set_feed("/feed.xml", rss(CSTO_ITEM))
    reports, _ = await poll_once(settings)
    states = {r.url.rsplit("/", 1)[1]: r.state for r in reports}
    assert states == {"broken.xml": "error", "html": "error", "feed.xml": "ok", "gone.xml": "gone"}
    await webhook_receiver.wait_for_async(1)
    feeds = {f.url.rsplit("/", 1)[1]: f for f in store_for(settings).list_feeds()}
    assert feeds["broken.xml"].error_count == 1 and "500" in (feeds["broken.xml"].last_error or "")
    assert "not a feed" in (feeds["html"].last_error or "")
    assert feeds["gone.xml"].state == "gone"
    assert feeds["feed.xml"].items == 1

    before = len(feed_server.requests_for("/gone.xml"))
    await poll_once(settings)
    assert len(feed_server.requests_for("/gone.xml")) == before  # gone: never polled again


async def test_retry_after_is_respected_by_a_forced_poll(
    config: Callable[..., Settings], feed_server: FeedServer
) -> None:
    settings = config()
    feed_server.set_handler(
        "/feed.xml",
        sequence(Response(status=429, headers={"Retry-After": "3600"}), Response(status=200)),
    )
    await poll_once(settings)
    await poll_once(settings)
    assert len(feed_server.requests_for("/feed.xml")) == 1
    [feed] = store_for(settings).list_feeds()
    assert feed.state == "error" and feed.last_status == 429


async def test_second_poll_sends_validators_and_304_costs_nothing(
    config: Callable[..., Settings], feed_server: FeedServer
) -> None:
    settings = config()
    feed_server.set_feed("/feed.xml", rss(CSTO_ITEM), etag='W/"v1"', last_modified="Tue, 24 Nov")
    await poll_once(settings)
    reports, _ = await poll_once(settings)
    assert [(r.status, r.new) for r in reports] == [(304, 0)]
    second = feed_server.requests_for("/feed.xml")[1]
    assert second.headers.get("if-none-match") == 'W/"v1"'
    assert second.headers.get("if-modified-since") == "Tue, 24 Nov"


async def test_crash_after_storing_loses_nothing(
    config: Callable[..., Settings], feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    """Items and alerts stored, then the process died before sending: the next start sends."""
    settings = config()
    feed_server.set_feed("/feed.xml", rss(CSTO_ITEM))
    from monitor.app import App

    app = await asyncio.to_thread(App, settings)
    feeds = await app.pipeline.claim_feeds(only_due=False)
    await app.pipeline.poll_feeds(feeds)  # stored, nothing sent: the "crash" is here
    await app.aclose()
    assert webhook_receiver.requests == []
    await poll_once(settings)
    await webhook_receiver.wait_for_async(1)


async def test_permanent_redirect_moves_the_feed(
    config: Callable[..., Settings], feed_server: FeedServer
) -> None:
    settings = config()
    feed_server.set_handler("/feed.xml", lambda _r: Response.redirect("/new.xml", 301))
    feed_server.set_feed("/new.xml", rss(CSTO_ITEM))
    await poll_once(settings)
    [feed] = store_for(settings).list_feeds()
    assert feed.url == feed_server.url("/new.xml")
    await poll_once(settings)
    assert len(feed_server.requests_for("/feed.xml")) == 1


# --- Reloading the configuration (SIGHUP) ---------------------------------------------------


def edited(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update=changes)


async def test_reload_rebuilds_the_automaton_only_when_watchlists_change(
    config: Callable[..., Settings],
) -> None:
    from monitor.app import App
    from monitor.config import WatchlistConfig

    settings = config()
    async with await asyncio.to_thread(App, settings) as app:
        matcher = app.matcher
        more_feeds = edited(
            settings,
            feeds=[
                *settings.feeds,
                settings.feeds[0].model_copy(update={"url": "http://127.0.0.1:9/other.xml"}),
            ],
        )
        changes = await app.reload(more_feeds)
        assert app.matcher is matcher and app.pipeline.matcher is matcher
        assert changes == ["feeds: added http://127.0.0.1:9/other.xml"]
        assert {f.url for f in store_for(settings).list_feeds()} >= {"http://127.0.0.1:9/other.xml"}

        tokayev = WatchlistConfig.model_validate(
            {"name": "t", "terms": ["Tokayev"], "notify": ["hook"]}
        )
        changes = await app.reload(edited(more_feeds, watchlists=[*settings.watchlists, tokayev]))
        assert app.matcher is not matcher and app.pipeline.matcher is app.matcher
        assert [w.name for w in app.matcher.watchlists] == ["csto", "t"]
        assert changes == ["watchlists: added t"]


async def test_reload_refuses_what_needs_a_restart_and_changes_nothing(
    config: Callable[..., Settings], tmp_path: Path
) -> None:
    from monitor.app import App

    settings = config()
    async with await asyncio.to_thread(App, settings) as app:
        pipeline = app.pipeline
        other = edited(settings, database=f"sqlite:///{tmp_path / 'other.db'}")
        with pytest.raises(ConfigError, match="database: changing it needs a restart"):
            await app.reload(other)
        assert app.pipeline is pipeline and app.settings is settings


async def test_paused_for_waits_for_the_polls_under_way(
    config: Callable[..., Settings], feed_server: FeedServer
) -> None:
    """A reload never swaps the parts under a running poll: it waits for it."""
    from monitor.app import App
    from monitor.schedule import Service

    settings = config()
    feed_server.set_handler("/feed.xml", lambda _r: Response(body=rss(CSTO_ITEM), delay=1.0))
    async with await asyncio.to_thread(App, settings) as app:
        service = Service(app)
        stop = asyncio.Event()
        running = asyncio.create_task(service.run(stop))
        while service.polls == 0:  # the slow poll has started
            await asyncio.sleep(0.01)
        seen: list[int] = []

        async def change() -> None:
            seen.append(service.polls)

        await service.paused_for(change)
        stop.set()
        await running
    assert seen == [0]  # the poll had finished before the change ran
    [feed] = store_for(settings).list_feeds()
    assert feed.state == "ok"


async def test_service_reload_swaps_the_parts_it_runs_and_their_bound(
    config: Callable[..., Settings], feed_server: FeedServer
) -> None:
    """The service, not its caller, applies a reload: the next tick polls with the new
    pipeline and the in-flight bound of the new polling settings."""
    from monitor.app import App
    from monitor.schedule import Service

    settings = config()
    feed_server.set_feed("/feed.xml", rss(CSTO_ITEM))
    async with await asyncio.to_thread(App, settings) as app:
        service = Service(app)
        before = app.pipeline
        polling = settings.polling.model_copy(update={"max_concurrency": 3})
        changes = await service.reload(edited(settings, polling=polling))
        assert changes == ["settings: changed polling"]
        assert service.app.pipeline is not before
        assert service.app.settings.polling.max_inflight == 6
        stop = asyncio.Event()
        running = asyncio.create_task(service.run(stop))
        deadline = asyncio.get_running_loop().time() + 10
        while not store_for(settings).list_feeds()[0].last_polled_at:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        stop.set()
        await running
