"""FETCH stage: one HTTP GET of a feed URL, done politely and defensively.

Input: a ``FetchRequest`` (URL, stored validators, extra headers).
Output: a ``FetchResult`` for 2xx, 304 (not modified) and 410 (gone), all values; every
other outcome is a ``FetchError`` with a one-line message and ``retryable``/``retry_after``.

What it does: conditional GET with the stored validators sent verbatim; redirects followed
by hand so each hop is checked (``urls``) and vetted (``guard``), and ``permanent_url`` is
set only when every hop was 301/308; a total deadline covering all hops and the body; a cap
on the decoded body, enforced while decoding (``decode``); per-host and global concurrency
limits; Retry-After (``httpfields``) and cache lifetime (``caching``) read from the response.

Retryable or not (``FetchError.retryable``): false makes the pipeline back the feed off to
its ``max_backoff`` at once, where it is still polled until a success resets it. Permanent
is what fails the same way until the configuration changes, or the server changes its mind
about this very request:
- a feed URL that is not an http(s) URL with a host, or a redirect to a URL that is not
  (ftp:, file:, mailto:...);
- a configured header that cannot be sent (not ASCII, or not a legal field value or name);
- an address the private-network guard refuses;
- an HTTP 4xx other than 408 and 429: the server says the request itself is wrong (404,
  403, 401, ...), and asking again soon gets the same answer.
Everything else is retryable, being what the server or the network may do differently next
time: 5xx; 408 (Request Timeout) and 429 (Too Many Requests), which are about timing;
timeouts; DNS, connection and TLS failures; a broken response, such as a redirect whose
Location is missing or does not parse; a body over the cap (feeds shrink as old entries
drop out) or one that cannot be decoded. A redirect loop and a chain longer than the limit
are retryable too: they are a server's misconfiguration of the moment (typically two
rewrite rules fighting), fixed on its side without any change on ours, as a 5xx is.

Does not: parse the body, retry, schedule, store anything, read configuration or the
environment (no proxies from env: ``trust_env=False``), or keep cookies between fetches.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

import httpx

import monitor
from httpfields import retry_after_seconds
from monitor.errors import AddressRefused, FetchError
from monitor.fetch.caching import parse_max_age
from monitor.fetch.decode import BodyDecoder
from monitor.fetch.failures import describe_error
from monitor.fetch.guard import AddressGuard, refuse_private
from monitor.fetch.pools import pooled_transport
from monitor.fetch.urls import check_url, origin_of
from monitor.types import FetchRequest, FetchResult, frozen, utcnow

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
ACCEPT_ENCODING = "gzip, deflate, br"  # each one is decoded by decode.BodyDecoder
REDIRECTS = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
# The client errors that are about timing, not about the request (RFC 9110 section 15.5.9,
# RFC 6585 section 4): every other 4xx is permanent (see the module docstring).
RETRYABLE_4XX = frozenset({408, 429})
# Sent to the feed's own origin only, never to another host it redirects to.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
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


class Fetcher:
    """Fetches feeds over one shared connection pool; one instance per process.

    ``guard`` replaces the address check (tests use it to vet redirect hops on loopback);
    by default hosts are only vetted when ``allow_private_networks`` is false. With a guard,
    connections go through ``guard.GuardedTransport``, which connects only to the
    addresses the guard vetted, for every hop; without one, through httpx's own transport.
    Either way hosts are spread over small pools (``monitor.fetch.pools``), so that connections
    are kept for reuse without making one pool slow. ``clock`` dates Retry-After and the
    cache lifetime.
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
        self._global_slots = asyncio.Semaphore(settings.max_concurrency)
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(settings.timeout),
            trust_env=False,
            cookies=_no_cookies(),
            transport=pooled_transport(settings.max_concurrency, guard),
        )

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
        await self._client.aclose()

    async def fetch(self, request: FetchRequest) -> FetchResult:
        """GET the feed; raises ``FetchError`` for everything that is not a result."""
        budget = _Budget(self._settings.deadline)
        try:
            async with budget.timeout:
                result = await self._follow(request, budget)
        except TimeoutError as exc:
            if budget.timeout.expired():
                message = f"timed out after {self._settings.deadline:g}s (total deadline)"
                raise FetchError(request.url, message) from exc
            raise FetchError(request.url, "timed out") from exc
        return replace(result, elapsed_ms=budget.elapsed_ms())

    async def _follow(self, request: FetchRequest, budget: _Budget) -> FetchResult:
        url = check_url(request.url, request.url)
        origin = origin_of(url)
        visited = {str(url)}
        redirected = False
        all_permanent = True
        for _ in range(self._settings.max_redirects + 1):
            headers = self._headers(request, same_origin=origin_of(url) == origin)
            async with self._slot(url.host, budget):
                step = await self._exchange(request, url, headers)
            if isinstance(step, FetchResult):
                moved = redirected and all_permanent
                return replace(step, permanent_url=step.final_url if moved else None)
            status, target = step
            redirected = True
            all_permanent = all_permanent and status in PERMANENT_REDIRECTS
            url = check_url(request.url, str(target))
            if str(url) in visited:
                raise FetchError(request.url, f"redirect loop: {url} was already visited")
            visited.add(str(url))
        limit = self._settings.max_redirects
        raise FetchError(request.url, f"too many redirects (limit {limit})")

    def _headers(self, request: FetchRequest, *, same_origin: bool) -> httpx.Headers:
        headers = httpx.Headers(
            {
                "User-Agent": self._settings.user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": ACCEPT_ENCODING,
            }
        )
        extra = {
            name: value
            for name, value in request.headers.items()
            if same_origin or name.lower() not in CREDENTIAL_HEADERS
        }
        try:
            headers.update(extra)
        except UnicodeEncodeError as exc:
            raise FetchError(request.url, "extra header is not ASCII", retryable=False) from exc
        # Validators go back exactly as the server sent them (RFC 9110 section 13.1).
        if request.etag is not None:
            headers["If-None-Match"] = request.etag
        if request.last_modified is not None:
            headers["If-Modified-Since"] = request.last_modified
        return headers

    @contextlib.asynccontextmanager
    async def _slot(self, host: str, budget: _Budget) -> AsyncIterator[None]:
        """Hold a per-host then a global slot. The host slot is taken first so that
        requests queued for a slow host never sit on global slots other hosts need."""
        host_slots = self._host_slots.get(host)
        if host_slots is None:
            host_slots = self._host_slots[host] = asyncio.Semaphore(self._settings.per_host)
        with budget.paused():
            await host_slots.acquire()
            try:
                await self._global_slots.acquire()
            except BaseException:
                host_slots.release()
                raise
        try:
            yield
        finally:
            self._global_slots.release()
            host_slots.release()

    async def _exchange(
        self, request: FetchRequest, url: httpx.URL, headers: httpx.Headers
    ) -> FetchResult | tuple[int, httpx.URL]:
        """One request/response: a result, a redirect (status, target), or FetchError."""
        try:
            response = await self._client.send(
                self._client.build_request("GET", url, headers=headers), stream=True
            )
            try:
                return await self._interpret(request, response)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            message, retryable = describe_error(exc, url.host, self._settings.timeout)
            raise FetchError(request.url, message, retryable=retryable) from exc
        except httpx.InvalidURL as exc:
            # Not an HTTPError. ``url`` was checked, so this comes from httpx preparing the
            # redirect it will not follow: a Location with a scheme but no host (mailto:).
            message = f"unusable redirect Location: {exc}"
            raise FetchError(request.url, message, retryable=False) from exc
        except AddressRefused as exc:  # raised on connecting, before the request is sent
            raise FetchError(request.url, exc.reason, retryable=exc.retryable) from exc

    async def _interpret(
        self, request: FetchRequest, response: httpx.Response
    ) -> FetchResult | tuple[int, httpx.URL]:
        status = response.status_code
        if status in REDIRECTS:
            return status, _redirect_target(request.url, response)
        if status == 304:
            await response.aread()  # no body: this returns the connection to the pool
            return self._result(request, response, b"", keep_validators=True)
        if status == 410:
            return self._result(request, response, b"")
        if 200 <= status < 300:
            body = await self._read_body(request.url, response)
            return self._result(request, response, body)
        raise FetchError(
            request.url,
            _status_line(status),
            status=status,
            retryable=not 400 <= status < 500 or status in RETRYABLE_4XX,
            retry_after=_retry_at(response.headers.get("retry-after"), self._clock()),
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
        etag = headers.get("etag")
        last_modified = headers.get("last-modified")
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

    async def _read_body(self, url: str, response: httpx.Response) -> bytes:
        """Stream and decode the body, refusing it the moment it passes the cap."""
        cap = self._settings.max_bytes
        too_large = f"response larger than {_format_size(cap)}"
        encoding = response.headers.get("content-encoding", "")
        length = response.headers.get("content-length", "")
        if not encoding and length.isdigit() and int(length) > cap:
            raise FetchError(url, too_large)
        decoder = BodyDecoder(url, encoding)
        body = bytearray()
        async for chunk in response.aiter_raw():
            for piece in decoder.feed(chunk):
                body += piece
                if len(body) > cap:
                    raise FetchError(url, too_large)
        return bytes(body)


class _Budget:
    """The time budget of one fetch: a deadline that stops while waiting for a slot.

    Waiting in the per-host queue is not the server's fault: counting it would time out
    feeds queued behind a slow host before they ever sent a request.
    """

    def __init__(self, seconds: float) -> None:
        self.timeout = asyncio.timeout(seconds)
        self._started = time.monotonic()
        self._queued = 0.0

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        when = self.timeout.when()
        loop = asyncio.get_running_loop()
        remaining = None if when is None else when - loop.time()
        began = time.monotonic()
        self.timeout.reschedule(None)
        try:
            yield
        finally:
            self._queued += time.monotonic() - began
            if remaining is not None:
                self.timeout.reschedule(loop.time() + remaining)

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self._started - self._queued) * 1000


def _redirect_target(feed_url: str, response: httpx.Response) -> httpx.URL:
    status = response.status_code
    location = response.headers.get("location")
    if not location:
        raise FetchError(feed_url, f"{_status_line(status)} without a Location header")
    try:
        return response.url.join(location)
    except httpx.InvalidURL as exc:
        raise FetchError(feed_url, f"invalid redirect Location {location!r}") from exc


def _retry_at(value: str | None, now: datetime) -> datetime | None:
    """When Retry-After lets us ask again, as an aware UTC datetime; None when it is absent,
    unreadable or past the end of the calendar (then the usual back-off applies)."""
    seconds = retry_after_seconds(value, now)
    if seconds is None:
        return None
    try:
        return now + timedelta(seconds=seconds)
    except OverflowError:
        return None


def _no_cookies() -> http.cookiejar.CookieJar:
    """A jar that accepts nothing: polls must not depend on, or leak, state between feeds."""
    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def _status_line(status: int) -> str:
    reason = httpx.codes.get_reason_phrase(status)
    return f"HTTP {status} {reason}" if reason else f"HTTP {status}"


def _format_size(size: int) -> str:
    if size % MiB == 0:
        return f"{size // MiB} MiB"
    if size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} bytes"
