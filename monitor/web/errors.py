"""The one error shape of every route, and the handlers that give it: validation errors
of every route (the JSON API's included), ``HTTPException`` and unexpected exceptions. The
API's own refusals (``api/base.py``) build the same shape with :func:`error_body`.

Every error is JSON ``{"error": "<message>"}``; a request that fails validation also names
the field, ``{"error": "<field>: <message>", "field": "<field>"}`` with status 400 (the
field dotted, list positions in brackets: ``tags[2]``). A route may raise
``HTTPException(status, "message")``, or pass ``detail=error_body("message", "field")``.
An unexpected exception is a 500 that says nothing more than "internal error": its type
and place go to the log, never its text (which may carry a secret) nor a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.errors import where

log = logging.getLogger("monitor.web")

# Where a validation error's location starts; the field is what follows.
_SOURCES = {"body", "query", "path", "header", "cookie"}


def error_body(message: str, field: str | None = None) -> dict[str, str]:
    return {"error": message} if field is None else {"error": message, "field": field}


def install_error_handling(web: FastAPI) -> None:
    web.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    web.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    web.add_middleware(_InternalErrors)


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """The first problem, naming its field (``limit``, ``feeds[0].url``, ``body``), in
    words that never quote the input."""
    errors = exc.errors()
    first: dict[str, Any] = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return JSONResponse(error_body("body: not valid JSON", "body"), 400)
    loc = list(first.get("loc", ()))
    if len(loc) > 1 and loc[0] in _SOURCES:
        loc = loc[1:]
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    field = field or "body"
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return JSONResponse(error_body(f"{field}: {message}", field), 400)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    detail = exc.detail
    body = detail if isinstance(detail, dict) else error_body(str(detail))
    return JSONResponse(body, exc.status_code, headers=exc.headers)


class _InternalErrors:
    """An exception no route handled: a bare 500, and one log line with its type and place.

    A middleware rather than an ``Exception`` handler: Starlette re-raises after calling
    such a handler, and uvicorn then logs the traceback with the exception's text."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            # The route's template, not the path: the path is the client's text.
            route = getattr(scope.get("route"), "path", "(no route)")
            log.error("http: internal error in %s %s: %s", scope["method"], route, where(exc))
            log.debug("http: internal error", exc_info=exc)
            if not started:
                await JSONResponse(error_body("internal error"), 500)(scope, receive, send)
