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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from monitor.errors import MonitorError
from monitor.web.context import WebContext

log = logging.getLogger("monitor.web")

DATABASE_TIMEOUT = 2.0  # a SELECT 1 takes milliseconds; a probe gives up well before 10s
SCRAPE_TIMEOUT = 10.0  # Prometheus' default scrape timeout
NO_STORE = {"Cache-Control": "no-store"}
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


class Readiness:
    """The reasons the service is not ready; none when it is."""

    def __init__(self, ctx: WebContext) -> None:
        self._ctx = ctx
        self._ping = OneAtATime(lambda: ctx.store.ping())
        self._last: list[str] = []

    async def reasons(self) -> list[str]:
        service, max_lag = self._ctx.service, self._ctx.http.max_lag
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


def operations_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    readiness = Readiness(ctx)
    scrape = OneAtATime(lambda: generate_latest(ctx.metrics.registry))

    @router.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"}, headers=NO_STORE)

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        reasons = await readiness.reasons()
        if reasons:
            body = {"status": "unready", "reasons": reasons}
            return JSONResponse(body, status_code=503, headers=NO_STORE)
        return JSONResponse({"status": "ready", "reasons": []}, headers=NO_STORE)

    @router.get("/metrics")
    async def metrics() -> Response:
        try:
            body = await scrape(SCRAPE_TIMEOUT)
        except TimeoutError:
            error = f"the database did not answer within {SCRAPE_TIMEOUT:g}s"
            return JSONResponse({"error": error}, status_code=503, headers=NO_STORE)
        return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4, headers=NO_STORE)

    return router
