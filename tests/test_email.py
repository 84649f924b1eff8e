"""The email channel: the message it builds (headers, parts, escaping; no server), then
delivery to a real SMTP server (aiosmtpd) on 127.0.0.1: envelope, STARTTLS, implicit TLS,
login, certificates; and a digest as one mail.

The delivery contract shared with every channel is in test_channels.py."""

from __future__ import annotations

import email
import email.policy
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from receivers import SmtpSink, sample_alert, sample_digest

from alerts.config_email import EmailConfig
from alerts.email import EmailChannel, build_message, list_id, message_id
from alerts.errors import ChannelConfigError, DeliveryError

XSS = "<script>alert(1)</script>"


@pytest.fixture
def email_config() -> EmailConfig:
    return EmailConfig.model_validate(
        {
            "type": "email",
            "name": "mail",
            "to": ["ops@example.org", "Аналитик <analyst@example.org>"],
            "from": "Монитор <monitor@example.org>",
            "smtp": {"host": "smtp.example.org"},
        }
    )


def parse(raw: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def test_message_is_ascii_with_rfc2047_cyrillic_subject(email_config: EmailConfig) -> None:
    raw = bytes(build_message(sample_alert(), email_config))
    assert raw.isascii()
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n")[0]
    message = parse(raw)
    assert message["Subject"] == "[CSTO] Саммит ОДКБ в Астане"
    assert message["From"] == "Монитор <monitor@example.org>"


def test_message_has_threading_and_automation_headers(email_config: EmailConfig) -> None:
    message = parse(bytes(build_message(sample_alert(), email_config)))
    assert message["Message-ID"] == "<alert-a1b2c3d4@feed-monitor>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Id"] == "<csto.feed-monitor>"
    assert message["Date"] == "Thu, 05 Nov 2026 14:05:00 +0000"


def test_message_is_text_and_html_alternatives(email_config: EmailConfig) -> None:
    message = parse(bytes(build_message(sample_alert(title=XSS), email_config)))
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert XSS in text.get_content()
    assert XSS not in html.get_content()
    assert "&lt;script&gt;" in html.get_content()
    assert "<mark>ОДКБ</mark>" in html.get_content()


def test_message_is_identical_on_retry(email_config: EmailConfig) -> None:
    alert = sample_alert()
    first, second = build_message(alert, email_config), build_message(alert, email_config)
    for header in ("Message-ID", "Date", "Subject"):
        assert first[header] == second[header]


def test_message_id_and_list_id_stay_valid_for_any_name() -> None:
    assert message_id(sample_alert(id="x y<>@z")).startswith("<alert-")
    assert " " not in message_id(sample_alert(id="x y<>@z"))
    assert message_id(sample_alert(id="a b")) != message_id(sample_alert(id="a-b"))
    assert list_id("Central Asia: energy") == "<central-asia-energy.feed-monitor>"
    cyrillic = list_id("ОДКБ")
    assert cyrillic.isascii() and cyrillic != list_id("ЕАЭС")
    assert list_id("ОДКБ news") != list_id("news")


def test_digest_message_has_its_own_id_and_the_same_automation_headers(
    email_config: EmailConfig,
) -> None:
    digest = sample_digest(id="a1b2c3d4")  # the same id as an alert: still a distinct mail
    message = parse(bytes(build_message(digest, email_config)))
    assert message["Message-ID"] == "<digest-a1b2c3d4@feed-monitor>"
    assert message["Message-ID"] != message_id(sample_alert(id="a1b2c3d4"))
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["Subject"] == "[digest] 3 alerts: Kazakhstan (1), CSTO (2)"
    first, second = build_message(digest, email_config), build_message(digest, email_config)
    assert bytes(first) == bytes(second)  # a retry is the same mail


def test_digest_list_id_is_the_watchlist_s_when_it_has_only_one(
    email_config: EmailConfig,
) -> None:
    one = sample_digest(sample_alert(id="1"), sample_alert(id="2"))
    assert parse(bytes(build_message(one, email_config)))["List-Id"] == "<csto.feed-monitor>"
    mixed = parse(bytes(build_message(sample_digest(channel="mail"), email_config)))
    assert mixed["List-Id"] == "<digest-mail.feed-monitor>"


def test_feed_text_holding_the_boundary_cannot_split_the_mail(email_config: EmailConfig) -> None:
    digest = hashlib.sha256(b"<alert-a1b2c3d4@feed-monitor>").hexdigest()[:32]
    boundary = f"=_{digest}"
    plain = build_message(sample_alert(), email_config)
    assert plain.get_boundary() == boundary
    fake = f"--{boundary}\nContent-Type: text/html\n\n<h1>fake</h1>"
    hostile = sample_alert(title="News", summary=fake, snippet="plain ASCII", watchlist="W")
    message = parse(bytes(build_message(hostile, email_config)))
    assert message.get_boundary() != boundary
    assert len(list(message.iter_parts())) == 2


# ---------------------------------------------------------------------------------------
# Delivery


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
