"""The email channel: one alert, digest or notice -> one multipart (text + HTML) mail over SMTP.

Input: an ``Alert``, a ``Digest`` or a ``Notice``; output: a ``DeliveryResult`` or a
``DeliveryError`` saying whether to retry. A digest or a notice is one mail with its own
Message-ID and the same headers. Its settings are alerts/config_email.py's.
The SMTP transaction is alerts/smtp.py's: one short connection per message (alerts are
rare, and a pooled session would need keep-alive handling for nothing), all of it within
``smtp.timeout``. One delivery at a time per channel: a send while the previous one is
still under way is refused at once, retryably, rather than opening a second session.
Does not retry, queue or record anything: the outbox does.

TLS is never silently dropped: with ``starttls: true`` a server that does not offer
STARTTLS is an error, not a reason to send the password and the mail in clear text.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr

from alerts.base import DeliveryResult, Digest, Message, Notice
from alerts.config_email import EmailConfig
from alerts.errors import ChannelConfigError, DeliveryError, bounded_message
from alerts.render import render_html, render_subject, render_text, spread_story
from alerts.render_digest import render_digest_html, render_digest_subject, render_digest_text
from alerts.render_notice import (
    NOTICE_LIST,
    render_notice_html,
    render_notice_subject,
    render_notice_text,
)
from alerts.render_story import render_story_html, render_story_text
from alerts.smtp import SmtpTarget, describe_refusals, local_hostname, send_mail

# 7bit: non-ASCII bodies go out as quoted-printable/base64 and headers as RFC 2047 words,
# so the message needs neither 8BITMIME nor SMTPUTF8 from the server.
_POLICY = SMTP_POLICY.clone(cte_type="7bit")
_ID_SAFE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SLUG_UNSAFE = re.compile(r"[^a-z0-9]+")


def message_id(message: Message) -> str:
    """Stable across retries, so a mailbox that sees the same alert (or digest) twice keeps
    one copy. Alerts, digests and notices get different prefixes: their ids are separate
    spaces."""
    local = message.id
    if not _ID_SAFE.fullmatch(local):
        local = hashlib.sha256(local.encode()).hexdigest()[:32]
    kind = {Digest: "digest", Notice: "notice"}.get(type(message), "alert")
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
    a digest of several gets one per channel; notices share one list (feed health)."""
    if isinstance(message, Notice):
        return list_id(NOTICE_LIST)
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
    elif isinstance(message, Notice):
        subject = render_notice_subject(message)
        text, html = render_notice_text(message), render_notice_html(message)
    elif (story := spread_story(message)) is not None:
        subject = render_subject(message)
        text, html = render_story_text(message, story), render_story_html(message, story)
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
        smtp = config.smtp
        # Envelope addresses are bare: a display name ("Аналитик <a@b.c>") belongs in the
        # headers, and in the envelope it would make the server demand SMTPUTF8.
        self._envelope_from = parseaddr(config.from_)[1]
        self._envelope_to = [parseaddr(address)[1] for address in config.to]
        self._target = SmtpTarget(
            channel=config.name,
            host=smtp.host,
            port=smtp.port or 0,
            implicit_tls=smtp.tls,
            starttls=smtp.starttls,
            tls_context=_tls_context(config) if smtp.tls or smtp.starttls else None,
            username=smtp.username,
            password=smtp.password.get_secret_value() if smtp.password else None,
            timeout=smtp.timeout,
            local_hostname=local_hostname(),
        )
        self._sending = False

    async def send(self, message: Message) -> DeliveryResult:
        if isinstance(message, Digest) and not message.alerts:
            raise DeliveryError(self.name, "empty digest: nothing to send", retryable=False)
        where = self._target.where
        if self._sending:
            raise DeliveryError(self.name, f"the previous delivery to {where} is still under way")
        mail = bytes(build_message(message, self._config))
        self._sending = True
        try:
            refused = await send_mail(self._target, self._envelope_from, self._envelope_to, mail)
        finally:
            self._sending = False
        detail = f"accepted by {where}"
        if refused:
            # Some recipients took it: retrying would send them a duplicate, so this is a
            # success whose detail names the refusals for the log.
            detail += "; refused " + describe_refusals(self._target, refused)
        return DeliveryResult(detail=bounded_message(detail))

    async def aclose(self) -> None:
        """Nothing to release: each delivery opens and closes its own SMTP session."""


def _tls_context(config: EmailConfig) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=config.smtp.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ChannelConfigError(f"{config.name}: cannot load ca_file: {exc}") from exc
    if not config.smtp.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
