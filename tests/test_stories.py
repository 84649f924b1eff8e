"""Stories end to end, on SQLite and PostgreSQL: the same news from several feeds folds
into one alert per watchlist and channel, grows, announces its spread at each step, and
keeps one story across restarts; routes with ``stories: separate`` still get every item."""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from feedserver import FeedServer
from pages import sign_in
from receivers import SmtpSink, WebhookReceiver
from test_api import TOKEN, running, until
from test_outbox import outbox_at, poll_only
from test_service import rss, store_for

from monitor.app import App, poll_once
from monitor.cli import app as cli
from monitor.config import Settings, load_settings

NOW = datetime.now(UTC)
OUTLETS = ("Reuters", "TASS", "Kazinform", "AKIpress", "Eurasianet", "bne IntelliNews")
STORY = "Tokayev asks CSTO to send peacekeepers to Kazakhstan"
SUMMARY = "President Tokayev asked the CSTO for help after protests in Almaty."


def story_items(outlet: int) -> tuple[str, str, str, datetime]:
    """One outlet's report of the story: the same wire headline, told in its own style
    (suffix, case, punctuation), which the normalised title makes the same story."""
    titles = (
        STORY,
        f"{STORY} - TASS",
        STORY.upper(),
        f"{STORY}!",
        f"{STORY} | Eurasianet",
        f"“{STORY}”",
    )
    return (f"s{outlet}", titles[outlet], SUMMARY, NOW)


@pytest.fixture
def config(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    smtp_sink: SmtpSink,
) -> Callable[..., Settings]:
    def make(
        *,
        feeds: int = 5,
        updates: str = "[]",
        hook: str = "hook",
        mail: str = "mail",
        http: str = "null",
    ) -> Settings:
        feed_lines = "".join(
            f"  - {{url: '{feed_server.url(f'/f{n}.xml')}', name: '{OUTLETS[n]}'}}\n"
            for n in range(feeds)
        )
        path = tmp_path / "monitor.yaml"
        path.write_text(
            f"""
database: {db_url}
defaults: {{interval: 1m, backlog: 24h}}
polling: {{parse_workers: 0, jitter: 0}}
stories: {{window: 48h, updates: {updates}}}
http: {http}
feeds:
{feed_lines}
watchlists:
  - name: csto
    terms: [CSTO, ОДКБ]
    notify: [{hook}, {mail}]
  - name: kazakhstan
    terms: [Kazakhstan, Almaty]
    notify: [hook]
channels:
  - name: hook
    type: webhook
    url: {webhook_receiver.url}
    retry: [0s]
  - name: mail
    type: email
    to: [analyst@example.org]
    from: monitor@example.org
    smtp: {{host: 127.0.0.1, port: {smtp_sink.port}}}
    retry: [0s]
""",
            encoding="utf-8",
        )
        return load_settings(path, {})

    return make


def serve(feed_server: FeedServer, outlets: range, *extra: tuple[str, str, str, datetime]) -> None:
    for n in outlets:
        feed_server.set_feed(f"/f{n}.xml", rss(story_items(n), *extra, title=OUTLETS[n]))


def hooks(receiver: WebhookReceiver, watchlist: str) -> list[dict[str, object]]:
    return [r.json() for r in receiver.requests if r.json()["watchlist"] == watchlist]


async def test_one_story_in_five_feeds_is_one_alert_per_watchlist_and_channel(
    config: Callable[..., Settings],
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    smtp_sink: SmtpSink,
) -> None:
    settings = config()
    serve(feed_server, range(5))
    reports, _ = await poll_once(settings)  # the five polls run together: one tick
    assert sorted((r.new, r.matched) for r in reports) == [(1, 2)] * 5
    csto, kazakhstan = hooks(webhook_receiver, "csto"), hooks(webhook_receiver, "kazakhstan")
    assert len(csto) == 1 and len(kazakhstan) == 1 and len(smtp_sink.messages) == 1
    story = csto[0]["story"]
    assert story["size"] == 5 and story["source_count"] == 5
    assert sorted(s["feed"] for s in story["sources"]) == sorted(OUTLETS[:5])
    assert kazakhstan[0]["story"]["id"] == story["id"]
    # every item is stored and listed with its story: one lead per watchlist, the rest
    # attached without deliveries
    records = store_for(settings).list_alerts()
    assert len(records) == 10
    attached = [r for r in records if not r.deliveries]
    assert len(attached) == 8
    assert {r.alert.story.id for r in records if r.alert.story} == {story["id"]}


async def test_two_events_with_overlapping_words_are_two_alerts(
    config: Callable[..., Settings], feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    settings = config(feeds=2)
    protests = ("p1", "Protesters gather in Almaty as Kazakhstan fuel anger grows", "", NOW)
    prices = ("g1", "Kazakhstan government caps liquefied gas price in Almaty region", "", NOW)
    feed_server.set_feed("/f0.xml", rss(protests, title="Reuters"))
    feed_server.set_feed("/f1.xml", rss(prices, title="TASS"))
    await poll_once(settings)
    found = hooks(webhook_receiver, "kazakhstan")
    assert len(found) == 2
    assert found[0]["story"]["id"] != found[1]["story"]["id"]
    assert [f["story"]["size"] for f in found] == [1, 1]


async def test_the_spread_update_fires_once_at_each_step(
    config: Callable[..., Settings],
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    smtp_sink: SmtpSink,
) -> None:
    settings = config(feeds=6, updates="[3, 5]")
    updates: list[dict[str, object]] = []
    for outlet in range(6):
        serve(feed_server, range(outlet + 1))
        await poll_once(settings)  # a new App each pass: restarts between members too
        sent = [h for h in hooks(webhook_receiver, "csto") if h["type"] == "feed.story.updated"]
        updates = sent
        expected = {0: 0, 1: 0, 2: 1, 3: 1, 4: 2, 5: 2}[outlet]
        assert len(updates) == expected, (outlet, [u["count"] for u in updates])
    assert [u["count"] for u in updates] == [3, 5]
    assert [u["story"]["source_count"] for u in updates] == [3, 5]
    first = [h for h in hooks(webhook_receiver, "csto") if h["type"] == "feed.item.matched"]
    assert len(first) == 1
    assert {u["story"]["id"] for u in updates} == {first[0]["story"]["id"]}
    subjects = [m.message["Subject"].strip() for m in smtp_sink.messages]  # folded when long
    assert subjects[0] == f"[csto] {STORY}"
    assert subjects[1:] == [
        f"[csto] now in 3 sources: {STORY}",
        f"[csto] now in 5 sources: {STORY}",
    ]
    assert len(hooks(webhook_receiver, "kazakhstan")) == 3  # its first alert, two updates
    sent = len(webhook_receiver.requests)
    await poll_once(settings)  # nothing new: no update again
    assert len(webhook_receiver.requests) == sent


async def test_a_separate_route_gets_every_item_while_collapse_gets_one(
    config: Callable[..., Settings],
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    smtp_sink: SmtpSink,
) -> None:
    settings = config(feeds=3, hook="{channel: hook, stories: separate}")
    serve(feed_server, range(3))
    await poll_once(settings)
    csto = hooks(webhook_receiver, "csto")
    assert len(csto) == 3 and len(smtp_sink.messages) == 1
    assert len({h["item"]["guid"] for h in csto}) == 3
    assert {h["story"]["id"] for h in csto} == {csto[0]["story"]["id"]}


async def test_a_restart_between_two_members_keeps_one_story(
    config: Callable[..., Settings], feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    serve(feed_server, range(1))
    await poll_once(config(feeds=2))
    serve(feed_server, range(2))
    await poll_once(config(feeds=2))  # another App, as after a restart
    assert len(hooks(webhook_receiver, "csto")) == 1
    records = store_for(config(feeds=2)).list_alerts()
    csto = [r for r in records if r.alert.watchlist == "csto"]
    assert len(csto) == 2 and len({r.alert.story.id for r in csto if r.alert.story}) == 1
    assert max(r.alert.story.size for r in csto if r.alert.story) == 2


async def test_stories_off_alerts_every_item(
    config: Callable[..., Settings],
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    tmp_path: Path,
) -> None:
    config(feeds=3)
    path = tmp_path / "monitor.yaml"
    path.write_text(
        path.read_text().replace("stories: {window: 48h", "stories: {enabled: false, window: 48h")
    )
    settings = load_settings(path, {})
    serve(feed_server, range(3))
    await poll_once(settings)
    csto = hooks(webhook_receiver, "csto")
    assert len(csto) == 3 and all("story" not in h or h["story"] is None for h in csto)


async def test_the_digest_groups_a_story_into_one_entry(
    config: Callable[..., Settings], feed_server: FeedServer, smtp_sink: SmtpSink
) -> None:
    settings = config(feeds=4, mail="{channel: mail, stories: separate, digest: 1h}")
    serve(feed_server, range(4))
    app = await poll_only(settings)
    try:
        assert await outbox_at(app, datetime.now(UTC)).deliver_due() > 0  # the webhook
        assert smtp_sink.messages == []  # the mail waits for its digest
        later = datetime.now(UTC) + timedelta(hours=1)
        assert await outbox_at(app, later).deliver_due() == 4
    finally:
        await app.aclose()
    [digest] = smtp_sink.messages
    body = digest.message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "4 sources" in text
    assert all(outlet in text for outlet in OUTLETS[:4])


async def test_an_item_bridging_two_stories_merges_them(
    config: Callable[..., Settings], feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    """The third item has the first one's link and the second one's headline: all three
    are one story (single linkage), and the two first alerts already sent stay sent."""
    settings = config(feeds=3)
    airport = "Almaty airport closed amid unrest in Kazakhstan"
    government = "Kazakhstan government resigns after fuel protests"
    feed_server.set_feed("/f0.xml", rss(("x1", airport, "", NOW), title="Reuters"))
    feed_server.set_feed("/f1.xml", rss(("y1", government, "", NOW), title="TASS"))
    await poll_once(settings)
    assert len(hooks(webhook_receiver, "kazakhstan")) == 2
    feed_server.set_feed("/f2.xml", rss(("x1", government, "", NOW), title="Kazinform"))
    await poll_once(settings)
    assert len(hooks(webhook_receiver, "kazakhstan")) == 2
    records = [r for r in store_for(settings).list_alerts() if r.alert.watchlist == "kazakhstan"]
    stories = {r.alert.story.id: r.alert.story for r in records if r.alert.story}
    assert len(records) == 3 and len(stories) == 1
    [story] = stories.values()
    assert (story.size, story.source_count) == (3, 3)


async def test_two_instances_polling_one_story_at_once_make_one_story(
    config: Callable[..., Settings], feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    """Two services on one PostgreSQL database, each claiming some of the feeds in the
    same moment: the stories lock serialises the placing, so the story neither splits nor
    doubles. SQLite has one process per database (the instance lock): there, two batches
    of polls at once in one service."""
    settings = config(feeds=6)
    serve(feed_server, range(6))
    if settings.database.startswith("postgresql"):
        await asyncio.gather(poll_once(settings), poll_once(settings))
    else:
        app = await asyncio.to_thread(App, settings)
        try:
            feeds = await app.pipeline.claim_feeds(only_due=False)
            halves = (app.pipeline.poll_feeds(feeds[:3]), app.pipeline.poll_feeds(feeds[3:]))
            await asyncio.gather(*halves)
            await app.outbox.deliver_due()
        finally:
            await app.aclose()
    assert len(hooks(webhook_receiver, "csto")) == 1
    records = [r for r in store_for(settings).list_alerts() if r.alert.watchlist == "csto"]
    assert len(records) == 6
    assert {r.alert.story.id for r in records if r.alert.story} == {
        hooks(webhook_receiver, "csto")[0]["story"]["id"]
    }


async def test_the_api_and_the_dashboard_show_each_alert_s_part_in_its_story(
    config: Callable[..., Settings], feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    settings = config(feeds=3, http=f'{{listen: "127.0.0.1:0", token: "{TOKEN}"}}')
    serve(feed_server, range(3))
    async with running(settings) as api:

        async def stored() -> bool:
            return len((await api.client.get("/api/alerts")).json()["alerts"]) == 6

        await until(stored, "six alerts")
        listed = (await api.client.get("/api/alerts", params={"watchlist": "csto"})).json()
        roles = sorted(a["story"]["role"] for a in listed["alerts"])
        assert roles == ["lead", "member", "member"]
        assert {a["story"]["source_count"] for a in listed["alerts"]} == {3}
        await sign_in(api.anon, TOKEN, next="/alerts")
        page = (await api.anon.get("/alerts", params={"watchlist": "csto"})).text
    assert page.count('data-role="member"') == 2 and page.count('data-role="lead"') == 1
    assert "Attached" in page and 'data-sources="3"' in page
    assert all(html.escape(outlet) in page for outlet in OUTLETS[:3])


async def test_monitor_alerts_says_what_each_alert_is_to_its_story(
    config: Callable[..., Settings], feed_server: FeedServer, tmp_path: Path
) -> None:
    config(feeds=3)
    serve(feed_server, range(3))
    await poll_once(load_settings(tmp_path / "monitor.yaml", {}))
    path = str(tmp_path / "monitor.yaml")
    listed = CliRunner().invoke(cli, ["alerts", "--config", path])
    assert listed.exit_code == 0, listed.output
    assert listed.output.count("3 items from 3 sources; first alert") == 2  # two watchlists
    assert listed.output.count("attached: sent only where every item is wanted") == 4
    as_json = CliRunner().invoke(cli, ["alerts", "--config", path, "--json"])
    stories = [a["story"] for a in json.loads(as_json.output)]
    assert sorted(s["role"] for s in stories) == ["lead"] * 2 + ["member"] * 4
    assert {s["source_count"] for s in stories} == {3}
    assert sorted(x["feed"] for x in stories[0]["sources"]) == sorted(OUTLETS[:3])
