"""Signing in to the dashboard and out of it.

Input: the login form (the password or the token, and the form's CSRF value from the
cookie the form page set). Output: a signed-in session cookie and a redirect to the page
the viewer wanted, or the form again saying why. Guessing is slowed: a client that fails
:data:`MAX_FAILURES` times within :data:`FAILURE_WINDOW` seconds is refused (429) until the
window passes. Passwords are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import OrderedDict, deque
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from monitor.web.context import get_context
from monitor.web.pages.base import form_of, pages_router, render, safe_next, viewer
from monitor.web.pages.session import end_session, start_session

log = logging.getLogger("monitor.web.pages")
router = pages_router()
MAX_FAILURES = 5
FAILURE_WINDOW = 60.0
MAX_CLIENTS = 1024  # clients whose failures are remembered; the oldest are forgotten


class FailedLogins:
    """Recent failed sign-ins per client address, bounded in clients and in entries.
    The login route is sync (FastAPI runs it in a thread pool): a lock keeps two sign-ins
    at once from corrupting the record."""

    def __init__(self) -> None:
        self._by_client: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def blocked(self, client: str, now: float) -> bool:
        with self._lock:
            recent = self._by_client.get(client)
            if recent is None:
                return False
            while recent and now - recent[0] > FAILURE_WINDOW:
                recent.popleft()
            return len(recent) >= MAX_FAILURES

    def failed(self, client: str, now: float) -> None:
        with self._lock:
            recent = self._by_client.pop(client, None) or deque(maxlen=MAX_FAILURES)
            recent.append(now)
            self._by_client[client] = recent
            while len(self._by_client) > MAX_CLIENTS:
                self._by_client.popitem(last=False)


def _failures(request: Request) -> FailedLogins:
    state = request.app.state
    if not hasattr(state, "failed_logins"):
        state.failed_logins = FailedLogins()
    failures: FailedLogins = state.failed_logins
    return failures


@router.get("/login", response_class=HTMLResponse)
def login_form(
    request: Request, next: Annotated[str | None, Query(max_length=2048)] = None
) -> Response:
    who = viewer(request)
    target = safe_next(next)
    if who.read_only or who.signed_in:
        return RedirectResponse(target, 303)
    if not who.csrf:  # a first visit: the form's CSRF value needs a session to bind to
        cookie = Response()
        request.state.viewer = start_session(
            request, cookie, get_context(request).http, signed_in=False
        )
        page = render(request, "login.html", {"next": target, "error": None})
        page.headers.append("set-cookie", cookie.headers["set-cookie"])
        return page
    return render(request, "login.html", {"next": target, "error": None})


@router.post("/login", response_class=HTMLResponse)
def login(request: Request) -> Response:
    http = get_context(request).http
    form = form_of(request)
    target = safe_next(str(form.get("next") or "/"))
    client = request.client.host if request.client else "?"
    failures = _failures(request)
    now = time.monotonic()
    if failures.blocked(client, now):
        return render(
            request,
            "login.html",
            {"next": target, "error": "Too many failed attempts: wait a minute."},
            status=429,
        )
    given = str(form.get("password") or "").encode()
    if any(hmac.compare_digest(given, secret.encode()) for secret in http.credentials):
        response = RedirectResponse(target, 303)
        start_session(request, response, http, signed_in=True)
        log.info("dashboard: signed in from %s", client)
        return response
    failures.failed(client, now)
    log.warning("dashboard: a failed sign-in from %s", client)
    return render(
        request,
        "login.html",
        {"next": target, "error": "That is not the password or the token."},
        status=401,
    )


@router.post("/logout")
def logout(request: Request) -> Response:
    response = RedirectResponse("/login", 303)
    end_session(response)
    return response
