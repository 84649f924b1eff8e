"""A real HTTP server on 127.0.0.1 for tests: feeds, fixed responses and scripted handlers.

It runs a ``ThreadingHTTPServer`` (HTTP/1.1, keep-alive) in a background thread on port 0,
so any client, in-process or not, talks to it over real sockets. Every request is
recorded; the number of requests in flight at once is tracked for concurrency tests.

    with FeedServer() as server:
        server.set_feed("/feed.xml", b"<rss/>", etag='"v1"')
        server.set_handler("/slow", lambda request: Response(body=drip(b"x", 0.2)))
        server.url("/feed.xml")

The pytest fixture ``feed_server`` yields a started server and stops it afterwards.
Does not: speak HTTP/2, or do anything but loopback (bind ``127.0.0.2`` etc. for a
second "host").
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import socket
import ssl
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

import brotli
import pytest

frozen = dataclass(frozen=True, slots=True, kw_only=True)


@frozen
class Request:
    """What a handler sees. ``path`` excludes the query, ``target`` is the full request-target."""

    method: str
    path: str
    target: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""


@frozen
class RecordedRequest:
    """One request as received, with its arrival time (``time.monotonic()``)."""

    method: str
    path: str
    target: str
    headers: Mapping[str, str]
    time: float


@frozen
class Response:
    """A response. A ``bytes`` body gets a Content-Length; any other iterable of bytes is
    sent one flushed chunk per item (see ``drip``), with chunked encoding unless the
    headers declare a Content-Length (to play a server that lies about it)."""

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before the status line: a slow server

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Response:
        return cls(status=status, headers={"Location": location})


Handler = Callable[[Request], Response]


def drip(chunk: bytes = b"x", interval: float = 0.2, count: int | None = None) -> Iterator[bytes]:
    """A body that sends ``chunk`` every ``interval`` seconds, forever unless ``count``.

    It ends when the client goes away (the write fails) or the server stops.
    """
    sent = 0
    while count is None or sent < count:
        yield chunk
        sent += 1
        time.sleep(interval)


def sequence(*responses: Response) -> Handler:
    """A handler answering with each response in turn, then repeating the last one."""
    remaining = list(responses)
    lock = threading.Lock()

    def handler(request: Request) -> Response:
        with lock:
            return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return handler


def encode(body: bytes, coding: str) -> bytes:
    """``body`` compressed with a Content-Encoding: gzip, deflate (zlib-wrapped) or br."""
    if coding == "gzip":
        return gzip.compress(body)
    if coding == "deflate":
        return zlib.compress(body)
    if coding == "br":
        return brotli.compress(body, quality=5)  # the default 11 is slow
    raise ValueError(f"unknown coding {coding!r}")


def http_date(timestamp: float | None = None) -> str:
    """An IMF-fixdate (RFC 9110 section 5.6.7), for Last-Modified, Expires, Retry-After."""
    return email.utils.formatdate(timestamp, usegmt=True)


class FeedServer:
    """A threaded HTTP server on loopback. Use as a context manager or start()/stop()."""

    def __init__(self, host: str = "127.0.0.1", *, ssl_context: ssl.SSLContext | None = None):
        self._host = host
        self._ssl_context = ssl_context
        self._routes: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._in_flight = 0
        self._max_in_flight = 0
        self._connections: set[socket.socket] = set()
        self.connections_accepted = 0  # TCP connections opened to this server, ever
        self.errors: list[BaseException] = []  # exceptions raised by handlers (they got a 500)
        self.stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Self:
        server = _Server((self._host, 0), _RequestHandler)
        server.feed_server = self
        if self._ssl_context is not None:
            server.socket = self._ssl_context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        port = server.server_address[1]
        scheme = "https" if self._ssl_context else "http"
        self.base_url = f"{scheme}://{self._host}:{port}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut open connections, so dripping handlers end promptly."""
        if self._server is None:
            return
        self.stopping.set()
        self._server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._server = None

    def url(self, path: str) -> str:
        return self.base_url + path

    # Routes

    def set_handler(self, path: str, handler: Handler) -> None:
        with self._lock:
            self._routes[path] = handler

    def set_response(
        self, path: str, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> None:
        response = Response(status=status, body=body, headers=dict(headers or {}))
        self.set_handler(path, lambda request: response)

    def set_feed(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str = "application/rss+xml; charset=utf-8",
        etag: str | None = None,
        last_modified: str | None = None,
        headers: Mapping[str, str] | None = None,
        content_encoding: str | None = None,
    ) -> None:
        """Serve a feed with conditional GET (304 when the client's validators match).

        ``content_encoding`` ("gzip", "deflate", "br") compresses the body when the client's
        Accept-Encoding lists it.
        """
        validators = {"ETag": etag, "Last-Modified": last_modified}
        base = {"Content-Type": content_type}
        base.update({name: value for name, value in validators.items() if value is not None})
        base.update(headers or {})

        def handler(request: Request) -> Response:
            if _not_modified(request.headers, etag, last_modified):
                kept = {k: v for k, v in base.items() if k != "Content-Type"}
                return Response(status=304, headers=kept)
            accepted = request.headers.get("accept-encoding", "")
            if content_encoding and content_encoding in _codings(accepted):
                encoded = {**base, "Content-Encoding": content_encoding}
                return Response(body=encode(body, content_encoding), headers=encoded)
            return Response(body=body, headers=base)

        self.set_handler(path, handler)

    # What happened

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == path]

    @property
    def max_in_flight(self) -> int:
        """The most requests that were being handled at the same moment."""
        with self._lock:
            return self._max_in_flight

    def wait_for_requests(
        self, path: str, count: int, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """Poll until ``count`` requests for ``path`` arrived; raise if they do not in time."""
        deadline = time.monotonic() + timeout
        while len(found := self.requests_for(path)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} requests for {path}, expected {count}")
            time.sleep(0.01)
        return found

    # Called from handler threads

    def _route(self, path: str) -> Handler | None:
        with self._lock:
            return self._routes.get(path)

    def _begin(self, recorded: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(recorded)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def _end(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
                self.connections_accepted += 1
            else:
                self._connections.discard(connection)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    feed_server: FeedServer

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up (timeouts, size caps) are normal here: stay quiet about it."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    def finish_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        if isinstance(request, ssl.SSLSocket):
            try:
                request.do_handshake()
            except (OSError, ssl.SSLError):
                return  # the client refused our certificate: nothing to serve
        super().finish_request(request, client_address)  # type: ignore[arg-type]


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.feed_server._track(self.connection, True)

    def finish(self) -> None:
        self.server.feed_server._track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read ``FeedServer.requests`` instead of a log."""

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def _serve(self) -> None:
        owner = self.server.feed_server
        headers = {name.lower(): value for name, value in self.headers.items()}
        length = int(headers.get("content-length", "0") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        recorded = RecordedRequest(
            method=self.command, path=path, target=self.path, headers=headers, time=time.monotonic()
        )
        owner._begin(recorded)
        try:
            self._respond(
                owner,
                Request(
                    method=self.command, path=path, target=self.path, headers=headers, body=body
                ),
            )
        except OSError:
            self.close_connection = True  # the client went away mid-response
        finally:
            owner._end()

    def _respond(self, owner: FeedServer, request: Request) -> None:
        handler = owner._route(request.path)
        try:
            response = handler(request) if handler else Response(status=404, body=b"not found")
        except Exception as exc:
            owner.errors.append(exc)
            response = Response(status=500, body=b"handler failed")
        if response.delay and owner.stopping.wait(response.delay):
            self.close_connection = True
            return
        self.send_response(response.status)
        names = {name.lower() for name in response.headers}
        for name, value in response.headers.items():
            self.send_header(name, value)
        if isinstance(response.body, bytes | bytearray):
            if "content-length" not in names and response.status not in (204, 304):
                self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
            return
        # With a declared Content-Length (true or not) the chunks go out unframed.
        chunked = "content-length" not in names
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in response.body:
            if owner.stopping.is_set():
                self.close_connection = True
                return
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                self.wfile.flush()
        if chunked:
            self.wfile.write(b"0\r\n\r\n")


def _codings(accept_encoding: str) -> set[str]:
    return {part.split(";")[0].strip().lower() for part in accept_encoding.split(",")}


def _not_modified(headers: Mapping[str, str], etag: str | None, last_modified: str | None) -> bool:
    """RFC 9110 section 13.2.2: If-None-Match, when sent, decides; else If-Modified-Since."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if etag is None:
            return False
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag.removeprefix("W/") in tags
    if_modified_since = headers.get("if-modified-since")
    if if_modified_since is None or last_modified is None:
        return False
    try:
        since = email.utils.parsedate_to_datetime(if_modified_since)
        modified = email.utils.parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return False
    return modified <= since


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A started ``FeedServer`` on 127.0.0.1, stopped after the test."""
    with FeedServer() as server:
        yield server
