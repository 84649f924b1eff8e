"""The request headers of a fetch: ours, the feed's configured ones, and the validators.

The configured headers (an API key, a bearer token) are checked before anything is sent,
and a problem is reported by the header's name, never its value: left to httpx and h11, a
value with a line break (a secret read from a file keeps its newline) fails with a message
that quotes it, and that message is stored and logged as the feed's error.

Validators go back exactly as the server sent them (RFC 9110 section 13.1): they are read
from the raw response bytes as latin-1, which maps every byte to one character and back,
and sent as those bytes. A validator that could not be sent is left out (the GET is then
unconditional) rather than failing the poll over an optimisation.

Input: the fetcher's User-Agent, the ``FetchRequest``, and whether the configured headers
may go with this hop (``redirects`` decides); a response's raw header fields.
Output: ``httpx.Headers``; the validators as text; ``FetchError`` for a configured header
that cannot be sent (not retryable: it fails the same way until the configuration changes).
Does not: decide where credentials may go, or send anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import httpx

from httpfields import header_problem
from monitor.errors import FetchError
from monitor.types import FetchRequest

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
ACCEPT_ENCODING = "gzip, deflate, br"  # each one is decoded by decode.BodyDecoder

# A non-empty field-value: visible characters or obs-text, whitespace only inside.
_FIELD_VALUE = re.compile(rb"[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*")
_VALIDATORS = (("If-None-Match", "etag"), ("If-Modified-Since", "last_modified"))


def check_configured_headers(feed_url: str, headers: Mapping[str, str]) -> None:
    """Raise ``FetchError`` naming the first configured header that cannot be sent."""
    for name, value in headers.items():
        problem = header_problem(name, value)
        if problem is not None:
            message = f"configured header {name[:64]!r} cannot be sent: {problem}"
            raise FetchError(feed_url, message, retryable=False)


def request_headers(user_agent: str, request: FetchRequest, *, configured: bool) -> httpx.Headers:
    """The headers of one hop; ``configured``: whether the feed's own headers go with it
    (they win over ours). ``request.headers`` must have passed ``check_configured_headers``."""
    headers = httpx.Headers(
        {"User-Agent": user_agent, "Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING}
    )
    if configured:
        headers.update(request.headers)
    raw = headers.raw
    for name, attribute in _VALIDATORS:
        value = _validator(getattr(request, attribute))
        if value is not None:
            raw = [(n, v) for n, v in raw if n.lower() != name.lower().encode()]
            raw.append((name.encode(), value))
    return httpx.Headers(raw)


def received_validator(headers: httpx.Headers, name: str) -> str | None:
    """A validator field of a response as text that maps back to its bytes (latin-1)."""
    wanted = name.lower().encode()
    values = [value for key, value in headers.raw if key.lower() == wanted]
    return b", ".join(values).decode("latin-1") if values else None


def _validator(value: str | None) -> bytes | None:
    """A stored validator as the bytes to send, or None when it cannot be sent. Text read
    by ``received_validator`` encodes back as latin-1; text stored from elsewhere as UTF-8."""
    if value is None:
        return None
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raw = value.encode("utf-8")
    return raw if _FIELD_VALUE.fullmatch(raw) else None
