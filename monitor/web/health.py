"""``GET /healthz``, ``/readyz`` and ``/metrics``: what a supervisor, a load balancer and
Prometheus ask of the service.

``/healthz`` says the process answers (Docker's HEALTHCHECK, a liveness probe).
``/readyz`` says it can do its work: the database answers, the scheduler ticks on time and
the service is not stopping; else 503 naming each reason (the details go to the log, once
per change). ``/metrics`` renders :class:`~monitor.metrics.Metrics` in Prometheus' text
format. None of them needs the API token (they say nothing about feeds or alerts), and
none polls, sends or writes.

Whatever touches the database runs in a worker thread, one call at a time per kind,
within a time limit: a database that hangs holds one thread, not one per probe, and a
probe answers in bounded time (a blocked thread cannot be cancelled, and the default
executor that the pipeline also uses has few).

:class:`Operations` is a plain ASGI app, without FastAPI, Starlette or pydantic: a service
that is only probed and scraped never loads the API and the dashboard (``front.py``), and
the full app mounts the same instance, so these routes answer the same through either.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from monitor.config_ops import HttpConfig
from monitor.errors import MonitorError, where
from monitor.schedule import Service

if TYPE_CHECKING:
    from starlette.types import Message, Receive, Scope, Send

log = logging.getLogger("monitor.web")

DATABASE_TIMEOUT = 2.0  # a SELECT 1 takes milliseconds; a probe gives up well before 10s
SCRAPE_TIMEOUT = 10.0  # Prometheus' default scrape timeout
NO_STORE = [(b"cache-control", b"no-store")]
JSON = "application/json"
T = TypeVar("T")


class OneAtATime(Generic[T]):
    """A blocking call run in a worker thread, at most once at a time: callers that come
    while it runs wait for the same outcome."""

    def __init__(self, call: Callable[[], T]) -> None:
        self._call = call
        self._running: asyncio.Future[T] | None = None

    async def __call__(self, timeout: float) -> T:
        """The call's result; TimeoutError after ``timeout`` seconds (the call goes on,
        and the next caller waits for it)."""
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(asyncio.to_thread(self._call))
            # Retrieved here, so that a failure no caller waited for is not reported as
            # "never retrieved".
            self._running.add_done_callback(lambda f: f.cancelled() or f.exception())
        return await asyncio.wait_for(asyncio.shield(self._running), timeout)


def http_settings(service: Service) -> HttpConfig:
    """The running ``http:`` settings (a server runs only when they are set, and a reload
    that would take them away is refused)."""
    return service.app.settings.http or HttpConfig()


class Readiness:
    """The reasons the service is not ready; none when it is."""

    def __init__(self, service: Service) -> None:
        self._service = service
        self._ping = OneAtATime(lambda: service.app.store.ping())
        self._last: list[str] = []

    async def reasons(self) -> list[str]:
        service = self._service
        # read at each probe: a reload may change max_lag
        max_lag = http_settings(service).max_lag
        reasons, details = [], []
        if service.stopping:
            reasons.append("service: stopping")
        lag = service.tick_lag()
        if lag > max_lag:
            reasons.append(f"scheduler: the poll tick is {lag:.0f}s late (max_lag {max_lag:g}s)")
        try:
            await self._ping(DATABASE_TIMEOUT)
        except TimeoutError:
            reasons.append(f"database: no answer within {DATABASE_TIMEOUT:g}s")
        except MonitorError as exc:
            reasons.append("database: unreachable")
            details.append(str(exc))
        self._log_change(reasons, details)
        return reasons

    def _log_change(self, reasons: list[str], details: list[str]) -> None:
        if reasons == self._last:
            return
        if reasons:
            log.warning("readiness: not ready: %s", "; ".join(reasons + details))
        else:
            log.info("readiness: ready again")
        self._last = reasons


class Operations:
    """``/healthz``, ``/readyz`` and ``/metrics`` as an ASGI app, answering every method
    on exactly these paths (GET; 405 for the others, as the full app's routes did). Its
    answers are the bytes and headers Starlette's ``JSONResponse`` and ``Response`` gave
    them; the security headers are added around it (``headers.py``)."""

    PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

    def __init__(self, service: Service) -> None:
        self._readiness = Readiness(service)
        self._scrape = OneAtATime(lambda: generate_latest(service.app.metrics.registry))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        method, path = scope["method"], scope["path"]  # path: one of PATHS, not any text
        try:
            await self._answer(method, path, tracked)
        except Exception as exc:
            # as the full app's error middleware does (errors.py): the type and place, a
            # bare 500
            log.error("http: internal error in %s %s: %s", method, path, where(exc))
            log.debug("http: internal error", exc_info=exc)
            if not started:
                await send_json(send, 500, {"error": "internal error"})

    async def _answer(self, method: str, path: str, send: Send) -> None:
        if method != "GET":
            allow = [(b"allow", b"GET")]
            await send_json(send, 405, {"error": "Method Not Allowed"}, allow)
        elif path == "/healthz":
            await send_json(send, 200, {"status": "ok"}, NO_STORE)
        elif path == "/readyz":
            reasons = await self._readiness.reasons()
            if reasons:
                await send_json(send, 503, {"status": "unready", "reasons": reasons}, NO_STORE)
            else:
                await send_json(send, 200, {"status": "ready", "reasons": []}, NO_STORE)
        else:
            await self._metrics(send)

    async def _metrics(self, send: Send) -> None:
        try:
            body = await self._scrape(SCRAPE_TIMEOUT)
        except TimeoutError:
            error = f"the database did not answer within {SCRAPE_TIMEOUT:g}s"
            await send_json(send, 503, {"error": error}, NO_STORE)
            return
        await send_body(send, 200, body, CONTENT_TYPE_PLAIN_0_0_4, NO_STORE)


async def send_json(
    send: Send, status: int, content: object, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """``content`` as Starlette's ``JSONResponse`` renders it (compact, UTF-8)."""
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    await send_body(send, status, body.encode(), JSON, headers)


async def send_body(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    raw = [
        *(headers or []),
        (b"content-length", str(len(body)).encode()),
        (b"content-type", content_type.encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
