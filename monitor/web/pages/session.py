"""Who is looking at the dashboard, and whether a form they sent came from a page of ours.

Input: the request's session cookie and the running ``http:`` settings. Output: a
:class:`Viewer` (signed in or not, may act or not, the CSRF value its forms carry), and the
cookie to set after a sign-in or a sign-out. It does not render pages or check passwords
(``login.py`` does).

The cookie is signed with a key derived from the configured credentials (scrypt, then
itsdangerous with its timestamp): changing the password or the token signs everyone out, several
instances behind one address accept each other's cookies, and a restart keeps sessions.
It holds a random nonce and whether the holder signed in; the CSRF value of its forms is
an HMAC of that nonce, so a page of another site can neither read nor forge it. With no
credential configured there is nothing to sign in with: the dashboard is read-only and
sets no cookie at all.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from monitor.config_ops import HttpConfig

COOKIE = "monitor_session"
ANONYMOUS_AGE = 2 * 3600  # a login form's cookie: long enough to type a password


@dataclass(frozen=True, slots=True, kw_only=True)
class Viewer:
    """The person behind a request. ``locked``: credentials are configured (the pages need
    a sign-in); ``signed_in``: this cookie holds one; ``csrf``: the value forms carry
    (empty when there is no session)."""

    locked: bool
    signed_in: bool
    csrf: str

    @property
    def read_only(self) -> bool:
        """No credential is configured: look, never change."""
        return not self.locked

    @property
    def may_view(self) -> bool:
        return not self.locked or self.signed_in

    @property
    def may_act(self) -> bool:
        return self.locked and self.signed_in


def _serializer(http: HttpConfig) -> URLSafeTimedSerializer | None:
    if not http.credentials:
        return None
    return URLSafeTimedSerializer(_session_key(http.credentials), salt="monitor-session")


@lru_cache(maxsize=4)
def _session_key(credentials: tuple[str, ...]) -> bytes:
    """The signing key, by a slow, memory-hard derivation (scrypt, once per configuration):
    anyone who opens the login form gets a cookie signed with it, and a fast hash would let
    them test password guesses against that cookie offline, past the login's rate limit."""
    secret = "\0".join(("monitor-dashboard", *credentials)).encode()
    return hashlib.scrypt(secret, salt=b"monitor-session-key", n=2**14, r=8, p=1, dklen=32)


def _csrf(http: HttpConfig, nonce: str) -> str:
    key = _session_key(http.credentials)
    return hmac.new(key, f"csrf:{nonce}".encode(), hashlib.sha256).hexdigest()


def viewer_of(request: Request, http: HttpConfig) -> Viewer:
    """The viewer of a request: an unreadable, forged or expired cookie is no session."""
    serializer = _serializer(http)
    if serializer is None:
        return Viewer(locked=False, signed_in=False, csrf="")
    raw = request.cookies.get(COOKIE, "")
    data: object = None
    issued = 0.0
    if raw and len(raw) < 1024:
        try:
            data, stamp = serializer.loads(
                raw, max_age=max(http.session, ANONYMOUS_AGE), return_timestamp=True
            )
            issued = stamp.timestamp()
        except BadSignature:
            data = None
    if not (isinstance(data, dict) and isinstance(data.get("n"), str) and data["n"]):
        return Viewer(locked=True, signed_in=False, csrf="")
    nonce: str = data["n"]
    # a sign-in lasts http.session; a login form's cookie, ANONYMOUS_AGE
    signed_in = data.get("u") == 1 and time.time() - issued <= http.session
    return Viewer(locked=True, signed_in=signed_in, csrf=_csrf(http, nonce))


def csrf_ok(viewer: Viewer, sent: object) -> bool:
    """Whether a form's ``csrf`` field is this session's value (in constant time)."""
    if not viewer.csrf or not isinstance(sent, str):
        return False
    return hmac.compare_digest(sent.encode(), viewer.csrf.encode())


def start_session(
    request: Request, response: Response, http: HttpConfig, *, signed_in: bool
) -> Viewer:
    """Set a fresh session cookie (a new nonce: a sign-in never keeps the cookie a
    stranger may have planted) and return its viewer."""
    serializer = _serializer(http)
    if serializer is None:
        return Viewer(locked=False, signed_in=False, csrf="")
    nonce = secrets.token_urlsafe(16)
    payload = {"n": nonce, "u": 1} if signed_in else {"n": nonce}
    response.set_cookie(
        COOKIE,
        serializer.dumps(payload),
        max_age=int(http.session if signed_in else ANONYMOUS_AGE),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return Viewer(locked=True, signed_in=signed_in, csrf=_csrf(http, nonce))


def end_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
