"""Every channel in CHANNELS through the same delivery cases, against real receivers.

The contract: success returns a DeliveryResult; a temporary refusal, a timeout or a
receiver that is down raise a retryable DeliveryError and the next attempt succeeds; a
permanent refusal raises a DeliveryError that is not retryable. The log channel has no
receiver to fail, so for it every case is a success. Channel-specific behaviour follows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import pytest
import standardwebhooks
from pydantic import TypeAdapter, ValidationError
from receivers import HANG, Reply, SmtpSink, WebhookReceiver, sample_alert

from alerts.base import Channel, DeliveryResult
from alerts.email import EmailChannel, EmailConfig
from alerts.errors import ChannelConfigError, DeliveryError
from alerts.log import LogChannel, LogConfig
from alerts.registry import CHANNELS, ChannelConfig, build_channel
from alerts.webhook import WebhookChannel, WebhookConfig, display_url

TIMEOUT = 0.3  # the channels' timeout in these tests: hung receivers are cut after this
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Harness(Protocol):
    """Drives one channel type's receiver through the contract's situations."""

    can_fail: bool

    def config(self) -> dict[str, Any]: ...
    def fail_transiently(self) -> None: ...
    def fail_permanently(self) -> None: ...
    def hang(self) -> None: ...
    def delivered(self) -> int: ...
    def stop(self) -> None: ...
    def start(self) -> None: ...


class WebhookHarness:
    can_fail = True

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver

    def config(self) -> dict[str, Any]:
        return {"type": "webhook", "name": "hook", "url": self.receiver.url, "timeout": TIMEOUT}

    def fail_transiently(self) -> None:
        self.receiver.script(503)

    def fail_permanently(self) -> None:
        self.receiver.script(400)

    def hang(self) -> None:
        self.receiver.script(Reply(hang=True))

    def delivered(self) -> int:
        return sum(1 for r in self.receiver.requests if 200 <= r.status < 300)

    def stop(self) -> None:
        self.receiver.stop()

    def start(self) -> None:
        self.receiver.start()


class EmailHarness:
    can_fail = True

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    def config(self) -> dict[str, Any]:
        smtp = {"host": "127.0.0.1", "port": self.sink.port, "timeout": TIMEOUT}
        return {"type": "email", "name": "mail", "to": ["ops@example.org"]} | {
            "from": "Feed Monitor <monitor@example.org>",
            "smtp": smtp,
        }

    def fail_transiently(self) -> None:
        self.sink.script("451 4.3.0 Try again later")

    def fail_permanently(self) -> None:
        self.sink.script("550 5.1.1 Mailbox unknown")

    def hang(self) -> None:
        self.sink.script(HANG)

    def delivered(self) -> int:
        return len(self.sink.messages)

    def stop(self) -> None:
        self.sink.stop()

    def start(self) -> None:
        self.sink.start()


class LogHarness:
    can_fail = False
    sent = 0

    def config(self) -> dict[str, Any]:
        return {"type": "log", "name": "log"}

    def fail_transiently(self) -> None: ...
    def fail_permanently(self) -> None: ...
    def hang(self) -> None: ...
    def stop(self) -> None: ...
    def start(self) -> None: ...

    def delivered(self) -> int:
        return self.sent


@pytest.fixture(params=sorted(CHANNELS))
def harness(request: pytest.FixtureRequest) -> Harness:
    kind = request.param
    if kind == "webhook":
        return WebhookHarness(request.getfixturevalue("webhook_receiver"))
    if kind == "email":
        return EmailHarness(request.getfixturevalue("smtp_sink"))
    if kind == "log":
        return LogHarness()
    raise AssertionError(f"channel type {kind!r} has no contract harness: add one")


@pytest.fixture
async def channel(harness: Harness) -> AsyncIterator[Channel]:
    config = TypeAdapter(ChannelConfig).validate_python(harness.config())
    channel = build_channel(config)
    yield channel
    await channel.aclose()


async def attempt(channel: Channel, harness: Harness) -> DeliveryResult | DeliveryError:
    try:
        result = await channel.send(sample_alert())
    except DeliveryError as exc:
        return exc
    if isinstance(harness, LogHarness):
        harness.sent += 1
    return result


def expect_failure(
    outcome: DeliveryResult | DeliveryError, harness: Harness
) -> DeliveryError | None:
    """The error; None (after checking it succeeded) for a channel that cannot fail."""
    if not harness.can_fail:
        assert isinstance(outcome, DeliveryResult)
        return None
    assert isinstance(outcome, DeliveryError), outcome
    return outcome


async def test_success_is_a_delivery_result(channel: Channel, harness: Harness) -> None:
    outcome = await attempt(channel, harness)
    assert isinstance(outcome, DeliveryResult)
    assert harness.delivered() == 1


async def test_temporary_refusal_is_retryable_and_the_retry_succeeds(
    channel: Channel, harness: Harness
) -> None:
    harness.fail_transiently()
    error = expect_failure(await attempt(channel, harness), harness)
    if error is None:
        return
    assert error.retryable and not error.disable_channel
    assert error.channel == channel.name
    assert isinstance(await attempt(channel, harness), DeliveryResult)
    assert harness.delivered() == 1


async def test_permanent_refusal_is_not_retryable(channel: Channel, harness: Harness) -> None:
    harness.fail_permanently()
    error = expect_failure(await attempt(channel, harness), harness)
    if error is None:
        return
    assert not error.retryable
    assert harness.delivered() == 0


async def test_hung_receiver_times_out_as_retryable(channel: Channel, harness: Harness) -> None:
    harness.hang()
    started = time.monotonic()
    error = expect_failure(await attempt(channel, harness), harness)
    assert time.monotonic() - started < TIMEOUT + 1.5
    if error is None:
        return
    assert error.retryable
    assert f"timed out after {TIMEOUT:g}s" in error.message


async def test_receiver_down_is_retryable_and_up_again_succeeds(
    channel: Channel, harness: Harness
) -> None:
    harness.stop()
    error = expect_failure(await attempt(channel, harness), harness)
    if error is None:
        return
    assert error.retryable
    assert "connection refused" in error.message
    harness.start()
    assert isinstance(await attempt(channel, harness), DeliveryResult)
    assert harness.delivered() == 1


# ---------------------------------------------------------------------------------------
# Registry and configuration


def test_registry_builds_each_type_from_its_config(tmp_path: Any) -> None:
    adapter = TypeAdapter(ChannelConfig)
    configs = {
        "webhook": {"type": "webhook", "name": "w", "url": "https://example.org/hook"},
        "email": {
            "type": "email",
            "name": "e",
            "to": ["a@example.org"],
            "from": "m@example.org",
            "smtp": {"host": "smtp.example.org", "port": 587, "starttls": True},
        },
        "log": {"type": "log", "name": "l", "retry": ["1m", 600]},
    }
    assert set(configs) == set(CHANNELS)
    for kind, raw in configs.items():
        channel = build_channel(adapter.validate_python(raw))
        assert isinstance(channel, CHANNELS[kind])  # type: ignore[arg-type]
        assert channel.name == raw["name"]
    assert adapter.validate_python(configs["log"]).retry == [60.0, 600.0]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"type": "fax", "name": "x"}, "does not match any of the expected tags"),
        ({"type": "log", "name": "x", "colour": "red"}, "Extra inputs are not permitted"),
        ({"type": "webhook", "name": "x", "url": "ftp://example.org"}, "absolute http(s) URL"),
        ({"type": "webhook", "name": "x", "url": "http://h", "secret": "whsec_!!"}, "base64"),
        (
            {"type": "webhook", "name": "x", "url": "http://h", "headers": {"Webhook-Id": "1"}},
            "set by the channel",
        ),
        (
            {"type": "webhook", "name": "x", "url": "http://h", "template": "{{ x"},
            "template line 1",
        ),
        (
            {"type": "webhook", "name": "x", "url": "http://h", "template": "{}"}
            | {"format": "slack"},
            "not both",
        ),
        ({"type": "webhook", "name": "x", "url": "http://h", "timeout": "soon"}, "30s, 10m"),
        (
            {"type": "email", "name": "x", "to": [], "from": "a@b.c", "smtp": {"host": "h"}},
            "at least 1 item",
        ),
        (
            {"type": "email", "name": "x", "to": ["nobody"], "from": "a@b.c"}
            | {"smtp": {"host": "h"}},
            "not an email address",
        ),
        (
            {"type": "email", "name": "x", "to": ["a@b.c"], "from": "a@b.c"}
            | {"smtp": {"host": "h", "starttls": True, "tls": True}},
            "not both",
        ),
        (
            {"type": "email", "name": "x", "to": ["a@b.c"], "from": "a@b.c"}
            | {"smtp": {"host": "h", "username": "u"}},
            "username and password go together",
        ),
    ],
)
def test_invalid_channel_config_is_refused_with_a_reason(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        TypeAdapter(ChannelConfig).validate_python(raw)


def test_email_config_accepts_the_issue_example_and_defaults_ports() -> None:
    raw = {
        "type": "email",
        "name": "mail",
        "to": ["analyst@example.org"],
        "from": "monitor@example.org",
        "smtp": {"host": "smtp.example.org", "port": 587, "starttls": True}
        | {"username": "monitor", "password": "hunter2"},
    }
    config = EmailConfig.model_validate(raw)
    assert config.from_ == "monitor@example.org"
    assert config.smtp.starttls and config.smtp.port == 587
    assert "hunter2" not in repr(config)
    implicit = EmailConfig.model_validate(raw | {"smtp": {"host": "h", "tls": True}})
    assert implicit.smtp.port == 465
    assert EmailConfig.model_validate(raw | {"smtp": {"host": "h"}}).smtp.port == 587


def test_unreadable_ca_file_is_a_channel_config_error(tmp_path: Any) -> None:
    config = EmailConfig.model_validate(
        {"type": "email", "name": "mail", "to": ["a@b.c"], "from": "m@b.c"}
        | {"smtp": {"host": "h", "tls": True, "ca_file": str(tmp_path / "missing.pem")}}
    )
    with pytest.raises(ChannelConfigError, match="ca_file"):
        EmailChannel(config)


# ---------------------------------------------------------------------------------------
# Webhook specifics


def webhook(receiver: WebhookReceiver, **options: Any) -> WebhookChannel:
    raw = {"type": "webhook", "name": "hook", "url": receiver.url, "timeout": TIMEOUT}
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
# Email specifics


def email_channel(sink: SmtpSink, **smtp: Any) -> EmailChannel:
    raw = {
        "type": "email",
        "name": "mail",
        "to": ["ops@example.org", "Аналитик <analyst@example.org>"],
        "from": "Feed Monitor <monitor@example.org>",
        "smtp": {"host": "127.0.0.1", "port": sink.port, "timeout": 5} | smtp,
    }
    return EmailChannel(EmailConfig.model_validate(raw))


async def test_email_arrives_as_multipart_with_envelope_and_headers(smtp_sink: SmtpSink) -> None:
    result = await email_channel(smtp_sink).send(sample_alert())
    [mail] = smtp_sink.messages
    assert result.detail == f"accepted by 127.0.0.1:{smtp_sink.port}"
    assert mail.mail_from == "monitor@example.org"
    assert mail.rcpt_tos == ("ops@example.org", "analyst@example.org")
    assert mail.message["Subject"] == "[CSTO] Саммит ОДКБ в Астане"
    assert mail.message.get_content_type() == "multipart/alternative"
    assert mail.raw.isascii()  # 7bit: no 8BITMIME/SMTPUTF8 needed from the server


async def test_starttls_configured_but_not_offered_is_refused(smtp_sink: SmtpSink) -> None:
    channel = email_channel(smtp_sink, starttls=True, username="u", password="p")
    with pytest.raises(DeliveryError) as caught:
        await channel.send(sample_alert())
    assert "does not offer STARTTLS" in caught.value.message
    assert smtp_sink.attempts == 0 and smtp_sink.messages == []


async def test_starttls_with_login_delivers(
    smtp_sink_factory: Callable[..., SmtpSink], tls_ca_file: str
) -> None:
    sink = smtp_sink_factory("starttls", login=("monitor", "s3cret"))
    channel = email_channel(
        sink, starttls=True, ca_file=tls_ca_file, username="monitor", password="s3cret"
    )
    await channel.send(sample_alert())
    [mail] = sink.messages
    assert mail.authenticated_as == "monitor"


async def test_wrong_password_is_permanent(
    smtp_sink_factory: Callable[..., SmtpSink], tls_ca_file: str
) -> None:
    sink = smtp_sink_factory("starttls", login=("monitor", "s3cret"))
    channel = email_channel(
        sink, starttls=True, ca_file=tls_ca_file, username="monitor", password="wrong"
    )
    with pytest.raises(DeliveryError) as caught:
        await channel.send(sample_alert())
    assert not caught.value.retryable
    assert "535" in caught.value.message


async def test_implicit_tls_delivers(
    smtp_sink_factory: Callable[..., SmtpSink], tls_ca_file: str
) -> None:
    sink = smtp_sink_factory("tls")
    await email_channel(sink, tls=True, ca_file=tls_ca_file).send(sample_alert())
    assert len(sink.messages) == 1


async def test_untrusted_certificate_is_an_error_unless_verify_is_off(
    smtp_sink_factory: Callable[..., SmtpSink],
) -> None:
    sink = smtp_sink_factory("tls")
    with pytest.raises(DeliveryError) as caught:
        await email_channel(sink, tls=True).send(sample_alert())
    assert "not trusted" in caught.value.message
    assert sink.messages == []
    await email_channel(sink, tls=True, verify=False).send(sample_alert())
    assert len(sink.messages) == 1


# ---------------------------------------------------------------------------------------
# Log specifics


async def test_log_channel_writes_one_info_line(caplog: pytest.LogCaptureFixture) -> None:
    channel = LogChannel(LogConfig(type="log", name="log"))
    with caplog.at_level(logging.INFO, logger="alerts.log"):
        result = await channel.send(sample_alert())
    [record] = caplog.records
    assert record.name == "alerts.log" and record.levelno == logging.INFO
    assert result.detail == "logged"
    line = record.getMessage()
    assert line == (
        'alert watchlist=CSTO title="Саммит ОДКБ в Астане" link=https://example.org/news/1 '
        'feed="Example News" terms=ОДКБ alert=a1b2c3d4'
    )
