"""Serve the web app with uvicorn inside the service's own event loop.

The socket is bound here, before uvicorn starts: a port in use is then one clear error
(:class:`ListenError`, which ``monitor run`` prints on one line and exits non-zero on),
and with port 0 the address really bound is known and logged
(``http: listening on 127.0.0.1:PORT``). uvicorn's own signal handlers are left out (the
service owns SIGTERM, SIGINT and SIGHUP and stops the server when it stops), and so are
its logging set-up and access log: its few warnings go through our loggers, and no request
line a client wrote reaches the log.

What it serves is ``front.py``'s app: the operations routes at once, the API and the
dashboard once first asked for. It does not decide what the routes answer (``app.py``,
``health.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import TYPE_CHECKING

import uvicorn

from monitor.config_ops import HttpConfig, split_listen
from monitor.errors import MonitorError
from monitor.schedule import Service
from monitor.web.front import Front
from monitor.web.health import Operations

if TYPE_CHECKING:
    from starlette.types import ASGIApp

log = logging.getLogger("monitor.web")

SHUTDOWN_GRACE = 5  # seconds requests under way may take to finish once stopping
MAX_CONNECTIONS = 100  # beyond this uvicorn answers 503: probes and scrapes need few


class ListenError(MonitorError):
    """The HTTP server cannot listen where ``http.listen`` says (in use, not an address
    of this host, a privileged port)."""


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn 0.54 replaces the SIGINT and SIGTERM handlers while it serves (and
        re-raises the signal when it stops); the service's own handlers must stay."""
        yield


class WebServer:
    """A running server: its bound address, and how to stop it."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], address: str) -> None:
        self._server = server
        self._task = task
        self.address = address  # host:port as bound ([::1]:port for IPv6)

    async def stop(self) -> None:
        """Stop accepting, let the requests under way finish (at most SHUTDOWN_GRACE)."""
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def serve_http(service: Service, http: HttpConfig | None) -> AsyncIterator[WebServer | None]:
    """Serve while the block runs; nothing when ``http`` is None (``http: null``)."""
    if http is None:
        yield None
        return
    operations = Operations(service)
    front = Front(operations, partial(_load_full_app, service, operations))
    server = await start_web_server(front, http.listen)
    try:
        yield server
    finally:
        await server.stop()


def _load_full_app(service: Service, operations: Operations) -> ASGIApp:
    """The API and the dashboard, around the same operations routes. Imported here, not
    at the top: loading them is what a service that is only probed never pays for."""
    from monitor.web.app import create_web_app
    from monitor.web.context import WebContext

    return create_web_app(WebContext(service), operations)


async def start_web_server(web: ASGIApp, listen: str) -> WebServer:
    """Bind ``listen`` (``host:port``) and serve ``web`` there, on the running loop."""
    sock = _bind(listen)
    config = uvicorn.Config(
        web,
        log_config=None,  # never reconfigure the process's logging
        log_level="warning",  # its start and stop lines would repeat ours
        access_log=False,
        lifespan="off",
        http="h11",
        ws="none",
        proxy_headers=False,  # no proxy is trusted: nothing here reads the client address
        server_header=False,
        limit_concurrency=MAX_CONNECTIONS,
        timeout_graceful_shutdown=SHUTDOWN_GRACE,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="http-server")
    task.add_done_callback(_report_crash)
    host, port = sock.getsockname()[:2]
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    log.info("http: listening on %s", address)
    return WebServer(server, task, address)


def _bind(listen: str) -> socket.socket:
    host, port = split_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        # create_server appends the address to strerror; the errno's own words suffice
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        raise ListenError(f"http: cannot listen on {listen}: {reason}") from None


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("http: the server stopped: %s", type(task.exception()).__name__)
