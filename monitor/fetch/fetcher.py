"""FETCH stage: one HTTP GET of a feed URL, done politely and defensively.

Input: a ``FetchRequest`` (URL in use, configured URL, stored validators, configured
headers).
Output: a ``FetchResult`` for 2xx, 304 (not modified) and 410 (gone), all values; every
other outcome is a ``FetchError`` with a one-line message and ``retryable``/``retry_after``.

What it does: conditional GET with the stored validators sent verbatim (``headers``);
redirects followed by hand so each hop is checked (``urls``) and vetted (``guard``), the
feed's configured headers sent only where they belong, and ``permanent_url`` set only for
a permanent move that stays there (``redirects``); a total deadline covering all hops and
the body; a cap on the decoded body, enforced while decoding (``decode``); per-host and
global concurrency limits (``limits``); Retry-After (``httpfields``, cut to
``max_retry_after``) and cache lifetime (``caching``) read from the response.

Errors are for the feed's record and the logs: every URL in them is redacted
(``httpfields.redact_url``) and cut short, and a configured header is named, never quoted.

Retryable or not (``FetchError.retryable``): false makes the pipeline back the feed off to
its ``max_backoff`` at once, where it is still polled until a success resets it. Permanent
is what fails the same way until the configuration changes, or the server changes its mind
about this very request:
- a feed URL that is not an http(s) URL with a host, or is too long, and a redirect to
  such a URL (ftp:, file:, mailto:...);
- a configured header that cannot be sent (a line break, not ASCII, not a legal field
  value or name);
- an address the private-network guard refuses;
- an HTTP 4xx other than 408 and 429: the server says the request itself is wrong (404,
  403, 401, ...), and asking again soon gets the same answer.
Everything else is retryable, being what the server or the network may do differently next
time: 5xx; 408 (Request Timeout) and 429 (Too Many Requests), which are about timing;
timeouts; DNS, connection and TLS failures; a broken response, such as a redirect whose
Location is missing or does not parse; a body over the cap (feeds shrink as old entries
drop out) or one that cannot be decoded (stacking more than a few codings among them). A
redirect loop and a chain longer than the limit are retryable too: they are a server's
misconfiguration of the moment (typically two rewrite rules fighting), fixed on its side
without any change on ours, as a 5xx is.

Does not: parse the body, retry, schedule, store anything, read configuration or the
environment (no proxies from env), or keep cookies (no client holds any: requests go to
httpx's transport directly).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

import httpx

import monitor
from httpfields import redact_url, retry_after_seconds
from monitor.errors import AddressRefused, FetchError
from monitor.fetch.caching import parse_max_age
from monitor.fetch.decode import BodyDecoder
from monitor.fetch.failures import describe_error
from monitor.fetch.guard import AddressGuard, refuse_private
from monitor.fetch.headers import check_configured_headers, received_validator, request_headers
from monitor.fetch.limits import Budget, Slots
from monitor.fetch.pools import pooled_transport
from monitor.fetch.redirects import RedirectChain
from monitor.fetch.resolver import THREADS, Resolver
from monitor.fetch.urls import check_url, origin_of, shown_url
from monitor.types import FetchRequest, FetchResult, frozen, utcnow

REDIRECTS = frozenset({301, 302, 303, 307, 308})
# The client errors that are about timing, not about the request (RFC 9110 section 15.5.9,
# RFC 6585 section 4): every other 4xx is permanent (see the module docstring).
RETRYABLE_4XX = frozenset({408, 429})
# The body is decoded here, so these no longer describe it.
DROPPED_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})
MiB = 1024 * 1024


@frozen
class FetchSettings:
    timeout: float = 10.0  # connect/read/write timeout of each network operation
    deadline: float = 30.0  # wall clock for one fetch: all hops and the body, not queueing
    max_bytes: int = 10 * MiB  # cap on the decoded body
    max_redirects: int = 5
    per_host: int = 2  # concurrent requests per host name (any port)
    max_concurrency: int = 50  # concurrent requests overall
    allow_private_networks: bool = True
    user_agent: str = monitor.USER_AGENT
    # A longer Retry-After is cut to this: a server must not stop a feed's polls for years.
    max_retry_after: float = 86400.0
    resolver_threads: int = THREADS  # look-ups of the guard in flight at once


class Fetcher:
    """Fetches feeds over one shared connection pool; one instance per process.

    ``guard`` replaces the address check (tests use it to vet redirect hops on loopback);
    by default hosts are only vetted when ``allow_private_networks`` is false. With a guard,
    connections go through ``guard.GuardedTransport``, which connects only to the
    addresses the guard vetted, for every hop, and resolves on threads of its own
    (``resolver``); without one, through httpx's own transport. Either way hosts are spread
    over small pools (``monitor.fetch.pools``), so that connections are kept for reuse
    without making one pool slow, over streams that are cheap to check (``streams``).
    ``clock`` dates Retry-After and the cache lifetime.
    """

    def __init__(
        self,
        settings: FetchSettings,
        *,
        guard: AddressGuard | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._settings = settings
        self._clock = clock
        guard = guard or (None if settings.allow_private_networks else refuse_private)
        self._slots = Slots(settings.per_host, settings.max_concurrency)
        self._resolver = None if guard is None else Resolver(settings.resolver_threads)
        # httpx's transport, without its client: redirects are followed here, hop by hop,
        # and the client's cookies, auth flows, proxies from the environment and event
        # hooks are what a poll must not have. Its cookie jar alone (to refuse every
        # cookie) was a tenth of a 304's fetch.
        self._transport = pooled_transport(settings.max_concurrency, guard, self._resolver)
        self._extensions = {"timeout": httpx.Timeout(settings.timeout).as_dict()}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        try:
            await self._transport.aclose()
        finally:
            if self._resolver is not None:
                self._resolver.close()

    async def fetch(self, request: FetchRequest) -> FetchResult:
        """GET the feed; raises ``FetchError`` for everything that is not a result."""
        feed_url = redact_url(request.url)
        budget = Budget(self._settings.deadline)
        try:
            async with budget.timeout:
                result = await self._follow(request, feed_url, budget)
        except TimeoutError as exc:
            if budget.timeout.expired():
                message = f"timed out after {self._settings.deadline:g}s (total deadline)"
                raise FetchError(feed_url, message) from exc
            raise FetchError(feed_url, "timed out") from exc
        return replace(result, elapsed_ms=budget.elapsed_ms())

    async def _follow(self, request: FetchRequest, feed_url: str, budget: Budget) -> FetchResult:
        check_configured_headers(feed_url, request.headers)
        url = check_url(feed_url, request.url)
        configured = request.configured_url
        moved = configured and configured != request.url
        home = origin_of(check_url(feed_url, configured) if moved else url)
        chain = RedirectChain(feed_url, url, home, self._settings.max_redirects)
        agent = self._settings.user_agent
        while True:  # ends: ``chain.follow`` raises past the redirect limit
            headers = request_headers(agent, request, configured=chain.credentials)
            async with self._slots.hold(chain.url.host, budget):
                step = await self._exchange(request, feed_url, chain.url, headers)
            if isinstance(step, FetchResult):
                permanent_url, warning = chain.outcome()
                return replace(step, permanent_url=permanent_url, warning=warning)
            status, target = step
            chain.follow(status, check_url(feed_url, str(target)))

    async def _exchange(
        self, request: FetchRequest, feed_url: str, url: httpx.URL, headers: httpx.Headers
    ) -> FetchResult | tuple[int, httpx.URL]:
        """One request/response: a result, a redirect (status, target), or FetchError."""
        try:
            response = await self._send(url, headers)
            try:
                return await self._interpret(request, feed_url, response)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            message, retryable = describe_error(exc, url.host, self._settings.timeout)
            raise FetchError(feed_url, message, retryable=retryable) from exc
        except AddressRefused as exc:  # raised on connecting, before the request is sent
            raise FetchError(feed_url, exc.reason, retryable=exc.retryable) from exc

    async def _send(self, url: httpx.URL, headers: httpx.Headers) -> httpx.Response:
        credentials = _basic_auth(url)
        if credentials is not None:
            headers = httpx.Headers(headers)
            headers["Authorization"] = credentials
        request = httpx.Request("GET", url, headers=headers, extensions=self._extensions)
        response = await self._transport.handle_async_request(request)
        response.request = request
        return response

    async def _interpret(
        self, request: FetchRequest, feed_url: str, response: httpx.Response
    ) -> FetchResult | tuple[int, httpx.URL]:
        status = response.status_code
        if status in REDIRECTS:
            return status, _redirect_target(feed_url, response)
        if status == 304:
            await response.aread()  # no body: this returns the connection to the pool
            return self._result(request, response, b"", keep_validators=True)
        if status == 410:
            return self._result(request, response, b"")
        if 200 <= status < 300:
            body = await self._read_body(feed_url, response)
            return self._result(request, response, body)
        raise FetchError(
            feed_url,
            _status_line(status),
            status=status,
            retryable=not 400 <= status < 500 or status in RETRYABLE_4XX,
            retry_after=self._retry_at(response.headers.get("retry-after")),
        )

    def _result(
        self,
        request: FetchRequest,
        response: httpx.Response,
        body: bytes,
        *,
        keep_validators: bool = False,
    ) -> FetchResult:
        headers = response.headers
        etag = received_validator(headers, "etag")
        last_modified = received_validator(headers, "last-modified")
        if keep_validators:  # a 304 may omit the validators it matched
            etag = etag or request.etag
            last_modified = last_modified or request.last_modified
        return FetchResult(
            url=request.url,
            final_url=str(response.url),
            status=response.status_code,
            body=body,
            headers={k: v for k, v in headers.items() if k not in DROPPED_HEADERS},
            etag=etag,
            last_modified=last_modified,
            max_age_seconds=parse_max_age(headers, self._clock()),
        )

    async def _read_body(self, feed_url: str, response: httpx.Response) -> bytes:
        """Stream and decode the body, refusing it the moment it passes the cap."""
        cap = self._settings.max_bytes
        too_large = f"response larger than {_format_size(cap)}"
        encoding = response.headers.get("content-encoding", "")
        length = response.headers.get("content-length", "")
        if not encoding and re.fullmatch(r"[0-9]+", length) and int(length) > cap:
            raise FetchError(feed_url, too_large)
        decoder = BodyDecoder(feed_url, encoding)
        body = bytearray()
        async for chunk in response.aiter_raw():
            for piece in decoder.feed(chunk):
                body += piece
                if len(body) > cap:
                    raise FetchError(feed_url, too_large)
        return bytes(body)

    def _retry_at(self, value: str | None) -> datetime | None:
        """When Retry-After lets us ask again, as an aware UTC datetime, at most
        ``max_retry_after`` ahead; None when it is absent or unreadable (then the usual
        back-off applies)."""
        now = self._clock()
        seconds = retry_after_seconds(value, now)
        if seconds is None:
            return None
        try:
            return now + timedelta(seconds=min(seconds, self._settings.max_retry_after))
        except OverflowError:  # past the end of the calendar
            return None


def _redirect_target(feed_url: str, response: httpx.Response) -> httpx.URL:
    status = response.status_code
    location = response.headers.get("location")
    if not location:
        raise FetchError(feed_url, f"{_status_line(status)} without a Location header")
    try:
        return response.url.join(location)
    except httpx.InvalidURL as exc:
        message = f"invalid redirect Location {shown_url(location)!r}"
        raise FetchError(feed_url, message) from exc


def _basic_auth(url: httpx.URL) -> str | None:
    """HTTP Basic credentials for a URL that carries them (``https://user:pw@host/``), as
    httpx's client sent them; a hop without them gets none (``redirects``)."""
    if not (url.username or url.password):
        return None
    pair = f"{url.username}:{url.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _status_line(status: int) -> str:
    reason = httpx.codes.get_reason_phrase(status)
    return f"HTTP {status} {reason}" if reason else f"HTTP {status}"


def _format_size(size: int) -> str:
    if size % MiB == 0:
        return f"{size // MiB} MiB"
    if size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} bytes"
