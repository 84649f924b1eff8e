"""Real receivers on 127.0.0.1 for delivery tests: an HTTP webhook receiver and an SMTP sink.

Both run in a background thread, bind port 0, record what they receive, can be scripted to
answer with failures (or to hang), and can be stopped and started again on the same port
to play a receiver that goes down and comes back. Load the fixtures with
``pytest_plugins = ["receivers"]`` (tests/ is on sys.path under pytest's default rootdir
handling) or import the classes directly.
"""

from __future__ import annotations

import asyncio
import collections
import email
import email.policy
import functools
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import jsonschema
import pytest
import referencing
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from referencing.jsonschema import DRAFT202012

import alerts
from alerts.base import Alert, AlertFeed, AlertItem, AlertMatch, Digest, Notice, NoticeKind
from alerts.render import HIGHLIGHT_END, HIGHLIGHT_START

frozen = dataclass(frozen=True, slots=True, kw_only=True)
HANG_LIMIT = 30.0  # a hung reply is released by stop(); this only bounds a forgotten one


@frozen
class Reply:
    """A scripted HTTP answer. ``hang`` holds the request open until the receiver stops."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    hang: bool = False


@frozen
class ReceivedRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    status: int  # what the receiver answered (0 for a hung request)

    def json(self) -> Any:
        return json.loads(self.body)

    def checked_json(self) -> Any:
        """The body, validated against the published schema its ``type`` names."""
        payload = self.json()
        check_payload(payload)
        return payload


def _wait(condition: threading.Condition, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with condition:
        while not ready():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"condition not met within {timeout}s")
            condition.wait(left)


class WebhookReceiver:
    """An HTTP/1.0 server (one connection per request, so a stopped receiver is really
    unreachable: no pooled keep-alive connection survives ``stop()``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._script: collections.deque[Reply] = collections.deque()
        self._requests: list[ReceivedRequest] = []
        self._changed = threading.Condition()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hook"

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._changed:
            return list(self._requests)

    def script(self, *replies: int | Reply) -> None:
        """Queue the next answers; once the queue is empty the receiver answers 200."""
        with self._changed:
            self._script.extend(Reply(status=r) if isinstance(r, int) else r for r in replies)

    def start(self) -> None:
        self._release.clear()
        server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        # A short poll interval: shutdown() waits for the serve loop to notice (default 0.5 s).
        self._thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        """Block until ``count`` requests arrived (any answer); return them."""
        _wait(self._changed, lambda: len(self._requests) >= count, timeout)
        return self.requests

    async def wait_for_async(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        """``wait_for`` for code whose deliveries run on the calling event loop."""
        return await asyncio.to_thread(self.wait_for, count, timeout)

    def _answer(self, request: ReceivedRequest) -> Reply:
        with self._changed:
            reply = self._script.popleft() if self._script else Reply()
            status = 0 if reply.hang else reply.status
            self._requests.append(_with_status(request, status))
            self._changed.notify_all()
        return reply


def _with_status(request: ReceivedRequest, status: int) -> ReceivedRequest:
    return ReceivedRequest(
        method=request.method,
        path=request.path,
        headers=request.headers,
        body=request.body,
        status=status,
    )


def _handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            request = ReceivedRequest(
                method=self.command, path=self.path, headers=headers, body=body, status=0
            )
            reply = receiver._answer(request)
            if reply.hang:
                receiver._release.wait(HANG_LIMIT)
                return
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:  # the client gave up (its timeout); nothing to answer
                pass

        do_PUT = do_POST
        do_GET = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read ``requests`` instead."""

    return Handler


# ---------------------------------------------------------------------------------------
# SMTP

HANG = "hang"  # a scripted SMTP reply that never comes (the DATA command is left waiting)
SmtpMode = Literal["plain", "starttls", "tls"]


@frozen
class Slow:
    """A scripted DATA answer that comes after ``seconds`` (a server that accepts late).
    A client that hangs up first gets nothing: aiosmtpd drops the mail with the session."""

    seconds: float
    reply: str = "250 OK"


@frozen
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage
    authenticated_as: str | None


class _PortZeroController(Controller):
    """aiosmtpd's Controller connects to ``self.port`` to check the server is up, which
    fails for port 0; read the bound port first."""

    def _trigger_server(self) -> None:
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def server_tls_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


class SmtpSink:
    """aiosmtpd on 127.0.0.1 in one of three modes: ``plain`` (no STARTTLS offered),
    ``starttls`` (offered and required before MAIL) or ``tls`` (implicit TLS)."""

    def __init__(
        self,
        mode: SmtpMode = "plain",
        *,
        ca: trustme.CA | None = None,
        login: tuple[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if mode != "plain" and ca is None:
            raise ValueError(f"mode {mode!r} needs a trustme CA")
        self.mode = mode
        self.host = host
        self.port = port
        self.login = login
        self._tls = server_tls_context(ca) if ca is not None and mode != "plain" else None
        self._script: collections.deque[str | Slow] = collections.deque()
        self._messages: list[ReceivedMail] = []
        self.attempts = 0  # DATA commands seen, whatever the answer
        self._changed = threading.Condition()
        self._controller: _PortZeroController | None = None

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._changed:
            return list(self._messages)

    def script(self, *replies: str | Slow) -> None:
        """Queue answers to DATA ("451 4.3.0 Try later", "550 5.1.1 No such user", HANG,
        Slow(5)); once empty, mail is accepted with 250."""
        with self._changed:
            self._script.extend(replies)

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self.mode == "starttls":
            kwargs.update(tls_context=self._tls, require_starttls=True)
        elif self.mode == "tls":
            kwargs.update(ssl_context=self._tls)
        if self.login is not None:
            # Only STARTTLS counts as TLS for aiosmtpd's auth_require_tls; an implicit-TLS
            # connection is encrypted from the first byte, so the check is moot there.
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_require_tls"] = self.mode == "starttls"
        controller = _PortZeroController(
            _SinkHandler(self),
            hostname=self.host,
            port=self.port,
            server_hostname="localhost",  # skip socket.getfqdn(): a DNS lookup
            **kwargs,
        )
        controller.start()
        self.port = controller.port
        self._controller = controller

    def stop(self) -> None:
        """Stop listening; a later ``start()`` listens on the same port again."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMail]:
        """Block until ``count`` messages were accepted; return them."""
        _wait(self._changed, lambda: len(self._messages) >= count, timeout)
        return self.messages

    async def wait_for_async(self, count: int, timeout: float = 5.0) -> list[ReceivedMail]:
        return await asyncio.to_thread(self.wait_for, count, timeout)

    def _next_reply(self) -> str | Slow:
        with self._changed:
            self.attempts += 1
            self._changed.notify_all()
            return self._script.popleft() if self._script else "250 OK"

    def _record(self, mail: ReceivedMail) -> None:
        with self._changed:
            self._messages.append(mail)
            self._changed.notify_all()

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and self.login == (
            data.login.decode(),
            data.password.decode(),
        )
        return AuthResult(success=ok, handled=False, auth_data=data)


class _SinkHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = self.sink._next_reply()
        if isinstance(reply, Slow):
            await asyncio.sleep(reply.seconds)
            reply = reply.reply
        if reply == HANG:
            await asyncio.Event().wait()  # cancelled by the controller's stop()
        if not reply.startswith("250"):
            return reply
        raw = bytes(envelope.content)
        auth = session.auth_data
        self.sink._record(
            ReceivedMail(
                mail_from=envelope.mail_from,
                rcpt_tos=tuple(envelope.rcpt_tos),
                raw=raw,
                message=email.message_from_bytes(raw, policy=email.policy.default),
                authenticated_as=auth.login.decode() if isinstance(auth, LoginPassword) else None,
            )
        )
        return reply


class RawSmtpServer:
    """A hand-written SMTP server on 127.0.0.1 for what aiosmtpd will not do: a banner
    dripped a byte at a time, a pause before every reply, a reply the test writes (one
    that echoes a credential, a broken AUTH challenge, terminal escapes).

    ``replies`` maps a command verb (``"EHLO"``, ``"AUTH"``, ``"."`` for the end of DATA)
    to its reply, or to a function of the command line; other verbs get a plain success.
    Runs its own event loop in a thread, like the other receivers.
    """

    DEFAULTS: Mapping[str, str] = {
        "EHLO": "250-raw.example\r\n250 AUTH PLAIN",
        "HELO": "250 raw.example",
        "MAIL": "250 OK",
        "RCPT": "250 OK",
        "DATA": "354 End data with <CR><LF>.<CR><LF>",
        ".": "250 OK queued",
        "QUIT": "221 Bye",
    }

    def __init__(
        self,
        replies: Mapping[str, str | Callable[[str], str]] | None = None,
        *,
        banner: str = "220 raw.example ESMTP",
        drip: float = 0.0,
        pause: float = 0.0,
    ) -> None:
        self.replies = {**self.DEFAULTS, **(replies or {})}
        self.banner = banner
        self.drip = drip  # seconds between two bytes of the banner
        self.pause = pause  # seconds before each reply
        self.port = 0
        self.accepted = 0  # mails whose end of DATA was answered with 2xx
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._thread.start()
        start = asyncio.start_server(self._session, "127.0.0.1", 0)
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result(5)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in self._sessions:
                task.cancel()
            await asyncio.gather(*self._sessions, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await self._converse(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._sessions.discard(task)
            writer.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        banner = f"{self.banner}\r\n".encode()
        for index in range(len(banner)):
            writer.write(banner[index : index + 1])
            await writer.drain()
            if self.drip:
                await asyncio.sleep(self.drip)
        in_data = False
        while raw := await reader.readline():  # b"" once the client hangs up
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if in_data and line != ".":
                continue
            in_data = False
            verb = "." if line == "." else line.split(" ", 1)[0].upper()
            reply = self.replies.get(verb, "250 OK")
            text = reply(line) if callable(reply) else reply
            await asyncio.sleep(self.pause)
            writer.write(f"{text}\r\n".encode())
            await writer.drain()
            in_data = verb == "DATA" and text.startswith("354")
            self.accepted += verb == "." and text.startswith("2")
            if verb == "QUIT":
                return


# ---------------------------------------------------------------------------------------
# What the receivers receive


def sample_alert(
    *,
    id: str = "a1b2c3d4",
    title: str = "Саммит ОДКБ в Астане",
    link: str | None = "https://example.org/news/1",
    watchlist: str = "CSTO",
    snippet: str = f"Лидеры стран {HIGHLIGHT_START}ОДКБ{HIGHLIGHT_END} встретились",
    **item: Any,
) -> Alert:
    """An alert as the pipeline builds it; the snippet carries the matcher's markers."""
    fields: dict[str, Any] = {
        "published": datetime(2026, 11, 5, 14, 3, tzinfo=UTC),
        "summary": "Лидеры стран ОДКБ встретились в Астане.",
        "guid": "urn:example:1",
        **item,
    }
    return Alert(
        id=id,
        watchlist=watchlist,
        item=AlertItem(title=title, link=link, **fields),
        feed=AlertFeed(name="Example News", url="https://example.org/feed.xml"),
        matches=(AlertMatch(term="ОДКБ", field="title", snippet=snippet),),
        created_at=datetime(2026, 11, 5, 14, 5, tzinfo=UTC),
    )


def sample_digest(
    *alerts: Alert, id: str = "d-2026-11-05T15", channel: str = "hook", **options: Any
) -> Digest:
    """A digest as the outbox builds it: alerts newest first. Without alerts: three alerts
    over two watchlists (CSTO twice, then Kazakhstan), newest first."""
    if not alerts:
        alerts = (
            sample_alert(id="a3", watchlist="Kazakhstan", title="Токаев подписал закон"),
            sample_alert(id="a2", title="Учения ОДКБ", link="/news/2"),
            sample_alert(id="a1"),
        )
        alerts = tuple(
            _created(alert, datetime(2026, 11, 5, 14, 50, tzinfo=UTC) - timedelta(minutes=n))
            for n, alert in enumerate(alerts)
        )
    created_at = options.pop("created_at", datetime(2026, 11, 5, 15, 0, tzinfo=UTC))
    return Digest(id=id, channel=channel, alerts=tuple(alerts), created_at=created_at)


def sample_notice(**fields: Any) -> Notice:
    """A feed-health notice as the health check raises it: Kazinform failing for a day."""
    values: dict[str, Any] = {
        "id": "5b0d6c1e-0000-4000-8000-000000000001",
        "kind": NoticeKind.FAILING,
        "feed": AlertFeed(name="Kazinform", url="https://inform.kz/en/rss"),
        "since": datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
        "detail": "no successful poll for 1d1h; last error: HTTP 503",
        "created_at": datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
    }
    return Notice(**(values | fields))


def _created(alert: Alert, at: datetime) -> Alert:
    return Alert(
        id=alert.id,
        watchlist=alert.watchlist,
        item=alert.item,
        feed=alert.feed,
        matches=alert.matches,
        created_at=at,
    )


SCHEMAS = Path(alerts.__file__).parent / "schemas"
SCHEMA_FILES = {
    "feed.item.matched": "alert-v1.json",
    "feed.digest": "digest-v1.json",
    "feed.health": "health-v1.json",
    "feed.story.updated": "story-updated-v1.json",
}


@functools.cache
def _schema_registry() -> referencing.Registry[Any]:
    """The published schemas under their ``$id``, so digest-v1's ``$ref`` to alert-v1
    resolves as it would for a receiver that fetched them."""
    resources = []
    for name in SCHEMA_FILES.values():
        contents = json.loads((SCHEMAS / name).read_text())
        jsonschema.Draft202012Validator.check_schema(contents)
        resources.append((contents["$id"], DRAFT202012.create_resource(contents)))
    return referencing.Registry().with_resources(resources)


def schema_validator(name: str) -> jsonschema.Draft202012Validator:
    """A validator for ``alerts/schemas/<name>`` with date-time and uri formats checked."""
    schema = json.loads((SCHEMAS / name).read_text())
    return jsonschema.Draft202012Validator(
        schema,
        registry=_schema_registry(),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def check_payload(payload: Any) -> None:
    """Raise jsonschema.ValidationError unless ``payload`` fits the schema of its type."""
    kind = payload.get("type") if isinstance(payload, dict) else None
    schema_validator(SCHEMA_FILES.get(str(kind), "alert-v1.json")).validate(payload)


# ---------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_ca_file(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("ca") / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


class _Server(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


ServerT = TypeVar("ServerT", bound=_Server)


def started_servers(build: Callable[..., ServerT]) -> Iterator[Callable[..., ServerT]]:
    """For a factory fixture: ``make(...)`` builds and starts a server; all stop after."""
    servers: list[ServerT] = []

    def make(*args: Any, **kwargs: Any) -> ServerT:
        server = build(*args, **kwargs)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_sink_factory(tls_ca: trustme.CA) -> Iterator[Callable[..., SmtpSink]]:
    """``smtp_sink_factory("starttls", login=("user", "pw"))``: a started sink, stopped
    at teardown."""

    def build(mode: SmtpMode = "plain", **kwargs: Any) -> SmtpSink:
        return SmtpSink(mode, ca=tls_ca, **kwargs)

    yield from started_servers(build)


@pytest.fixture
def raw_smtp() -> Iterator[Callable[..., RawSmtpServer]]:
    """``raw_smtp({"AUTH": "535 no"}, pause=0.3)``: a started RawSmtpServer."""
    yield from started_servers(RawSmtpServer)


@pytest.fixture
def smtp_sink(smtp_sink_factory: Callable[..., SmtpSink]) -> SmtpSink:
    return smtp_sink_factory("plain")
