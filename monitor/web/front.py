"""The ASGI app uvicorn serves: ``/healthz``, ``/readyz`` and ``/metrics`` answered by the
plain :class:`~monitor.web.health.Operations`, every other request handed to the full app
(the JSON API and the dashboard), which is loaded on the first such request.

A service that is only probed and scraped never imports FastAPI, Starlette, the API's
pydantic models nor the dashboard's pages and templates (10-15 MB of its memory). The
first other request imports and builds the full app in a worker thread, so the event loop
keeps polling and answering probes meanwhile; requests that come while it loads wait for
the same build. If it cannot be loaded (a package missing from the install), the reason
goes to the log once, and each such request is a bare 500: the service and its probes
run on.

It does not decide what any route answers (``health.py``, ``app.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from monitor.errors import where
from monitor.web.headers import SecurityHeaders
from monitor.web.health import Operations, send_json

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("monitor.web")


class Front:
    """The operations routes, else the full app (loaded once, on first need)."""

    def __init__(self, operations: Operations, load: Callable[[], ASGIApp]) -> None:
        """``load`` imports and builds the full app; it runs once, in a worker thread."""
        self._operations = SecurityHeaders(operations)
        self._unavailable = SecurityHeaders(_internal_error)
        self._load = load
        self._loading: asyncio.Future[ASGIApp | None] | None = None
        self._full: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in Operations.PATHS:
            await self._operations(scope, receive, send)
            return
        full = self._full if self._full is not None else await self._full_app()
        await (self._unavailable if full is None else full)(scope, receive, send)

    async def _full_app(self) -> ASGIApp | None:
        """The full app, None if it cannot be loaded."""
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._build())
        # shielded: a request that goes away does not cancel the build the others wait for
        self._full = await asyncio.shield(self._loading)
        return self._full

    async def _build(self) -> ASGIApp | None:
        started = time.monotonic()
        try:
            full = await asyncio.to_thread(self._load)
        except Exception as exc:
            reason = where(exc)
            if isinstance(exc, ImportError) and exc.name:
                reason += f" (module {exc.name})"  # a module's name, never the error's text
            log.error("http: the API and the dashboard cannot be loaded: %s", reason)
            return None
        ms = (time.monotonic() - started) * 1000
        log.info("http: the API and the dashboard loaded in %.0f ms", ms)
        return full


async def _internal_error(scope: Scope, receive: Receive, send: Send) -> None:
    await send_json(send, 500, {"error": "internal error"})
