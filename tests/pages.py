"""Signing in to the dashboard as a browser does, for the page tests that use httpx."""

from __future__ import annotations

import re

import httpx

CSRF = re.compile(r'name="csrf" value="([^"]*)"')

# The server closes a connection idle for 5 s (uvicorn's keep-alive timeout); a client reusing
# one at that moment reads "Server disconnected". Clients that wait between requests (for polls)
# drop idle connections well before.
LIMITS = httpx.Limits(keepalive_expiry=1.0)


def web_client(base_url: str, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    """A client of the service's HTTP server that never reuses a connection the server closes."""
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10, limits=LIMITS)


def csrf_in(html: str) -> str:
    """The CSRF value of the first form on a page."""
    found = CSRF.search(html)
    assert found, "no csrf field on the page"
    return found[1]


async def sign_in(client: httpx.AsyncClient, secret: str, next: str = "/") -> None:
    """The login form, filled in: ``client`` keeps the session cookie."""
    form = await client.get("/login", params={"next": next})
    assert form.status_code == 200, form.text
    done = await client.post(
        "/login", data={"csrf": csrf_in(form.text), "password": secret, "next": next}
    )
    assert done.status_code == 303 and done.headers["location"] == next, done.text
