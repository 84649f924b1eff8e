"""One SMTP transaction under one wall-clock deadline: connect, banner, EHLO, STARTTLS,
AUTH, MAIL, RCPT, DATA, with aiosmtplib on the event loop.

Input: where and how to connect (``SmtpTarget``), the envelope and the mail's bytes;
output: the refusals of a mail accepted for at least one recipient, or a ``DeliveryError``
that says whether to retry. Replies decide: 4xx is temporary, 5xx permanent (RFC 5321
section 4.2.1). Does not build the mail, retry or record anything.

The deadline covers the whole transaction, so a server that drips its banner a byte at a
time or sits on its DATA reply is cut off at ``timeout`` however slowly each step goes.
Cancelling closes the connection: no thread goes on with the transaction after the caller
gave up and delivers, later, a mail already counted as failed. The one blocking call, the
host's address lookup, runs in this module's own small executor, never in the loop's
default one, which the service's polling and database writes depend on.

Messages never quote the password, and an exception nobody foresaw is named by its type
alone: its repr may hold what it was encoding (once, a password).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import socket
import ssl
from dataclasses import field

import aiosmtplib
from aiosmtplib import SMTPResponse

from alerts.base import frozen
from alerts.durations import format_duration
from alerts.errors import DeliveryError, caused_by, unexpected

Refusals = dict[str, SMTPResponse]  # {recipient: reply} for the recipients that refused

# Lookups are short and rare (one per delivery); two threads keep one slow resolver from
# delaying every channel, and bound how many can be stuck at once.
_RESOLVER = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="alerts-dns")


@frozen
class SmtpTarget:
    """How to reach one server; ``password`` stays out of the repr."""

    channel: str
    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    tls_context: ssl.SSLContext | None
    username: str | None
    password: str | None = field(default=None, repr=False)
    timeout: float
    local_hostname: str

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


@functools.cache
def local_hostname() -> str:
    """The EHLO name, looked up once per process (as smtplib does on every connection)."""
    return socket.getfqdn()


async def send_mail(
    target: SmtpTarget, sender: str, recipients: list[str], mail: bytes
) -> Refusals:
    """Deliver ``mail`` within ``target.timeout``; the refusals of a partial acceptance."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + target.timeout
    client: aiosmtplib.SMTP | None = None
    try:
        async with asyncio.timeout_at(deadline):
            sock = await _connect(target.host, target.port)
            client = aiosmtplib.SMTP(
                hostname=target.host,
                sock=sock,
                use_tls=target.implicit_tls,
                start_tls=False,
                tls_context=target.tls_context,
                timeout=target.timeout,
                local_hostname=target.local_hostname,
            )
            refused = await _transact(client, target, sender, recipients, mail)
        with contextlib.suppress(TimeoutError, aiosmtplib.SMTPException, OSError):
            async with asyncio.timeout_at(deadline):  # the mail is accepted; QUIT is manners
                await client.quit()
        return refused
    except DeliveryError:
        raise
    except Exception as exc:
        raise _failure(target, exc) from None
    finally:
        if client is not None:
            client.close()


async def _connect(host: str, port: int) -> socket.socket:
    """A connected non-blocking socket: the lookup in _RESOLVER, the connect on the loop."""
    loop = asyncio.get_running_loop()
    lookup = functools.partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    addresses = await loop.run_in_executor(_RESOLVER, lookup)
    failure: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _, address in addresses:
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise failure


async def _transact(
    client: aiosmtplib.SMTP, target: SmtpTarget, sender: str, recipients: list[str], mail: bytes
) -> Refusals:
    await client.connect()
    if target.starttls:
        await client.ehlo()
        if not client.supports_extension("starttls"):
            # Misconfiguration or a man in the middle stripping the offer; either can be
            # fixed on the server side, so it is retried, and never sent in the clear.
            text = f"{target.where} does not offer STARTTLS; refusing to send unencrypted"
            raise DeliveryError(target.channel, text)
        await client.starttls(tls_context=target.tls_context)
    if target.username is not None and target.password is not None:
        await client.login(target.username, target.password)
    # RFC 6531: an address in another script needs SMTPUTF8 from the server.
    international = not all(address.isascii() for address in (sender, *recipients))
    options = ["SMTPUTF8"] if international else []
    refused, _ = await client.sendmail(sender, recipients, mail, mail_options=options)
    return refused


def _failure(target: SmtpTarget, exc: Exception) -> DeliveryError:
    """What went wrong, in words that hold no secret."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refusals = {r.recipient: SMTPResponse(r.code, r.message) for r in exc.recipients}
        retryable = any(reply.code < 500 for reply in refusals.values())
        text = f"all recipients refused: {describe_refusals(target, refusals)}"
        return DeliveryError(target.channel, text, retryable=retryable)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        reply = _reply(target, exc.code, exc.message)
        # RFC 5321: 4yz is a transient failure, 5yz a permanent one.
        text = f"{target.where} replied {reply}"
        return DeliveryError(target.channel, text, retryable=exc.code < 500)
    return DeliveryError(target.channel, _network_message(target, exc))


def _network_message(target: SmtpTarget, exc: Exception) -> str:
    where = target.where
    if isinstance(exc, TimeoutError):  # the deadline, or aiosmtplib's own per-step timeout
        return f"timed out after {format_duration(target.timeout)} talking to {where}"
    if caused_by(exc, ConnectionRefusedError):
        return f"connection refused by {where}"
    untrusted = caused_by(exc, ssl.SSLCertVerificationError)
    if isinstance(untrusted, ssl.SSLCertVerificationError):
        return f"TLS certificate of {where} not trusted: {untrusted.verify_message}"
    tls = caused_by(exc, ssl.SSLError)
    if isinstance(tls, ssl.SSLError):
        return f"TLS error with {where}: {tls.reason or type(tls).__name__}"
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return f"{where} closed the connection"
    if isinstance(exc, aiosmtplib.SMTPException):  # aiosmtplib's own words, no data in them
        return f"{where}: {_hide(target, exc.message)}"
    if isinstance(exc, OSError):
        return f"cannot reach {where}: {exc.strerror or type(exc).__name__}"
    return f"{unexpected(exc)} talking to {where}"


def _hide(target: SmtpTarget, text: str) -> str:
    """A server may echo what it was sent; the password is not repeated after it."""
    return text.replace(target.password, "…") if target.password else text


def _reply(target: SmtpTarget, code: int, text: str, address: str | None = None) -> str:
    reply = f"{code} {' '.join(_hide(target, text).split())}".strip()
    return f"{address} ({reply})" if address else reply


def describe_refusals(target: SmtpTarget, refusals: Refusals) -> str:
    """``a@b.c (550 No such user); ...`` for the log and the delivery's error."""
    replies = (_reply(target, r.code, r.message, address) for address, r in refusals.items())
    return "; ".join(replies)
