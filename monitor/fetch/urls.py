"""Which URLs the fetch stage will request, the origin each belongs to, and how one is shown.

Input: the feed's URL or a redirect target, as text or parsed. Output: an ``httpx.URL``
with an http or https scheme and a host, or a ``FetchError`` that is not retryable (the
same URL fails the same way until the configuration or the feed's redirect changes); the
origin (scheme, host, port) that decides where credentials may be sent; the URL as it may
appear in an error or a log line, without the credentials it may carry.
Does not: resolve hosts or vet their addresses (``guard`` does), or send anything.
"""

from __future__ import annotations

import httpx

from httpfields import redact_url
from monitor.errors import FetchError

Origin = tuple[str, str, int]

# Longer URLs are refused, a redirect target included: a URL is stored as the feed's (the
# column holds 2048 characters, as the configuration allows) and sent in every request line.
MAX_URL_LENGTH = 2048
# No DNS name is longer (RFC 1035 section 2.3.4); hosts are named in error messages.
MAX_HOST_LENGTH = 253
# A URL in an error message is cut to this: the message is stored and logged on every poll.
SHOWN_LENGTH = 200


def check_url(feed_url: str, url: str) -> httpx.URL:
    """Parse a URL of the feed or of a redirect hop; only http and https are fetched."""
    if len(url) > MAX_URL_LENGTH:
        message = f"URL longer than {MAX_URL_LENGTH} characters: {shown_url(url)!r}"
        raise FetchError(feed_url, message, retryable=False)
    try:
        parsed = httpx.URL(url)
        host = parsed.host  # decodes an IDNA host (xn--), which may fail only now
    except httpx.InvalidURL as exc:
        raise _invalid(feed_url, url, str(exc)) from exc
    except UnicodeError as exc:  # idna.IDNAError
        raise _invalid(feed_url, url, "host is not a valid domain name") from exc
    if not parsed.scheme:
        raise _invalid(feed_url, url, "no scheme")
    if parsed.scheme not in ("http", "https"):
        message = f"unsupported URL scheme {parsed.scheme[:20]!r}"
        raise FetchError(feed_url, message, retryable=False)
    if not host:
        raise _invalid(feed_url, url, "no host")
    if len(parsed.raw_host) > MAX_HOST_LENGTH:
        raise _invalid(feed_url, url, f"host longer than {MAX_HOST_LENGTH} characters")
    return parsed


def _invalid(feed_url: str, url: str, problem: str) -> FetchError:
    return FetchError(feed_url, f"invalid URL {shown_url(url)!r}: {problem}", retryable=False)


def origin_of(url: httpx.URL) -> Origin:
    """Scheme, host and port, the default port filled in (RFC 6454 section 4)."""
    return url.scheme, url.host, port_of(url)


def port_of(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def is_upgrade(origin: Origin, url: httpx.URL) -> bool:
    """Whether ``url`` is ``origin`` moved from http to https on the same host: on the same
    port, or from the default http port to the default https port."""
    scheme, host, port = origin
    if scheme != "http" or url.scheme != "https" or url.host != host:
        return False
    return port_of(url) == port or (port, port_of(url)) == (80, 443)


def shown_url(url: str | httpx.URL) -> str:
    """A URL as it appears in an error message: redacted, and of bounded length."""
    text = redact_url(str(url))
    return text[:SHOWN_LENGTH] + "..." if len(text) > SHOWN_LENGTH else text
