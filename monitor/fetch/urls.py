"""Which URLs the fetch stage will request, and the origin each belongs to.

Input: the feed's URL or a redirect target, as text or parsed. Output: an ``httpx.URL``
with an http or https scheme and a host, or a ``FetchError`` that is not retryable (the
same URL fails the same way until the configuration or the feed's redirect changes); the
origin (scheme, host, port) that decides where credentials may be sent.
Does not: resolve hosts or vet their addresses (``guard`` does), or send anything.
"""

from __future__ import annotations

import httpx

from monitor.errors import FetchError

Origin = tuple[str, str, int]


def check_url(feed_url: str, url: str) -> httpx.URL:
    """Parse a URL of the feed or of a redirect hop; only http and https are fetched."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise FetchError(feed_url, f"invalid URL {url!r}: {exc}", retryable=False) from exc
    if not parsed.scheme:
        raise FetchError(feed_url, f"invalid URL {url!r}: no scheme", retryable=False)
    if parsed.scheme not in ("http", "https"):
        message = f"unsupported URL scheme {parsed.scheme!r}"
        raise FetchError(feed_url, message, retryable=False)
    if not parsed.host:
        raise FetchError(feed_url, f"invalid URL {url!r}: no host", retryable=False)
    return parsed


def origin_of(url: httpx.URL) -> Origin:
    """Scheme, host and port, the default port filled in (RFC 6454 section 4)."""
    return url.scheme, url.host, port_of(url)


def port_of(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)
