"""What every page of the dashboard shares: the sign-in and CSRF checks, the templates,
the refusals as pages.

Each page is a :class:`PageRoute`. Before FastAPI reads anything it finds the
:class:`~monitor.web.pages.session.Viewer`: a locked dashboard sends a stranger to the login
form; a POST must come from one of our forms (its ``csrf`` field, and an ``Origin`` naming
this server when the browser sends one), from a viewer who may act (signed in; never in
read-only mode). A refusal, a missing feed or an unreachable database is a page with its
status (:class:`PageError`), never a traceback.

Templates (``monitor/web/templates``) autoescape everything: feed text reaches them as
plain strings and leaves escaped; only :func:`highlight` makes markup, from a snippet
whose text it escapes first.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import unicodedata
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from markupsafe import Markup
from starlette.datastructures import FormData

from alerts.render import highlight_html
from monitor import __version__
from monitor.errors import StorageError
from monitor.web.context import get_context
from monitor.web.pages.session import Viewer, csrf_ok, viewer_of

log = logging.getLogger("monitor.web.pages")
MAX_FORM = 64 * 1024  # the largest form a page sends: a query to test, a password
PUBLIC = {"/login"}  # pages a locked dashboard shows without a sign-in


class PageError(Exception):
    """A refusal shown as a page with its status and one sentence."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def pages_router() -> APIRouter:
    """A router whose routes are :class:`PageRoute`s, left out of the OpenAPI document."""
    return APIRouter(route_class=PageRoute, include_in_schema=False)


def viewer(request: Request) -> Viewer:
    """The viewer :class:`PageRoute` found for this request."""
    found: Viewer = request.state.viewer
    return found


def form_of(request: Request) -> FormData:
    """The POSTed form :class:`PageRoute` read (and checked) before the route ran."""
    form: FormData = request.state.form
    return form


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        public = self.path in PUBLIC

        async def guarded(request: Request) -> Response:
            ctx = get_context(request)
            request.state.viewer = who = viewer_of(request, ctx.http)
            try:
                if not host_allowed(request.headers.get("host", ""), ctx.http.hosts):
                    raise PageError(
                        421,
                        "This dashboard answers to its IP addresses and localhost only: "
                        "add the name it is reached by to http.hosts.",
                    )
                if not (who.may_view or public):
                    return RedirectResponse(f"/login?next={quote(_here(request))}", 303)
                if request.method == "POST":
                    request.state.form = await _checked_form(request, who, public)
                response = await handler(request)
            except PageError as exc:
                response = error_page(request, exc.status, exc.message)
            except StorageError as exc:
                # its text may quote SQL and the values bound to it: the log gets the type
                log.warning("page: database unavailable (%s)", type(exc.__cause__).__name__)
                response = error_page(request, 503, "The database is unavailable; try again.")
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return guarded


def host_allowed(host: str, names: Sequence[str]) -> bool:
    """Whether a ``Host`` header names this server: an IP address, localhost, or one of
    ``http.hosts``. Another name may be an attacker's, pointed at 127.0.0.1 so that a page
    of theirs can read ours (DNS rebinding)."""
    try:
        name = urlsplit(f"//{host}").hostname or ""
    except ValueError:
        return False
    name = name.rstrip(".")
    if name in ("localhost", *names):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


async def _checked_form(request: Request, who: Viewer, public: bool) -> FormData:
    if not public and not who.may_act:
        raise PageError(
            403,
            "This dashboard is read-only: set http.password or http.token in the "
            "configuration to sign in and act."
            if who.read_only
            else "Sign in to do this.",
        )
    length = request.headers.get("content-length", "")
    if not length.isdigit() or int(length) > MAX_FORM:
        raise PageError(413, "The form is too large (or its length is not given).")
    if not _same_origin(request):
        raise PageError(403, "The form came from another site: refused.")
    form = await request.form(max_files=0, max_fields=64, max_part_size=MAX_FORM)
    if not csrf_ok(who, form.get("csrf")):
        raise PageError(
            403, "The form has expired or did not come from this dashboard: reload the page."
        )
    return form


def _same_origin(request: Request) -> bool:
    """A browser names the page a form came from in ``Origin``; without one, trust the
    CSRF value alone (old browsers, command-line clients)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this server, never another site. Browsers
    drop tabs and newlines from a URL (``/<TAB>/evil.example`` is ``//evil.example``) and
    read ``\\`` as ``/``: a target with either, or any space or control character, is
    refused rather than trusted to the redirect's quoting."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or not target.isprintable()
        or any(ch.isspace() for ch in target)
    ):
        return "/"
    return target


# --- rendering -------------------------------------------------------------------------

_INVISIBLE = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def visible(text: object) -> str:
    """Feed text made safe to look at: control characters and bidi overrides (which
    can reorder what is shown around them) become spaces or go; the template escapes it."""
    cleaned = "".join(
        " " if unicodedata.category(ch) == "Cc" else ch for ch in str(text if text else "")
    )
    return _INVISIBLE.sub("", cleaned)


def highlight(snippet: str) -> Markup:
    """A match snippet with its matched text in ``<mark>``, the rest escaped."""
    return highlight_html(visible(snippet.replace("\n", " ")))


def href(url: str | None) -> str | None:
    """A feed's link if it is one a browser should follow (http or https), else None:
    a ``javascript:`` or ``data:`` link from a feed is never made clickable."""
    if not url:
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in ("http", "https") else None


def when(moment: datetime | None) -> str:
    """A time as UTC, to the minute."""
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago, roughly: "3 min ago", "in 2 h" for the future."""
    if moment is None:
        return "never"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            amount = f"{int(seconds // size)} {unit}"
            break
    else:
        amount = f"{int(seconds)} s"
    return f"in {amount}" if future else f"{amount} ago"


@lru_cache(maxsize=1)
def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("monitor.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(visible=visible, highlight=highlight, href=href, when=when, ago=ago)
    return env


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
) -> HTMLResponse:
    """A page: ``template`` with ``context`` and what every page shows (the viewer, the
    CSRF value for its forms, the read-only notice, the section in the menu)."""
    who = viewer(request)
    html = (
        templates()
        .get_template(template)
        .render(
            viewer=who,
            csrf=who.csrf,
            path=request.url.path,
            version=__version__,
            **(context or {}),
        )
    )
    return HTMLResponse(html, status_code=status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", {"status": status, "message": message}, status=status)
