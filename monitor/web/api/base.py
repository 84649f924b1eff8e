"""What every route of the JSON API shares: the bearer check, the error shape and the
running app.

Each route is an :class:`ApiRoute`, which checks the bearer token (in constant time)
against ``http.token`` of the running configuration before FastAPI reads the body or
validates anything, so an unauthenticated request costs no parsing and learns nothing
about its input. Its refusals (:class:`ApiError`) have the server's one error shape,
``{"error": "<field>: <message>", "field": "<field>"}`` (:func:`monitor.web.errors.error_body`),
with a 4xx status (503 while the API is off or the database is unreachable); FastAPI's
validation errors (400, naming the field) are shaped by the web app's handler
(:mod:`monitor.web.errors`). Messages never quote what the client sent beyond
naming the field; nothing here logs request or feed text.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict

from monitor.app import App
from monitor.errors import StorageError
from monitor.web.context import get_context
from monitor.web.errors import error_body

log = logging.getLogger("monitor.web.api")
MAX_BODY = 1024 * 1024  # the largest request body: a text to match, a feed to add
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="The `http.token` of the configuration: `Authorization: Bearer <token>`.",
)


class ErrorBody(BaseModel):
    """Every refusal of the API. ``field``: the parameter or body field at fault, dotted
    (``tags[2]``); ``position``: the 0-based offset of a query's syntax error."""

    error: str
    field: str | None = None
    position: int | None = None


class ApiError(Exception):
    """A refusal with its status, said to the client as an :class:`ErrorBody`."""

    def __init__(
        self,
        status: int,
        error: str,
        *,
        field: str | None = None,
        position: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.body = ErrorBody(error=error, field=field, position=position)
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        content: dict[str, object] = {**error_body(self.body.error, self.body.field)}
        if self.body.position is not None:
            content["position"] = self.body.position
        return JSONResponse(content, status_code=self.status, headers=self.headers)


class Bad(ApiError):
    """400: a parameter or a body field the API cannot take, named."""

    def __init__(self, field: str, error: str, *, position: int | None = None) -> None:
        super().__init__(400, f"{field}: {error}", field=field, position=position)


class StrictModel(BaseModel):
    """A request body: an unknown field is an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "Refused; the error names the field at fault."},
    401: {"model": ErrorBody, "description": "No bearer token, or not the configured one."},
    503: {
        "model": ErrorBody,
        "description": "The API is off (no `http.token`) or the database is unreachable.",
    },
}


def running_app(request: Request) -> App:
    """The app the service runs now (a reload replaces its parts, not the app)."""
    return get_context(request).app


def api_router() -> APIRouter:
    """A router whose routes are :class:`ApiRoute`s (each part of the API makes one)."""
    return APIRouter(route_class=ApiRoute)


class ApiRoute(APIRoute):
    """A route of the API: token first, then FastAPI's work, refusals as :class:`ErrorBody`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                await check_token(request)
                return await handler(request)
            except ApiError as exc:
                return exc.response()
            except StorageError as exc:
                # its text may quote SQL and the values bound to it: the log gets the type
                log.warning("api: database unavailable (%s)", type(exc.__cause__).__name__)
                return ApiError(503, "the database is unavailable; try again later").response()

        return guarded


async def check_token(request: Request) -> None:
    """503 while no token is configured (the API is off), 401 without the right one."""
    http = running_app(request).settings.http
    token = http.token if http is not None else None
    if token is None:
        raise ApiError(503, "the API is off: set http.token in the configuration to turn it on")
    credentials = await bearer(request)
    given = credentials.credentials.encode() if credentials else b""
    if not hmac.compare_digest(given, token.encode()):
        raise ApiError(
            401,
            "a valid bearer token is required (Authorization: Bearer <http.token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
