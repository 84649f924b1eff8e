"""The email channel against slow and hostile SMTP servers on 127.0.0.1: one deadline for
the whole transaction, no thread left behind, at most one delivery, and errors that quote
neither a password nor a terminal escape.

The outbox wraps each send in its own timeout; ``outbox_attempt`` does the same here."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import time
from collections.abc import Callable
from typing import Any

import aiosmtplib
import pytest
from receivers import RawSmtpServer, Slow, SmtpSink, sample_alert

from alerts.config_email import EmailConfig
from alerts.email import EmailChannel
from alerts.errors import MESSAGE_MAX, DeliveryError

DEADLINE = 0.5  # the channel's timeout in these tests
SLACK = 1.0  # what a loaded test machine may add to it
PASSWORD = "hunter2-Secret"


def email_channel(port: int, **smtp: Any) -> EmailChannel:
    raw = {
        "type": "email",
        "name": "mail",
        "to": ["ops@example.org"],
        "from": "monitor@example.org",
        "smtp": {"host": "127.0.0.1", "port": port, "timeout": DEADLINE} | smtp,
    }
    return EmailChannel(EmailConfig.model_validate(raw))


async def outbox_attempt(channel: EmailChannel, bound: float) -> DeliveryError | TimeoutError:
    """One attempt as the outbox makes it: the send inside ``asyncio.timeout(bound)``."""
    try:
        async with asyncio.timeout(bound):
            await channel.send(sample_alert())
    except (DeliveryError, TimeoutError) as exc:
        return exc
    raise AssertionError("the slow server was expected to fail the attempt")


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor, counting what is handed to it."""

    submitted = 0

    def submit(self, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        self.submitted += 1
        return super().submit(*args, **kwargs)


@pytest.fixture
async def default_executor() -> CountingExecutor:
    """The running loop's default executor, one thread, counting: SMTP must not use it."""
    executor = CountingExecutor(max_workers=1)
    asyncio.get_running_loop().set_default_executor(executor)
    return executor


# ---------------------------------------------------------------------------------------
# Slow servers


async def test_slow_replies_are_cut_at_one_deadline_for_the_whole_transaction(
    raw_smtp: Callable[..., RawSmtpServer],
) -> None:
    # Every reply comes in less than the timeout, all of them together in far more.
    server = raw_smtp(pause=DEADLINE * 0.6)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        await email_channel(server.port).send(sample_alert())
    assert time.monotonic() - started < DEADLINE + SLACK
    assert caught.value.retryable
    assert f"timed out after {DEADLINE:g}s" in caught.value.message
    assert server.accepted == 0


async def test_an_attempt_the_outbox_gave_up_on_never_delivers_later(
    smtp_sink: SmtpSink, default_executor: CountingExecutor
) -> None:
    # The outbox stops waiting before the channel's own deadline (a short lease): the
    # abandoned attempts must not go on and deliver one mail each. (aiosmtpd drops a mail
    # whose client hung up before the reply, so here none arrives at all.)
    smtp_sink.script(*[Slow(seconds=0.6)] * 3)
    channel = email_channel(smtp_sink.port, timeout=30)
    for _ in range(3):
        assert isinstance(await outbox_attempt(channel, bound=0.2), TimeoutError)
    await asyncio.sleep(1.0)  # past the moment the server would have accepted each
    assert smtp_sink.messages == []
    await channel.send(sample_alert())  # the server is fast again: exactly one arrives
    assert len(smtp_sink.messages) == 1
    assert default_executor.submitted == 0


async def test_late_data_reply_is_a_retryable_failure_within_the_deadline(
    smtp_sink: SmtpSink, default_executor: CountingExecutor
) -> None:
    smtp_sink.script(Slow(seconds=DEADLINE * 4))
    started = time.monotonic()
    outcome = await outbox_attempt(email_channel(smtp_sink.port), bound=DEADLINE * 3)
    assert time.monotonic() - started < DEADLINE + SLACK
    assert isinstance(outcome, DeliveryError) and outcome.retryable
    assert "timed out" in outcome.message
    await asyncio.sleep(DEADLINE * 4)  # past the moment the server would have accepted it
    assert smtp_sink.messages == []
    assert default_executor.submitted == 0


async def test_dripped_banner_is_cut_without_touching_the_default_executor(
    raw_smtp: Callable[..., RawSmtpServer], default_executor: CountingExecutor
) -> None:
    server = raw_smtp(banner="220 " + "x" * 2000, drip=0.05)
    channel = email_channel(server.port)
    started = time.monotonic()
    outcomes = [await outbox_attempt(channel, bound=DEADLINE * 3) for _ in range(3)]
    assert time.monotonic() - started < 3 * (DEADLINE + SLACK)
    assert all(isinstance(o, DeliveryError) and o.retryable for o in outcomes)
    assert default_executor.submitted == 0
    # Its one thread is free: the service's polls and database writes still run.
    loop = asyncio.get_running_loop()
    assert await asyncio.wait_for(loop.run_in_executor(None, lambda: "free"), 1) == "free"


async def test_a_send_while_the_previous_is_under_way_is_refused_at_once(
    smtp_sink: SmtpSink,
) -> None:
    smtp_sink.script(Slow(seconds=0.5))
    channel = email_channel(smtp_sink.port, timeout=5)
    first = asyncio.create_task(channel.send(sample_alert(id="first")))
    await asyncio.sleep(0)  # the first send starts, up to its first wait on the server
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        await channel.send(sample_alert(id="second"))
    assert time.monotonic() - started < 0.1
    assert caught.value.retryable and "still under way" in caught.value.message
    await first
    assert [m.message["Message-ID"] for m in smtp_sink.messages] == ["<alert-first@feed-monitor>"]


# ---------------------------------------------------------------------------------------
# What errors may say


def echo_credentials(line: str) -> str:
    """A careless server: its refusal repeats the decoded AUTH PLAIN response."""
    token = line.split()[-1]
    return f"535 5.7.8 bad credentials {base64.b64decode(token).decode()!r}"


async def test_smtp_errors_never_quote_the_password(
    raw_smtp: Callable[..., RawSmtpServer],
) -> None:
    server = raw_smtp({"AUTH": echo_credentials})
    channel = email_channel(server.port, username="monitor", password=PASSWORD)
    with pytest.raises(DeliveryError) as caught:
        await channel.send(sample_alert())
    assert not caught.value.retryable and "535" in caught.value.message
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(caught.value.__cause__)
    assert PASSWORD not in repr(channel._target)


def failing_encoder(username: str, password: str) -> bytes:
    """How smtplib once failed on a password it could not encode: the exception's repr
    holds the whole AUTH string, password included."""
    raise UnicodeEncodeError("ascii", f"\0{username}\0{password}", 0, 1, "not ASCII")


async def test_an_unforeseen_failure_is_named_by_its_type_only(
    raw_smtp: Callable[..., RawSmtpServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aiosmtplib.smtp, "auth_plain_encode", failing_encoder)
    server = raw_smtp()
    channel = email_channel(server.port, username="monitor", password=PASSWORD)
    with pytest.raises(DeliveryError) as caught:
        await channel.send(sample_alert())
    message = caught.value.message
    assert message == f"unexpected UnicodeEncodeError talking to 127.0.0.1:{server.port}"
    assert caught.value.retryable
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


async def test_smtp_reply_reaches_the_message_escaped_and_bounded(
    raw_smtp: Callable[..., RawSmtpServer],
) -> None:
    hostile = "451 4.3.0 \x1b]0;owned\x07\x1b[2J\x9b31m\u202eevil " + "x" * 5_000
    server = raw_smtp({".": hostile})
    with pytest.raises(DeliveryError) as caught:
        await email_channel(server.port).send(sample_alert())
    message = caught.value.message
    assert caught.value.retryable and "451" in message
    assert "\\u001b]0;owned\\u0007" in message and "\\u202eevil" in message
    assert not any(c in message for c in "\x1b\x07\x9b\u202e")
    assert len(message) <= MESSAGE_MAX
