"""The email channel: one alert or digest -> one multipart (text + HTML) message over SMTP.

Input: an ``Alert`` or a ``Digest``; output: a ``DeliveryResult`` or a ``DeliveryError``
saying whether to retry. SMTP replies decide: 4xx is temporary, 5xx permanent (RFC 5321
section 4.2.1). A digest is one mail with its own Message-ID and the same headers.
Uses the standard library's smtplib in a worker thread (one short connection per message:
alerts are rare, and a pooled SMTP session would need keep-alive handling for nothing).
Does not retry, queue or record anything: the outbox does.

TLS is never silently dropped: with ``starttls: true`` a server that does not offer
STARTTLS is an error, not a reason to send the password and the mail in clear text.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from alerts.base import DeliveryResult, Digest, Message
from alerts.durations import Duration, format_duration
from alerts.errors import ChannelConfigError, DeliveryError
from alerts.render import render_html, render_subject, render_text
from alerts.render_digest import render_digest_html, render_digest_subject, render_digest_text
from alerts.settings import ChannelSettings

# 7bit: non-ASCII bodies go out as quoted-printable/base64 and headers as RFC 2047 words,
# so the message needs neither 8BITMIME nor SMTPUTF8 from the server.
_POLICY = SMTP_POLICY.clone(cte_type="7bit")
_ID_SAFE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SLUG_UNSAFE = re.compile(r"[^a-z0-9]+")
Refusals = dict[str, tuple[int, bytes]]  # smtplib's {recipient: (code, reply)}


def _check_address(value: str) -> str:
    _, address = parseaddr(value)
    if "@" not in address or "\n" in value or "\r" in value:
        raise ValueError(f"not an email address: {value!r}")
    return value


class SmtpConfig(BaseModel):
    """``tls`` is implicit TLS (port 465); ``starttls`` upgrades a plain connection (587)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    starttls: bool = False
    tls: bool = False
    username: str | None = None
    password: SecretStr | None = None
    timeout: Duration = Field(default=30.0, gt=0)
    verify: bool = True
    ca_file: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SmtpConfig:
        if self.starttls and self.tls:
            raise ValueError("set either starttls (port 587) or tls (port 465), not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.port is None:
            self.port = 465 if self.tls else 587
        return self


class EmailConfig(ChannelSettings):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["email"]
    to: list[str] = Field(min_length=1)
    from_: str = Field(alias="from")
    smtp: SmtpConfig

    @field_validator("to")
    @classmethod
    def _recipients(cls, to: list[str]) -> list[str]:
        return [_check_address(address) for address in to]

    @field_validator("from_")
    @classmethod
    def _sender(cls, sender: str) -> str:
        return _check_address(sender)


def message_id(message: Message) -> str:
    """Stable across retries, so a mailbox that sees the same alert (or digest) twice keeps
    one copy. Alerts and digests get different prefixes: their ids are separate spaces."""
    local = message.id
    if not _ID_SAFE.fullmatch(local):
        local = hashlib.sha256(local.encode()).hexdigest()[:32]
    kind = "digest" if isinstance(message, Digest) else "alert"
    return f"<{kind}-{local}@feed-monitor>"


def list_id(watchlist: str) -> str:
    """RFC 2919 List-Id: one list per watchlist, so mail filters can sort by it. The label
    must be ASCII dot-atom text, so other letters become a short hash."""
    slug = _SLUG_UNSAFE.sub("-", watchlist.lower()).strip("-")[:40].strip("-")
    if not watchlist.isascii() or not slug:
        # Non-ASCII letters were dropped: a hash keeps "ОДКБ news" apart from "news".
        digest = hashlib.sha256(watchlist.encode()).hexdigest()[:10]
        slug = f"{slug}-{digest}" if slug else f"watchlist-{digest}"
    return f"<{slug}.feed-monitor>"


def message_list_id(message: Message) -> str:
    """The watchlist's List-Id; a digest of one watchlist keeps it (filters still sort it),
    a digest of several gets one per channel."""
    if isinstance(message, Digest):
        watchlists = {alert.watchlist for alert in message.alerts}
        if len(watchlists) != 1:
            return list_id(f"digest {message.channel}")
        return list_id(watchlists.pop())
    return list_id(message.watchlist)


def build_message(message: Message, config: EmailConfig) -> EmailMessage:
    """The whole mail; pure. ``Date`` is the alert's (or digest's) creation time, so a
    retried message is byte-for-byte the same mail, not a newer one."""
    if isinstance(message, Digest):
        subject = render_digest_subject(message)
        text, html = render_digest_text(message), render_digest_html(message)
    else:
        subject = render_subject(message)
        text, html = render_text(message), render_html(message)
    mail = EmailMessage(policy=_POLICY)
    mail["Subject"] = subject
    mail["From"] = config.from_
    mail["To"] = ", ".join(config.to)
    mail["Date"] = format_datetime(message.created_at)
    mail["Message-ID"] = message_id(message)
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: do not auto-reply to this
    mail["X-Auto-Response-Suppress"] = "All"  # the same request to Exchange/Outlook
    mail["List-Id"] = message_list_id(message)
    mail.set_content(text)
    mail.add_alternative(html, subtype="html")
    boundary = "=_" + hashlib.sha256(mail["Message-ID"].encode()).hexdigest()[:32]
    # Derived from the Message-ID rather than random, so a retry is the same bytes. An
    # ASCII body goes out as it is, so feed text that guessed the boundary keeps a random one.
    if boundary not in text and boundary not in html:
        mail.set_boundary(boundary)
    return mail


class EmailChannel:
    def __init__(self, config: EmailConfig) -> None:
        self.name = config.name
        self._config = config
        self._smtp = config.smtp
        self._where = f"{config.smtp.host}:{config.smtp.port}"
        # Envelope addresses are bare: a display name ("Аналитик <a@b.c>") belongs in the
        # headers, and in the envelope it would make smtplib demand SMTPUTF8.
        self._envelope_from = parseaddr(config.from_)[1]
        self._envelope_to = [parseaddr(address)[1] for address in config.to]
        self._tls_context: ssl.SSLContext | None = None
        if config.smtp.tls or config.smtp.starttls:
            self._tls_context = _tls_context(config)

    async def send(self, message: Message) -> DeliveryResult:
        if isinstance(message, Digest) and not message.alerts:
            raise DeliveryError(self.name, "empty digest: nothing to send", retryable=False)
        mail = build_message(message, self._config)
        return await asyncio.to_thread(self._deliver, mail)

    async def aclose(self) -> None:
        """Nothing to release: each delivery opens and closes its own SMTP session."""

    def _deliver(self, message: EmailMessage) -> DeliveryResult:
        try:
            client = self._connect()
            try:
                refused = self._transact(client, message)
                _quit_quietly(client)
            finally:
                client.close()
        except DeliveryError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            raise self._refused(exc.recipients) from exc
        except smtplib.SMTPResponseException as exc:
            raise self._reply_error(exc.smtp_code, exc.smtp_error) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(self.name, self._network_message(exc)) from exc
        detail = f"accepted by {self._where}"
        if refused:
            # Some recipients took it: retrying would send them a duplicate, so this is a
            # success whose detail names the refusals for the log.
            detail += "; refused " + _replies(refused)
        return DeliveryResult(detail=detail)

    def _connect(self) -> smtplib.SMTP:
        host, port, timeout = self._smtp.host, self._smtp.port or 0, self._smtp.timeout
        if self._smtp.tls:
            return smtplib.SMTP_SSL(host, port, timeout=timeout, context=self._tls_context)
        return smtplib.SMTP(host, port, timeout=timeout)

    def _transact(self, client: smtplib.SMTP, message: EmailMessage) -> Refusals:
        client.ehlo()
        if self._smtp.starttls:
            if not client.has_extn("starttls"):
                # Misconfiguration or a man in the middle stripping the offer; either can be
                # fixed on the server side, so it is retried, and never sent in the clear.
                text = f"{self._where} does not offer STARTTLS; refusing to send unencrypted"
                raise DeliveryError(self.name, text)
            client.starttls(context=self._tls_context)
            client.ehlo()
        if self._smtp.username is not None and self._smtp.password is not None:
            client.login(self._smtp.username, self._smtp.password.get_secret_value())
        return client.send_message(message, self._envelope_from, self._envelope_to)

    def _reply_error(self, code: int, text: bytes | str) -> DeliveryError:
        """RFC 5321: 4yz is a transient failure, 5yz a permanent one."""
        reply = _reply_text(None, code, text)
        return DeliveryError(self.name, f"{self._where} replied {reply}", retryable=code < 500)

    def _refused(self, recipients: Refusals) -> DeliveryError:
        retryable = any(code < 500 for code, _ in recipients.values())
        message = f"all recipients refused: {_replies(recipients)}"
        return DeliveryError(self.name, message, retryable=retryable)

    def _network_message(self, exc: BaseException) -> str:
        # smtplib turns a socket timeout while reading a reply into SMTPServerDisconnected
        # ("Connection unexpectedly closed: timed out"), keeping the timeout as context.
        if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
            return f"timed out after {format_duration(self._smtp.timeout)} talking to {self._where}"
        if isinstance(exc, ConnectionRefusedError):
            return f"connection refused by {self._where}"
        if isinstance(exc, ssl.SSLCertVerificationError):
            return f"TLS certificate of {self._where} not trusted: {exc.verify_message}"
        if isinstance(exc, ssl.SSLError):
            return f"TLS error with {self._where}: {exc.reason or exc}"
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return f"{self._where} closed the connection"
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return f"{self._where}: {exc}"
        return f"cannot deliver to {self._where}: {exc or type(exc).__name__}"


def _tls_context(config: EmailConfig) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=config.smtp.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ChannelConfigError(f"{config.name}: cannot load ca_file: {exc}") from exc
    if not config.smtp.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _quit_quietly(client: smtplib.SMTP) -> None:
    """The mail is accepted once DATA got its 250; a failing QUIT changes nothing."""
    with contextlib.suppress(smtplib.SMTPException, OSError):
        client.quit()


def _reply_text(address: str | None, code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    reply = f"{code} {' '.join(text.split())}".strip()
    return f"{address} ({reply})" if address else reply


def _replies(refusals: Refusals) -> str:
    return "; ".join(_reply_text(address, code, text) for address, (code, text) in refusals.items())
