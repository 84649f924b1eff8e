"""The full ASGI app of ``monitor run``'s HTTP server: the operations routes (``/healthz``,
``/readyz``, ``/metrics``, a plain ASGI app in ``health.py``), the JSON API under ``/api``
(``api/``) with its OpenAPI document at ``/api/openapi.json``, and one error shape for
all of them (``errors.py``), the dashboard's pages (``pages/``, assets under ``/static``),
and security headers on every response (``headers.py``).

There are no interactive API docs pages: Swagger UI and ReDoc load their code from a CDN.
It builds the app; uvicorn serves it (``server.py``) behind ``front.py``, which answers
the operations routes itself and loads this module only when another path is asked for.
"""

from __future__ import annotations

from fastapi import FastAPI

from monitor import __version__
from monitor.web.api import router as api_router
from monitor.web.context import WebContext
from monitor.web.errors import install_error_handling
from monitor.web.headers import SecurityHeaders
from monitor.web.health import Operations
from monitor.web.pages import install_pages

OPENAPI_URL = "/api/openapi.json"


def create_web_app(ctx: WebContext, operations: Operations | None = None) -> FastAPI:
    """The app; ``operations`` is the operations routes' app when the server already
    answers them with it (one readiness check and one scrape at a time, not two)."""
    web = FastAPI(
        title="feed-monitor",
        version=__version__,
        openapi_url=OPENAPI_URL,
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    web.state.ctx = ctx  # routes read it with the ``Context`` dependency
    install_error_handling(web)
    if operations is None:
        operations = Operations(ctx.service)
    for path in sorted(Operations.PATHS):
        # every method: the app answers 405 itself; not in the OpenAPI document
        web.add_route(path, operations, include_in_schema=False)
    web.include_router(api_router)
    install_pages(web)
    web.add_middleware(SecurityHeaders)
    return web
