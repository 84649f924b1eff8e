"""The email channel against a real SMTP server (aiosmtpd) on 127.0.0.1: envelope and
headers, STARTTLS, implicit TLS, login, certificates, and a digest as one mail.

The delivery contract shared with every channel is in test_channels.py; the message
itself (headers, parts, escaping) is tested without a server in test_render.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from receivers import SmtpSink, sample_alert, sample_digest

from alerts.email import EmailChannel, EmailConfig
from alerts.errors import ChannelConfigError, DeliveryError


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
# Configuration


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
# Digests


async def test_digest_arrives_as_one_multipart_mail(smtp_sink: SmtpSink) -> None:
    digest = sample_digest()
    await email_channel(smtp_sink).send(digest)
    [mail] = smtp_sink.wait_for(1)
    message = mail.message
    assert mail.rcpt_tos == ("ops@example.org", "analyst@example.org")
    assert message["Subject"] == "[digest] 3 alerts: Kazakhstan (1), CSTO (2)"
    assert message["Message-ID"] == "<digest-d-2026-11-05T15@feed-monitor>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"] == "Thu, 05 Nov 2026 15:00:00 +0000"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().count("Example News, 2026-11-05") == 3
    assert html.get_content().count("<mark>ОДКБ</mark>") == 3
    assert mail.raw.isascii()
