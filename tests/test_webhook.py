"""The webhook channel against a real HTTP receiver on 127.0.0.1: signing, status codes,
Retry-After, redirects, chat formats, templates, and the same for digests.

The delivery contract shared with every channel is in test_channels.py."""

from __future__ import annotations

import asyncio
import gzip
import math
import re
import time
from typing import Any

import pytest
import standardwebhooks
from pydantic import TypeAdapter, ValidationError
from receivers import Reply, WebhookReceiver, sample_alert, sample_digest

from alerts.config_webhook import WebhookConfig
from alerts.controls import UNSAFE
from alerts.errors import DeliveryError
from alerts.registry import ChannelConfig
from alerts.render import HIGHLIGHT_END, HIGHLIGHT_START
from alerts.sandbox import RENDER_TIMEOUT
from alerts.webhook import WebhookChannel, display_url

TIMEOUT = 0.3  # the sends that test a deadline
SLACK = 5.0  # the others: a loaded machine must not turn a reply into a timeout
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def webhook(receiver: WebhookReceiver, **options: Any) -> WebhookChannel:
    raw = {"type": "webhook", "name": "hook", "url": receiver.url, "timeout": SLACK}
    return WebhookChannel(WebhookConfig.model_validate(raw | options))


async def test_signed_webhook_verifies_with_standard_webhooks(
    webhook_receiver: WebhookReceiver,
) -> None:
    channel = webhook(webhook_receiver, secret=SECRET, headers={"Authorization": "Bearer t"})
    alert = sample_alert()
    await channel.send(alert)
    await channel.aclose()
    [request] = webhook_receiver.requests
    payload = standardwebhooks.Webhook(SECRET).verify(request.body, dict(request.headers))
    assert payload["id"] == alert.id == request.headers["webhook-id"]
    assert request.headers["authorization"] == "Bearer t"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("feed-monitor")
    other = standardwebhooks.Webhook("whsec_" + "QUJD" * 8)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        other.verify(request.body, dict(request.headers))


async def test_unsigned_webhook_has_no_signature_headers(
    webhook_receiver: WebhookReceiver,
) -> None:
    channel = webhook(webhook_receiver)
    await channel.send(sample_alert())
    [request] = webhook_receiver.requests
    assert "webhook-signature" not in request.headers
    assert request.json()["matches"][0]["snippet"] == "Лидеры стран ОДКБ встретились"


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(status, False) for status in (400, 401, 403, 404, 405, 422)]
    + [(status, True) for status in (408, 425, 429, 500, 502, 503)],
)
async def test_http_status_decides_retryable(
    webhook_receiver: WebhookReceiver, status: int, retryable: bool
) -> None:
    webhook_receiver.script(Reply(status=status, body=b"nope\n  try later"))
    with pytest.raises(DeliveryError) as caught:
        await webhook(webhook_receiver).send(sample_alert())
    assert caught.value.retryable is retryable
    assert not caught.value.disable_channel
    shown = display_url(webhook_receiver.url)
    assert caught.value.message == f"HTTP {status} from {shown}: nope try later"


async def test_410_gone_disables_the_channel(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.script(410)
    with pytest.raises(DeliveryError) as caught:
        await webhook(webhook_receiver).send(sample_alert())
    assert caught.value.disable_channel and not caught.value.retryable
    assert "asked to stop" in caught.value.message


@pytest.mark.parametrize(
    ("status", "value", "low", "high"),
    [
        (429, "120", 120, 120),
        (503, "Wed, 21 Oct 2099 07:28:00 GMT", 70 * 365 * 86400, 80 * 365 * 86400),
        (503, "Wed, 21 Oct 2015 07:28:00 GMT", 0, 0),  # in the past: at once
        (503, "9" * 400, math.inf, math.inf),  # the retry schedule caps it
    ],
)
async def test_retry_after_is_passed_on_in_seconds(
    webhook_receiver: WebhookReceiver, status: int, value: str, low: float, high: float
) -> None:
    webhook_receiver.script(Reply(status=status, headers={"Retry-After": value}))
    with pytest.raises(DeliveryError) as caught:
        await webhook(webhook_receiver).send(sample_alert())
    assert caught.value.retryable
    assert caught.value.retry_after is not None
    assert low <= caught.value.retry_after <= high


@pytest.mark.parametrize("value", ["soon", "-5", "1.5", "²", "Wed, 32 Oct 2099 07:28:00 GMT"])
async def test_unreadable_retry_after_is_ignored(
    webhook_receiver: WebhookReceiver, value: str
) -> None:
    # "²" is a digit to str.isdigit() but not to RFC 9110, nor to float().
    webhook_receiver.script(Reply(status=503, headers={"Retry-After": value}))
    with pytest.raises(DeliveryError) as caught:
        await webhook(webhook_receiver).send(sample_alert())
    assert caught.value.retryable and caught.value.retry_after is None


@pytest.mark.parametrize(("status", "advice"), [(308, ": update the url"), (302, "")])
async def test_redirect_is_not_followed(
    webhook_receiver: WebhookReceiver, status: int, advice: str
) -> None:
    webhook_receiver.script(Reply(status=status, headers={"Location": "/elsewhere"}))
    with pytest.raises(DeliveryError) as caught:
        await webhook(webhook_receiver).send(sample_alert())
    assert [r.path for r in webhook_receiver.requests] == ["/hook"]
    assert caught.value.retryable
    shown = display_url(webhook_receiver.url.replace("/hook", "/elsewhere"))
    assert caught.value.message.endswith(f"(redirect to {shown} not followed{advice})")


def test_display_url_hides_tokens_in_path_query_and_credentials() -> None:
    slack = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
    assert display_url(slack) == "https://hooks.slack.com/services/…"
    assert (
        display_url("https://user:pw@example.org:8443/h?token=1") == "https://example.org:8443/h/…"
    )
    assert display_url("http://127.0.0.1:9000/hook") == "http://127.0.0.1:9000/hook"


@pytest.mark.parametrize("fmt", ["slack", "discord"])
async def test_chat_formats_post_their_documented_shape(
    webhook_receiver: WebhookReceiver, fmt: str
) -> None:
    await webhook(webhook_receiver, format=fmt).send(sample_alert())
    [request] = webhook_receiver.requests
    body = request.json()
    assert request.headers["content-type"] == "application/json"
    if fmt == "slack":
        assert set(body) == {"text"}
        assert "<https://example.org/news/1|Саммит ОДКБ в Астане>" in body["text"]
    else:
        assert set(body) == {"content", "embeds", "allowed_mentions"}
        assert body["embeds"][0]["url"] == "https://example.org/news/1"


async def test_template_renders_the_body_with_its_content_type(
    webhook_receiver: WebhookReceiver,
) -> None:
    template = '{"chat_id": 42, "text": {{ text | tojson }}, "title": {{ item.title | tojson }}}'
    channel = webhook(webhook_receiver, template=template, content_type="application/json")
    await channel.send(sample_alert(title='Quote " and <tag>'))
    [request] = webhook_receiver.requests
    body = request.json()
    assert body["chat_id"] == 42
    assert body["title"] == 'Quote " and <tag>'
    assert body["text"].startswith('Quote " and <tag>\nhttps://example.org/news/1')

    plain = webhook(webhook_receiver, template="{{ subject }}", content_type="text/plain")
    await plain.send(sample_alert())
    assert webhook_receiver.requests[1].body.decode() == "[CSTO] Саммит ОДКБ в Астане"
    assert webhook_receiver.requests[1].headers["content-type"] == "text/plain"


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ payload.__class__.__init__.__globals__ }}",
        "{{ matches.append(1) }}",
        "{{ no_such_variable }}",
    ],
)
async def test_template_escaping_the_sandbox_fails_permanently_and_sends_nothing(
    webhook_receiver: WebhookReceiver, template: str
) -> None:
    with pytest.raises(DeliveryError) as caught:
        await webhook(webhook_receiver, template=template).send(sample_alert())
    assert not caught.value.retryable
    assert caught.value.message.startswith("template failed:")
    assert webhook_receiver.requests == []


# ---------------------------------------------------------------------------------------
# Digests


async def test_digest_is_one_post_valid_against_the_digest_schema(
    webhook_receiver: WebhookReceiver,
) -> None:
    digest = sample_digest()
    result = await webhook(webhook_receiver).send(digest)
    [request] = webhook_receiver.requests
    body = request.checked_json()
    assert result.detail == "HTTP 200"
    assert body["type"] == "feed.digest" and body["id"] == digest.id
    assert body["count"] == 3
    assert [alert["id"] for alert in body["alerts"]] == ["a3", "a2", "a1"]
    assert body["alerts"][1]["item"]["link"] == "https://example.org/news/2"


async def test_signed_digest_carries_the_digest_id_as_webhook_id(
    webhook_receiver: WebhookReceiver,
) -> None:
    digest = sample_digest()
    await webhook(webhook_receiver, secret=SECRET).send(digest)
    [request] = webhook_receiver.requests
    payload = standardwebhooks.Webhook(SECRET).verify(request.body, dict(request.headers))
    assert request.headers["webhook-id"] == digest.id == payload["id"]


@pytest.mark.parametrize(
    ("reply", "retryable", "retry_after", "disable"),
    [
        (Reply(status=503, headers={"Retry-After": "120"}), True, 120.0, False),
        (Reply(status=429), True, None, False),
        (Reply(status=422), False, None, False),
        (Reply(status=410), False, None, True),
        (Reply(status=308, headers={"Location": "/new"}), True, None, False),
    ],
)
async def test_digest_follows_the_same_status_rules(
    webhook_receiver: WebhookReceiver,
    reply: Reply,
    retryable: bool,
    retry_after: float | None,
    disable: bool,
) -> None:
    webhook_receiver.script(reply)
    with pytest.raises(DeliveryError) as caught:
        await webhook(webhook_receiver).send(sample_digest())
    assert caught.value.retryable is retryable
    assert caught.value.retry_after == retry_after
    assert caught.value.disable_channel is disable


@pytest.mark.parametrize("fmt", ["slack", "discord"])
async def test_chat_formats_post_a_digest_as_one_message(
    webhook_receiver: WebhookReceiver, fmt: str
) -> None:
    await webhook(webhook_receiver, format=fmt).send(sample_digest())
    [request] = webhook_receiver.requests
    body = request.json()
    if fmt == "slack":
        assert set(body) == {"text"}
        assert "<https://example.org/news/2|Учения ОДКБ>" in body["text"]
    else:
        assert set(body) == {"content", "embeds", "allowed_mentions"}
        assert [embed["title"] for embed in body["embeds"]] == ["Kazakhstan (1)", "CSTO (2)"]


async def test_template_sees_alerts_for_a_digest_and_for_a_single_alert(
    webhook_receiver: WebhookReceiver,
) -> None:
    template = "{{ is_digest }}|{{ alerts | map(attribute='id') | join(',') }}|{{ subject }}"
    channel = webhook(webhook_receiver, template=template, content_type="text/plain")
    await channel.send(sample_digest())
    await channel.send(sample_alert())
    digest, alert = (request.body.decode() for request in webhook_receiver.requests)
    assert digest == "True|a3,a2,a1|[digest] 3 alerts: Kazakhstan (1), CSTO (2)"
    assert alert == "False|a1b2c3d4|[CSTO] Саммит ОДКБ в Астане"


async def test_template_for_alerts_only_fails_permanently_on_a_digest(
    webhook_receiver: WebhookReceiver,
) -> None:
    channel = webhook(webhook_receiver, template="{{ item.title }}")
    with pytest.raises(DeliveryError) as caught:
        await channel.send(sample_digest())
    assert not caught.value.retryable and "template failed" in caught.value.message
    assert webhook_receiver.requests == []


# ---------------------------------------------------------------------------------------
# Hostile input: credentials in messages, receivers' bodies, mentions, templates


SLACK_TOKEN = "T000/B000/XXXXSECRETXXXX"


@pytest.mark.parametrize(
    "options",
    [
        {"url": f"hooks.slack.com/services/{SLACK_TOKEN}"},  # no scheme
        {"url": f"ftp://hooks.slack.com/services/{SLACK_TOKEN}"},
        {"url": f"https://hooks.slack.com/services/{SLACK_TOKEN} "[:-1] + "\x1b"},
        {"url": "https://example.org/h", "headers": {"Authorization": f"Bearer {SLACK_TOKEN}é"}},
        {"url": "https://example.org/h", "headers": {"X-Token": f"{SLACK_TOKEN}\r\nX: y"}},
    ],
)
def test_invalid_url_or_header_is_refused_without_quoting_the_secret(
    options: dict[str, Any],
) -> None:
    raw = {"type": "webhook", "name": "hook"} | options
    with pytest.raises(ValidationError) as caught:
        TypeAdapter(ChannelConfig).validate_python(raw)
    # What `monitor check` prints: each error's message.
    assert not any("XXXXSECRET" in error["msg"] for error in caught.value.errors())
    with pytest.raises(ValidationError) as caught:
        WebhookConfig.model_validate(raw)
    assert "XXXXSECRET" not in str(caught.value)  # pydantic's own text leaves the input out


async def test_compressed_error_body_is_never_decompressed(
    webhook_receiver: WebhookReceiver,
) -> None:
    bomb = gzip.compress(b"\0" * 20_000_000)  # 20 MB of zeros in about 20 kB
    webhook_receiver.script(
        Reply(status=503, headers={"Content-Encoding": "gzip"}, body=bomb),
    )
    with pytest.raises(DeliveryError) as caught:
        await webhook(webhook_receiver).send(sample_alert())
    assert caught.value.message == f"HTTP 503 from {display_url(webhook_receiver.url)}"
    [request] = webhook_receiver.requests
    assert request.headers["accept-encoding"] == "identity"


async def test_error_body_reaches_the_message_without_terminal_controls(
    webhook_receiver: WebhookReceiver,
) -> None:
    body = "\x1b]0;owned\x07\x1b[2J\x9b31m \u202eevil \ud800".encode("utf-8", "surrogatepass")
    webhook_receiver.script(Reply(status=400, body=body))
    with pytest.raises(DeliveryError) as caught:
        await webhook(webhook_receiver).send(sample_alert())
    message = caught.value.message
    assert "\\u001b]0;owned\\u0007\\u001b[2J\\u009b31m \\u202eevil" in message
    assert not UNSAFE.search(message)


MENTIONS = re.compile(r"(?<![A-Za-z0-9_])@(?:channel|all|here|everyone)", re.IGNORECASE)


@pytest.mark.parametrize("kind", ["alert", "digest"])
async def test_slack_format_mutes_mattermost_mentions(
    webhook_receiver: WebhookReceiver, kind: str
) -> None:
    alert = sample_alert(
        title="@channel look, @Here",
        watchlist="@everyone",
        link="https://example.org/@all",
        snippet=f"ping @{HIGHLIGHT_START}all{HIGHLIGHT_END} now",
    )
    message = alert if kind == "alert" else sample_digest(alert)
    await webhook(webhook_receiver, format="slack").send(message)
    [request] = webhook_receiver.requests
    text = request.json()["text"]
    # The link is left whole: a zero-width space would break it, and a link's target is
    # not text that Mattermost reads mentions in.
    assert "<https://example.org/@all|" in text
    assert not MENTIONS.search(text.replace("<https://example.org/@all|", ""))
    assert "@\u200bchannel look, @\u200bHere" in text


HOSTILE_TEMPLATES = [
    ("{{ 'x' * 10**7 }}", "'*' would make a value over"),
    ("{{ 'x' * 10000000000 }}", "'*' would make a value over"),
    ("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", "output over"),
    ("{{ 'x'|center(1000000000) }}", "filter center would make"),
    ("{{ '{:>1000000000}'.format('x') }}", "str.format would make"),
    ("{% set s = 'x' * 100000 %}{{ s|replace('x', s) }}", "filter replace would make"),
    ("{% set a = [1] * 1000 %}{% set b = [a] * 1000 %}{{ [b] * 1000 }}", "'*' would make"),
]


@pytest.mark.parametrize(("template", "problem"), HOSTILE_TEMPLATES)
async def test_template_over_its_bounds_fails_permanently_naming_the_problem(
    webhook_receiver: WebhookReceiver, template: str, problem: str
) -> None:
    channel = webhook(webhook_receiver, template=template, content_type="text/plain", timeout=5)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        await channel.send(sample_alert())
    await channel.aclose()
    assert time.monotonic() - started < RENDER_TIMEOUT
    assert not caught.value.retryable
    assert str(caught.value).startswith("hook: template failed: ")
    assert problem in caught.value.message
    assert webhook_receiver.requests == []


async def test_slow_template_runs_off_the_event_loop_and_is_cut_at_its_deadline(
    webhook_receiver: WebhookReceiver,
) -> None:
    template = "{% for a in range(30000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}"
    channel = webhook(webhook_receiver, template=template, content_type="text/plain", timeout=5)
    gaps: list[float] = []

    async def heartbeat() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            gaps.append(time.monotonic() - last)
            last = time.monotonic()

    beating = asyncio.create_task(heartbeat())
    try:
        with pytest.raises(DeliveryError) as caught:
            await channel.send(sample_alert())
    finally:
        beating.cancel()
        await channel.aclose()
    assert not caught.value.retryable
    assert f"took longer than {RENDER_TIMEOUT:g}s" in caught.value.message
    assert max(gaps) < 0.25  # the loop kept running while the template rendered
    assert webhook_receiver.requests == []


async def test_timeout_bounds_the_whole_send_render_included(
    webhook_receiver: WebhookReceiver,
) -> None:
    template = "{% for a in range(3000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}"
    channel = webhook(
        webhook_receiver, template=template, content_type="text/plain", timeout=TIMEOUT
    )
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        await channel.send(sample_alert())
    await channel.aclose()
    assert time.monotonic() - started < TIMEOUT + 1.0
    assert f"took longer than {TIMEOUT:g}s" in caught.value.message
