"""Every channel in CHANNELS through the same delivery cases, against real receivers.

The contract: success returns a DeliveryResult; a temporary refusal, a timeout or a
receiver that is down raise a retryable DeliveryError and the next attempt succeeds; a
permanent refusal raises a DeliveryError that is not retryable. Each case runs with a
single alert, with a digest and with a feed-health notice: each is one message with the
same rules. The log channel has no receiver to fail, so for it every case is a success.
Then the channel configuration (shared settings included) and the log channel; the webhook
and email channels have their own test modules.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Protocol

import pytest
from pydantic import TypeAdapter, ValidationError
from receivers import (
    HANG,
    Reply,
    SmtpSink,
    WebhookReceiver,
    sample_alert,
    sample_digest,
    sample_notice,
)

from alerts.base import Channel, DeliveryResult, Digest, Message
from alerts.config_log import LogConfig
from alerts.controls import UNSAFE
from alerts.digest import DigestSchedule
from alerts.errors import DeliveryError
from alerts.log import LogChannel
from alerts.registry import CHANNELS, ChannelConfig, build_channel

TIMEOUT = 0.3  # the channels' timeout in these tests: hung receivers are cut after this
NOW = datetime(2026, 11, 5, 15, 0, tzinfo=UTC)


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


class AppriseHarness(WebhookHarness):
    """Apprise's json:// plugin posting to the webhook receiver: one target."""

    def config(self) -> dict[str, Any]:
        url = f"json://127.0.0.1:{self.receiver.port}/hook"
        return {"type": "apprise", "name": "phones#1", "urls": [url], "timeout": TIMEOUT}


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
    if kind == "apprise":
        return AppriseHarness(request.getfixturevalue("webhook_receiver"))
    raise AssertionError(f"channel type {kind!r} has no contract harness: add one")


@pytest.fixture
async def channel(harness: Harness) -> AsyncIterator[Channel]:
    config = TypeAdapter(ChannelConfig).validate_python(harness.config())
    channel = build_channel(config)
    yield channel
    await channel.aclose()


@pytest.fixture(params=["alert", "digest", "notice"])
def message(request: pytest.FixtureRequest) -> Message:
    samples = {"alert": sample_alert, "digest": sample_digest, "notice": sample_notice}
    return samples[request.param]()


async def attempt(
    channel: Channel, harness: Harness, message: Message
) -> DeliveryResult | DeliveryError:
    try:
        result = await channel.send(message)
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


async def test_success_is_a_delivery_result(
    channel: Channel, harness: Harness, message: Message
) -> None:
    outcome = await attempt(channel, harness, message)
    assert isinstance(outcome, DeliveryResult)
    assert harness.delivered() == 1


async def test_temporary_refusal_is_retryable_and_the_retry_succeeds(
    channel: Channel, harness: Harness, message: Message
) -> None:
    harness.fail_transiently()
    error = expect_failure(await attempt(channel, harness, message), harness)
    if error is None:
        return
    assert error.retryable and not error.disable_channel
    assert error.channel == channel.name
    assert isinstance(await attempt(channel, harness, message), DeliveryResult)
    assert harness.delivered() == 1


async def test_permanent_refusal_is_not_retryable(
    channel: Channel, harness: Harness, message: Message
) -> None:
    harness.fail_permanently()
    error = expect_failure(await attempt(channel, harness, message), harness)
    if error is None:
        return
    assert not error.retryable
    assert harness.delivered() == 0


async def test_hung_receiver_times_out_as_retryable(
    channel: Channel, harness: Harness, message: Message
) -> None:
    harness.hang()
    started = time.monotonic()
    error = expect_failure(await attempt(channel, harness, message), harness)
    assert time.monotonic() - started < TIMEOUT + 1.5
    if error is None:
        return
    assert error.retryable
    assert f"timed out after {TIMEOUT:g}s" in error.message


async def test_receiver_down_is_retryable_and_up_again_succeeds(
    channel: Channel, harness: Harness, message: Message
) -> None:
    harness.stop()
    error = expect_failure(await attempt(channel, harness, message), harness)
    if error is None:
        return
    assert error.retryable
    assert "connection refused" in error.message
    harness.start()
    assert isinstance(await attempt(channel, harness, message), DeliveryResult)
    assert harness.delivered() == 1


async def test_empty_digest_is_refused_permanently_and_sends_nothing(
    channel: Channel, harness: Harness
) -> None:
    with pytest.raises(DeliveryError) as caught:
        await channel.send(Digest(id="d0", channel=channel.name, alerts=(), created_at=NOW))
    assert not caught.value.retryable
    assert "empty digest" in caught.value.message
    assert harness.delivered() == 0


# ---------------------------------------------------------------------------------------
# Registry and configuration


def minimal_configs() -> dict[str, dict[str, Any]]:
    """The smallest valid configuration of each channel type."""
    return {
        "webhook": {"type": "webhook", "name": "w", "url": "https://example.org/hook"},
        "email": {
            "type": "email",
            "name": "e",
            "to": ["a@example.org"],
            "from": "m@example.org",
            "smtp": {"host": "smtp.example.org", "port": 587, "starttls": True},
        },
        "log": {"type": "log", "name": "l", "retry": ["1m", 600]},
        "apprise": {"type": "apprise", "name": "a", "urls": ["json://127.0.0.1/hook"]},
    }


def test_registry_builds_each_type_from_its_config(tmp_path: Any) -> None:
    adapter = TypeAdapter(ChannelConfig)
    configs = minimal_configs()
    assert set(configs) == set(CHANNELS)
    for kind, raw in configs.items():
        channel = build_channel(adapter.validate_python(raw))
        assert type(channel).__module__ == f"alerts.{kind}"  # the type's own module
        assert channel.name == raw["name"]
    assert adapter.validate_python(configs["log"]).retry == [60.0, 600.0]


@pytest.mark.parametrize("kind", sorted(CHANNELS))
def test_every_channel_type_takes_digest_and_max_per_hour(kind: str) -> None:
    adapter = TypeAdapter(ChannelConfig)
    plain = adapter.validate_python(minimal_configs()[kind])
    assert plain.digest is None and plain.max_per_hour is None  # immediate, unlimited
    raw = minimal_configs()[kind] | {"digest": "daily@08:00 Europe/Moscow", "max_per_hour": "5"}
    config = adapter.validate_python(raw)
    assert isinstance(config.digest, DigestSchedule)
    assert config.digest.kind == "daily" and str(config.digest) == "daily@08:00 Europe/Moscow"
    assert config.max_per_hour == 5  # a string from ${ENV} substitution is fine
    dumped = config.model_dump(mode="json", by_alias=True)
    assert dumped["digest"] == "daily@08:00 Europe/Moscow"
    assert adapter.validate_python(dumped) == config


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"digest": "sometimes"}, "invalid digest 'sometimes'"),
        ({"digest": "daily@08:00 Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
        ({"digest": 3600}, "invalid digest 3600"),
        ({"max_per_hour": 0}, "greater than or equal to 1"),
        ({"max_per_hour": True}, "whole number"),
        ({"max_per_hour": 2.5}, "fractional part"),
        ({"maxPerHour": 5}, "Extra inputs are not permitted"),
    ],
)
@pytest.mark.parametrize("kind", sorted(CHANNELS))
def test_bad_digest_or_rate_limit_is_refused_with_a_reason(
    kind: str, extra: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        TypeAdapter(ChannelConfig).validate_python(minimal_configs()[kind] | extra)


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


async def test_log_channel_writes_a_digest_line_then_one_line_per_alert(
    caplog: pytest.LogCaptureFixture,
) -> None:
    channel = LogChannel(LogConfig(type="log", name="log"))
    digest = sample_digest(channel="log")
    with caplog.at_level(logging.INFO, logger="alerts.log"):
        result = await channel.send(digest)
    lines = [record.getMessage() for record in caplog.records]
    assert result.detail == "logged 3 alerts"
    assert lines[0] == (
        "digest channel=log count=3 watchlists=Kazakhstan,CSTO digest=d-2026-11-05T15"
    )
    assert [line.split(" alert=")[1] for line in lines[1:]] == [
        "a3 digest=d-2026-11-05T15",
        "a2 digest=d-2026-11-05T15",
        "a1 digest=d-2026-11-05T15",
    ]
    assert lines[1].startswith('alert watchlist=Kazakhstan title="Токаев подписал закон"')


HOSTILE = "\x1b]0;owned\x07\x1b[31mred\x1b[2J \x9b31m \u202eevil\u2066 \x7f \ud800 end"


async def test_log_channel_escapes_terminal_controls_in_every_field(
    caplog: pytest.LogCaptureFixture,
) -> None:
    alert = sample_alert(
        id=f"id{HOSTILE}",
        title=f"Title {HOSTILE}",
        link=f"https://example.org/{HOSTILE}",
        watchlist=f"w{HOSTILE}",
        guid=HOSTILE,
    )
    channel = LogChannel(LogConfig(type="log", name="log"))
    with caplog.at_level(logging.INFO, logger="alerts.log"):
        await channel.send(alert)
        await channel.send(sample_digest(alert, id=f"d{HOSTILE}", channel="log"))
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 3
    for line in lines:
        assert not UNSAFE.search(line), ascii(line)
    # A quoted value is still JSON: it reads back as the text (whitespace runs as one space).
    title = re.search(r' title=("(?:[^"\\]|\\.)*")', lines[0])
    assert title is not None
    assert json.loads(title.group(1)) == " ".join(f"Title {HOSTILE}".split())
