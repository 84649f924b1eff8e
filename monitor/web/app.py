"""The ASGI app of ``monitor run``'s HTTP server: the operations routes (``/healthz``,
``/readyz``, ``/metrics``, in ``health.py``), the JSON API under ``/api`` (``api/``) with
its OpenAPI document at ``/api/openapi.json``, and one error shape for all of them
(``errors.py``), the dashboard's pages (``pages/``, assets under ``/static``), and
security headers on every response (``headers.py``).

There are no interactive API docs pages: Swagger UI and ReDoc load their code from a CDN.
It builds the app; uvicorn serves it (``server.py``).
"""

from __future__ import annotations

from fastapi import FastAPI

from monitor import __version__
from monitor.web.api import router as api_router
from monitor.web.context import WebContext
from monitor.web.errors import install_error_handling
from monitor.web.headers import SecurityHeaders
from monitor.web.health import operations_router
from monitor.web.pages import install_pages

OPENAPI_URL = "/api/openapi.json"


def create_web_app(ctx: WebContext) -> FastAPI:
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
    web.include_router(operations_router(ctx))
    web.include_router(api_router)
    install_pages(web)
    web.add_middleware(SecurityHeaders)
    return web
