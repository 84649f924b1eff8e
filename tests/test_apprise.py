"""The apprise channel against real receivers on 127.0.0.1, and through the outbox on both
databases: each URL its own delivery, retried on its own; digests and ``max_per_hour`` per
URL; messages within each service's limits; the URLs' secrets nowhere in what is shown.

Apprise's json://, form:// and xml:// post to the webhook receiver, mailto:// to the SMTP
sink. The tgram:// URL cannot name a host (the Bot API's address is the plugin's
``notify_url``), so the Telegram test points that class attribute at the receiver.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import io
import json
import logging
import os
import random
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from apprise.plugins.custom_json import NotifyJSON
from apprise.plugins.discord import NotifyDiscord
from apprise.plugins.telegram import NotifyTelegram
from feedserver import FeedServer
from pages import sign_in
from pydantic import TypeAdapter
from receivers import Reply, SmtpSink, WebhookReceiver, sample_alert, sample_digest
from test_api import TOKEN, running
from test_service import rss

from alerts.apprise import AppriseChannel
from alerts.base import Alert, AlertMatch
from alerts.config_apprise import AppriseConfig
from alerts.errors import DeliveryError
from alerts.registry import ChannelConfig, build_channel, delivery_targets
from alerts.render import HIGHLIGHT_END, HIGHLIGHT_START
from alerts.render_apprise import ELLIPSIS, Limits, _words, fit_lines, fit_message
from monitor.app import App
from monitor.cli.common import QUIET_LOGGERS
from monitor.config import Settings, load_settings
from monitor.errors import ConfigError
from monitor.outbox import Outbox
from monitor.types import DeliveryState

NOW = datetime.now(UTC)
SECRETS = ("S3cretPass", "T0kenPath")


def apprise_channel(url: str, name: str = "phones#1", timeout: float = 5.0) -> AppriseChannel:
    raw = {"type": "apprise", "name": name, "urls": [url], "timeout": timeout}
    config = TypeAdapter(ChannelConfig).validate_python(raw)
    channel = build_channel(config)
    assert isinstance(channel, AppriseChannel)
    return channel


@pytest.fixture
def service_log() -> Iterator[io.StringIO]:
    """What the service's log handler (on the root logger, as ``monitor run`` sets it up)
    prints. Not caplog: pytest also hooks its handler onto non-propagating loggers."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *QUIET_LOGGERS)}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # `monitor run --log-level DEBUG`
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    yield stream
    root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def second_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


# ---------------------------------------------------------------------------------------
# What each service receives


async def test_json_form_and_xml_carry_title_link_and_snippet(
    webhook_receiver: WebhookReceiver,
) -> None:
    port = webhook_receiver.port
    for scheme in ("json", "form", "xml"):
        channel = apprise_channel(f"{scheme}://127.0.0.1:{port}/{scheme}")
        try:
            result = await channel.send(sample_alert())
        finally:
            await channel.aclose()
        assert result.detail == f"accepted by {scheme}://127.0.0.1:{port}/…"
    json_req, form_req, xml_req = await webhook_receiver.wait_for_async(3)
    title = "[CSTO] Саммит ОДКБ в Астане"
    body = json_req.json()
    assert json_req.path == "/json" and body["title"] == title and body["type"] == "info"
    link, snippet, *rest = body["message"].split("\n")
    assert link == "https://example.org/news/1"  # the link first, then the snippet
    assert snippet == "ОДКБ: Лидеры стран *ОДКБ* встретились"
    assert rest == ["— Example News", "Лидеры стран ОДКБ встретились в Астане."]
    form = parse_qs(form_req.body.decode())
    assert form["title"] == [title] and form["message"] == [body["message"]]
    tree = ET.fromstring(xml_req.body)
    texts = {el.tag.rpartition("}")[2]: el.text for el in tree.iter()}
    assert texts["Subject"] == title and texts["Message"] == body["message"]


async def test_mailto_reaches_the_smtp_server(smtp_sink: SmtpSink) -> None:
    url = (
        f"mailto://127.0.0.1:{smtp_sink.port}?to=ops@example.org"
        "&from=monitor@example.org&mode=insecure"
    )
    channel = apprise_channel(url)
    try:
        assert (await channel.send(sample_digest())).detail.startswith("accepted by mailto://")
    finally:
        await channel.aclose()
    [mail] = await smtp_sink.wait_for_async(1)
    assert mail.rcpt_tos == ("ops@example.org",)
    assert mail.message["Subject"] == "[digest] 3 alerts: Kazakhstan (1), CSTO (2)"
    text = mail.message.get_body(("plain",)).get_content()
    assert "• [Kazakhstan] Токаев подписал закон" in text and "https://example.org/news/2" in text


@pytest.fixture
def telegram_api(
    webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> WebhookReceiver:
    monkeypatch.setattr(
        NotifyTelegram, "notify_url", f"http://127.0.0.1:{webhook_receiver.port}/bot"
    )
    return webhook_receiver


async def test_telegram_gets_escaped_html_with_the_title_in_bold(
    telegram_api: WebhookReceiver, service_log: io.StringIO
) -> None:
    channel = apprise_channel("tgram://123456789:AAtestTOKENxyz/987654")
    alert = sample_alert(title="<script>x</script> & ОДКБ")
    try:
        await channel.send(alert)
    finally:
        await channel.aclose()
    [request] = await telegram_api.wait_for_async(1)
    assert request.path == "/bot123456789:AAtestTOKENxyz/sendMessage"
    payload = request.json()
    assert payload["chat_id"] == 987654 and payload["parse_mode"] == "HTML"
    first, *_ = payload["text"].splitlines()
    assert first == "<b>[CSTO] &lt;script&gt;x&lt;/script&gt; &amp; ОДКБ</b>"
    assert "<b>ОДКБ</b>" in payload["text"]  # the matched word, emphasised
    assert channel.where == "tgram://1...z/…"  # Apprise's masked token, no chat id
    assert "AAtestTOKENxyz" not in service_log.getvalue()  # Apprise logs the URL at DEBUG


async def test_telegram_429_retry_after_is_honoured(telegram_api: WebhookReceiver) -> None:
    answer = json.dumps({"ok": False, "description": "Too Many Requests: retry after 7"})
    telegram_api.script(Reply(status=429, body=answer.encode()))
    channel = apprise_channel("tgram://123456789:AAtestTOKENxyz/987654")
    try:
        with pytest.raises(DeliveryError) as caught:
            await channel.send(sample_alert())
    finally:
        await channel.aclose()
    assert caught.value.retryable and caught.value.retry_after == 7.0
    assert caught.value.message == "HTTP 429 from tgram://1...z/…"


DISCORD = "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js"


@pytest.fixture
def discord_api(
    webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> WebhookReceiver:
    """Discord's webhook API on loopback: the discord:// URL names no host either."""
    monkeypatch.setattr(
        NotifyDiscord, "notify_url", f"http://127.0.0.1:{webhook_receiver.port}/api/webhooks"
    )
    return webhook_receiver


def rate_limited(seconds: int, status: int = 429) -> Reply:
    """Discord's answer when the window is spent: it reopens ``seconds`` from now."""
    reset = str(int(time.time()) + seconds)
    return Reply(status=status, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})


async def test_a_429_with_its_window_is_waited_out_by_the_outbox_not_the_thread(
    discord_api: WebhookReceiver,
) -> None:
    # The plugin keeps the window and, for one retry, would sleep until it reopens (some
    # 40 s with its clock allowance): past the channel's timeout, a thread left asleep.
    discord_api.script(rate_limited(30))
    channel = apprise_channel(DISCORD, timeout=5.0)
    started = time.monotonic()
    try:
        with pytest.raises(DeliveryError) as caught:
            await channel.send(sample_alert())
    finally:
        await channel.aclose()
    assert time.monotonic() - started < 4  # neither slept nor timed out
    assert caught.value.retryable and caught.value.retry_after is not None
    assert 29 <= caught.value.retry_after <= 41
    message = r"rate limited by discord://4\.\.\.8/… for (39|40|41)s: not sent"
    assert re.fullmatch(message, caught.value.message)
    assert len(discord_api.requests) == 1  # the window is not hammered


async def test_a_spent_window_holds_the_next_send_without_a_request(
    discord_api: WebhookReceiver,
) -> None:
    discord_api.script(rate_limited(20, status=204))  # accepted, and the last one allowed
    channel = apprise_channel(DISCORD)
    try:
        await channel.send(sample_alert())
        with pytest.raises(DeliveryError) as caught:
            await channel.send(sample_alert(id="second"))
        assert caught.value.retry_after is not None and 19 <= caught.value.retry_after <= 31
        assert len(discord_api.requests) == 1
        # Once the window has reopened the delivery goes through.
        channel._plugin.ratelimit_reset = datetime.now(UTC).replace(tzinfo=None) - timedelta(
            seconds=20
        )
        await channel.send(sample_alert(id="second"))
    finally:
        await channel.aclose()
    assert len(discord_api.requests) == 2


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (429, True), (400, False), (404, False)]
)
async def test_status_decides_whether_to_retry(
    webhook_receiver: WebhookReceiver, status: int, retryable: bool
) -> None:
    webhook_receiver.script(status)
    channel = apprise_channel(f"json://127.0.0.1:{webhook_receiver.port}/hook")
    try:
        with pytest.raises(DeliveryError) as caught:
            await channel.send(sample_alert())
    finally:
        await channel.aclose()
    assert caught.value.retryable is retryable
    assert caught.value.message == f"HTTP {status} from json://127.0.0.1:{webhook_receiver.port}/…"


async def test_a_send_still_running_refuses_the_next(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.script(Reply(hang=True))
    channel = apprise_channel(f"json://127.0.0.1:{webhook_receiver.port}/hook", timeout=0.2)
    # The plugin's own read timeout is lowered to ours, but the thread outlives our wait a
    # little; a send in that window must not start a second request.
    channel._plugin.socket_read_timeout = 5.0
    try:
        with pytest.raises(DeliveryError, match="timed out"):
            await channel.send(sample_alert())
        with pytest.raises(DeliveryError, match="still under way") as caught:
            await channel.send(sample_alert())
        assert caught.value.retryable
    finally:
        webhook_receiver.stop()
        await channel.aclose()
    assert len(webhook_receiver.requests) == 1


# ---------------------------------------------------------------------------------------
# Length limits


def long_alert() -> Alert:
    snippet = f"the summit of the {HIGHLIGHT_START}CSTO{HIGHLIGHT_END} opened in Astana today"
    alert = sample_alert(
        title="CSTO leaders meet " + "again " * 10,
        snippet=snippet,
        summary=" ".join(f"word{i}" for i in range(300)),
    )
    match = AlertMatch(term="CSTO", field="summary", snippet=snippet)
    return dataclasses.replace(alert, matches=(match,))


async def test_a_long_item_is_cut_at_a_word_keeping_the_snippet(
    webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(NotifyJSON, "body_maxlen", 160)
    monkeypatch.setattr(NotifyJSON, "title_maxlen", 30)
    channel = apprise_channel(f"json://127.0.0.1:{webhook_receiver.port}/hook")
    try:
        await channel.send(long_alert())
    finally:
        await channel.aclose()
    body = (await webhook_receiver.wait_for_async(1))[0].json()
    message, title = body["message"], body["title"]
    assert len(message) <= 160 and len(title) <= 30
    assert title == f"[CSTO] CSTO leaders meet{ELLIPSIS}"  # "again…" would make 31
    lines = message.split("\n")
    assert lines[0] == "https://example.org/news/1"
    assert lines[1] == "CSTO: the summit of the *CSTO* opened in Astana today"
    assert message.endswith(ELLIPSIS)
    last = lines[-1].removesuffix(ELLIPSIS).split(" ")[-1]
    assert re.fullmatch(r"word\d+", last)  # a whole word before the cut
    full = " ".join(f"word{i}" for i in range(300))
    assert full.startswith(lines[-1].removesuffix(ELLIPSIS) + " ")


def test_a_cut_never_splits_an_escape_or_an_emphasis() -> None:
    snippet = f"{HIGHLIGHT_START}A&B{HIGHLIGHT_END} <tag> " * 30
    alert = sample_alert(title="x & y", snippet=snippet, summary="")
    for budget in range(40, 400, 7):
        for markup in ("html", "markdown", "text"):
            limits = Limits(title_max=0, body_max=budget, markup=markup)  # type: ignore[arg-type]
            body = fit_message(alert, limits).body
            assert len(body) <= budget
            if markup == "html":
                assert re.sub(r"&(amp|lt|gt|quot|#39);", "", body).count("&") == 0
                assert body.count("<b>") == body.count("</b>")
                assert "<tag" not in body
            if markup == "markdown":
                assert body.count("**") % 2 == 0
                assert not re.search(r"(?<!\\)(\\\\)*\\$", body.removesuffix(ELLIPSIS))


@pytest.mark.parametrize("markup", ["html", "markdown", "text"])
def test_the_last_resort_cut_falls_between_escapes(markup: str) -> None:
    # Lines whose first word alone is longer than the budget (a line of CJK text has no
    # spaces): the first is cut inside that word, between two escapes (``&amp;``, ``\\*``),
    # never through one, without a half emphasis, and keeps what fits.
    word = "R&D*_<x>" * 40
    lines = [_words(word, markup, wrap=("<b>", "</b>")), _words(word, markup)]  # type: ignore[arg-type]
    for budget in range(1, 120):
        body = fit_lines(lines, budget)
        assert len(body) <= budget and body.endswith(ELLIPSIS)
        cut = body.removesuffix(ELLIPSIS)
        assert len(body) > budget - 8  # what fits, not a sixth of it
        if markup == "html":
            assert "&" not in re.sub(r"&(amp|lt|gt);", "", cut) and "<" not in cut
        if markup == "markdown":
            assert not re.search(r"(?<!\\)(\\\\)*\\$", cut)  # no escape left open
            assert "**" not in cut


def test_the_title_leads_the_body_when_the_service_has_no_title() -> None:
    fitted = fit_message(sample_alert(), Limits(title_max=0, body_max=4096, markup="html"))
    assert fitted.title == ""
    assert fitted.body.split("\n")[0] == "<b>[CSTO] Саммит ОДКБ в Астане</b>"
    html.unescape(fitted.body)  # well-formed entities


def test_a_digest_lists_whole_alerts_then_how_many_more() -> None:
    alerts = [sample_alert(id=f"a{i}", title=f"Item number {i}") for i in range(30)]
    digest = sample_digest(*alerts)
    body = fit_message(digest, Limits(title_max=250, body_max=300)).body
    assert len(body) <= 300
    lines = body.split("\n")
    assert lines[0] == "• [CSTO] Item number 0" and lines[1] == "https://example.org/news/1"
    listed = sum(1 for line in lines if line.startswith("• "))
    assert lines[-1] == f"{ELLIPSIS} and {30 - listed} more"


# ---------------------------------------------------------------------------------------
# Configuration


def test_each_url_is_a_target_named_by_position() -> None:
    config = AppriseConfig.model_validate(
        {"type": "apprise", "name": "phones", "urls": ["json://a.example/x", "ntfy://b/topic"]}
    )
    assert [t.name for t in delivery_targets(config)] == ["phones#1", "phones#2"]
    assert [t.urls for t in config.targets()] == [["json://a.example/x"], ["ntfy://b/topic"]]
    longer = config.model_copy(update={"urls": [*config.urls, "json://c.example/"]})
    assert [t.name for t in longer.targets()] == ["phones#1", "phones#2", "phones#3"]


def write_settings(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(f"database: sqlite:///{tmp_path / 'm.db'}\n{body}", encoding="utf-8")
    return path


def test_an_unusable_url_names_the_channel_and_index_not_the_secret(tmp_path: Path) -> None:
    path = write_settings(
        tmp_path,
        """
channels:
  - name: phones
    type: apprise
    urls: ["json://127.0.0.1/ok", "tgram://S3cretPass", "nosuch://T0kenPath@host"]
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    text = str(caught.value)
    assert "channels[0] (phones).urls[1]: Apprise cannot use this 'tgram' URL" in text
    assert "channels[0] (phones).urls[2]: Apprise cannot use this 'nosuch' URL" in text
    assert "urls[0]" not in text
    assert not any(secret in text for secret in SECRETS)


def test_a_target_name_taken_by_another_channel_is_refused(tmp_path: Path) -> None:
    path = write_settings(
        tmp_path,
        """
channels:
  - {name: phones, type: apprise, urls: ["json://127.0.0.1/a", "json://127.0.0.1/b"]}
  - {name: "phones#2", type: log}
""",
    )
    with pytest.raises(ConfigError, match="duplicate name 'phones#2'"):
        load_settings(path, {})


# ---------------------------------------------------------------------------------------
# Through the outbox, on both databases


def items(count: int) -> bytes:
    return rss(
        *((f"g{i}", f"CSTO report {i}", "text", NOW - timedelta(minutes=i)) for i in range(count))
    )


@pytest.fixture
def config(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    second_receiver: WebhookReceiver,
) -> Callable[..., Settings]:
    def make(*, notify: str = "[phones]", extra: str = "", http: str = "") -> Settings:
        one = f"json://alice:S3cretPass@127.0.0.1:{webhook_receiver.port}/T0kenPath"
        two = f"json://127.0.0.1:{second_receiver.port}/two"
        path = tmp_path / "monitor.yaml"
        path.write_text(
            f"""
database: {db_url}
polling: {{parse_workers: 0, jitter: 0}}
{http}
feeds:
  - url: {feed_server.url("/feed.xml")}
watchlists:
  - name: csto
    terms: [CSTO]
    notify: {notify}
channels:
  - name: phones
    type: apprise
    urls: ["{one}", "{two}"]
    retry: [0s, 0s]
    timeout: 5s
{extra}
""",
            encoding="utf-8",
        )
        return load_settings(path, {})

    return make


def outbox_at(app: App, moment: datetime) -> Outbox:
    return Outbox(
        store=app.store,
        channels=app.channels,
        configs=app.outbox.configs,
        retry=app.retry,
        lease=60,
        clock=lambda: moment,
        rng=random.Random(0),
    )


@pytest.fixture
async def polled(
    config: Callable[..., Settings], feed_server: FeedServer
) -> AsyncIterator[Callable[..., Any]]:
    apps: list[App] = []

    async def poll(count: int = 1, **options: str) -> App:
        feed_server.set_feed("/feed.xml", items(count))
        app = await asyncio.to_thread(App, config(**options))
        apps.append(app)
        await app.pipeline.poll_feeds(await app.pipeline.claim_feeds(only_due=False))
        return app

    yield poll
    for app in apps:
        await app.aclose()


def deliveries(app: App) -> dict[str, tuple[str, int]]:
    [record] = app.store.list_alerts(limit=10)
    return {d.channel: (d.state, d.attempts) for d in record.deliveries}


async def test_one_url_failing_is_retried_alone(
    polled: Callable[..., Any],
    webhook_receiver: WebhookReceiver,
    second_receiver: WebhookReceiver,
    service_log: io.StringIO,
) -> None:
    webhook_receiver.script(500)
    app = await polled()
    assert await app.outbox.deliver_due() == 2
    assert deliveries(app) == {
        "phones#1": (DeliveryState.FAILED, 1),
        "phones#2": (DeliveryState.SENT, 1),
    }
    assert await app.outbox.deliver_due() == 1  # only the failed one
    assert deliveries(app) == {
        "phones#1": (DeliveryState.SENT, 2),
        "phones#2": (DeliveryState.SENT, 1),
    }
    assert [r.status for r in webhook_receiver.requests] == [500, 200]
    assert len(second_receiver.requests) == 1  # never sent again
    assert webhook_receiver.requests[0].headers["authorization"].startswith("Basic ")
    logged = service_log.getvalue()
    assert "channel=phones#1 state=failed" in logged and "HTTP 500" in logged
    assert not any(secret in logged for secret in SECRETS)


async def test_a_permanent_refusal_is_dead_at_once_and_its_error_hides_the_url(
    polled: Callable[..., Any], webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.script(400)
    app = await polled()
    await app.outbox.deliver_due()
    [record] = app.store.list_alerts(limit=10)
    dead = next(d for d in record.deliveries if d.channel == "phones#1")
    assert dead.state == DeliveryState.DEAD and dead.attempts == 1
    assert dead.last_error == f"HTTP 400 from json://127.0.0.1:{webhook_receiver.port}/…"


async def test_a_digest_route_sends_one_digest_per_url(
    polled: Callable[..., Any],
    webhook_receiver: WebhookReceiver,
    second_receiver: WebhookReceiver,
) -> None:
    app = await polled(3, notify="[{channel: phones, digest: 1h}]")
    assert await outbox_at(app, datetime.now(UTC)).deliver_due() == 0
    assert await outbox_at(app, datetime.now(UTC) + timedelta(hours=1)).deliver_due() == 6
    for receiver in (webhook_receiver, second_receiver):
        [digest] = await receiver.wait_for_async(1)
        body = digest.json()
        assert body["title"] == "[digest] 3 alerts: csto (3)"
        assert body["message"].split("\n")[0] == "• [csto] CSTO report 0"


async def test_max_per_hour_applies_to_each_url(
    polled: Callable[..., Any],
    webhook_receiver: WebhookReceiver,
    second_receiver: WebhookReceiver,
) -> None:
    app = await polled(5, extra="    max_per_hour: 2")
    now = datetime.now(UTC).replace(minute=5, second=0, microsecond=0) + timedelta(hours=1)
    await outbox_at(app, now).deliver_due()
    for receiver in (webhook_receiver, second_receiver):
        sent = await receiver.wait_for_async(2)
        assert [r.json()["title"].startswith("[csto] CSTO report") for r in sent] == [True] * 2
    await outbox_at(app, now + timedelta(hours=1)).deliver_due()
    for receiver in (webhook_receiver, second_receiver):
        *_, folded = await receiver.wait_for_async(3)
        assert folded.json()["title"] == "[digest] 3 alerts: csto (3)"
        assert len(receiver.requests) == 3


def monitor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


async def test_secrets_stay_out_of_cli_output_and_the_dashboard(
    config: Callable[..., Settings],
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    second_receiver: WebhookReceiver,
) -> None:
    feed_server.set_feed("/feed.xml", items(1))
    webhook_receiver.script(400)
    http = f'service: {{tick: 0.1s}}\nhttp: {{listen: "127.0.0.1:0", token: "{TOKEN}"}}'
    settings = config(http=http)
    async with running(settings) as api:
        await second_receiver.wait_for_async(1, timeout=20)
        await webhook_receiver.wait_for_async(1, timeout=20)

        async def settled() -> bool:
            r = await api.client.get("/api/alerts", params={"state": "dead"})
            return bool(r.json()["alerts"])

        for _ in range(400):
            if await settled():
                break
            await asyncio.sleep(0.05)
        client = api.anon
        await sign_in(client, TOKEN)
        pages = [await client.get(p) for p in ("/", "/alerts", "/watchlists")]
        pages.append(await api.client.get("/api/alerts"))
    assert all(p.status_code == 200 for p in pages)
    shown = "".join(p.text for p in pages)
    assert "HTTP 400 from json://127.0.0.1" in shown
    listing = await asyncio.to_thread(monitor, "channels", "--config", settings.source)
    assert listing.returncode == 0, listing.stderr
    port = webhook_receiver.port
    assert (
        f"phones#1 (apprise json://127.0.0.1:{port}/…): ok; deliveries: 0 pending" in listing.stdout
    )
    as_json = await asyncio.to_thread(monitor, "channels", "--json", "--config", settings.source)
    assert [c["name"] for c in json.loads(as_json.stdout)] == ["phones#1", "phones#2"]
    alerts = await asyncio.to_thread(monitor, "alerts", "--config", settings.source)
    assert "phones#1: dead after 1 attempt(s): HTTP 400" in alerts.stdout
    for text in (shown, listing.stdout, listing.stderr, as_json.stdout, alerts.stdout):
        assert not any(secret in text for secret in SECRETS)


def test_channels_test_sends_to_every_url_and_names_each(
    config: Callable[..., Settings],
    webhook_receiver: WebhookReceiver,
    second_receiver: WebhookReceiver,
) -> None:
    source = config().source
    webhook_receiver.script(503)
    outcome = monitor("channels", "test", "phones", "--config", source)
    assert outcome.returncode == 1
    lines = outcome.stdout.splitlines()
    assert lines[0].startswith("phones#1: FAILED") and "HTTP 503" in lines[0]
    assert lines[1].startswith("phones#2: sample alert delivered")
    single = monitor("channels", "test", "phones#1", "--config", source)
    assert single.returncode == 0 and single.stdout.startswith("phones#1: sample alert delivered")
    assert not any(secret in outcome.stdout + single.stdout for secret in SECRETS)
