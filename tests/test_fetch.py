"""The fetch stage against a real HTTP server on loopback (tests/feedserver.py)."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import socket
import ssl
import threading
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
import trustme
from feedserver import FeedServer, Request, Response, drip, http_date, sequence

import monitor
from monitor.errors import AddressRefused, FetchError
from monitor.fetch.caching import parse_max_age
from monitor.fetch.fetcher import Fetcher, FetchSettings
from monitor.fetch.guard import IPAddress, is_public_address
from monitor.fetch.headers import ACCEPT
from monitor.types import FetchRequest, FetchResult

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(FetchSettings()) as fetcher:
        yield fetcher


@pytest.fixture
def second_host() -> Iterator[FeedServer]:
    """Another host: 127.0.0.2 is loopback too on Linux, but a different host name."""
    with FeedServer("127.0.0.2") as server:
        yield server


async def fetch(fetcher: Fetcher, url: str, **request: object) -> FetchResult:
    return await fetcher.fetch(FetchRequest(url=url, **request))  # type: ignore[arg-type]


async def fetch_error(fetcher: Fetcher, url: str, **request: object) -> FetchError:
    with pytest.raises(FetchError) as caught:
        await fetch(fetcher, url, **request)
    return caught.value


# Conditional GET


async def test_conditional_get_sends_stored_validators_verbatim(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    etag, modified = 'W/"abc-123"', "Tue, 1 Jan 2030 0:00:00 GMT"  # odd but sent as stored
    feed_server.set_feed("/feed", RSS, etag=etag, last_modified=modified)
    result = await fetch(fetcher, feed_server.url("/feed"), etag=etag, last_modified=modified)
    sent = feed_server.requests_for("/feed")[0].headers
    assert sent["if-none-match"] == etag
    assert sent["if-modified-since"] == modified
    assert result.status == 304 and result.not_modified
    assert result.body == b""
    assert (result.etag, result.last_modified) == (etag, modified)


async def test_first_fetch_returns_body_and_validators(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed_server.set_feed("/feed", RSS, etag='"v1"', last_modified=http_date(0))
    result = await fetch(fetcher, feed_server.url("/feed"))
    assert "if-none-match" not in feed_server.requests_for("/feed")[0].headers
    assert (result.status, result.body) == (200, RSS)
    assert (result.etag, result.last_modified) == ('"v1"', http_date(0))
    assert result.final_url == feed_server.url("/feed")
    assert result.headers["content-type"] == "application/rss+xml; charset=utf-8"


async def test_304_keeps_new_validators_if_sent_else_the_requests(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed_server.set_response("/feed", 304, headers={"ETag": '"new"'})
    result = await fetch(fetcher, feed_server.url("/feed"), etag='"old"', last_modified="x")
    assert (result.etag, result.last_modified) == ('"new"', "x")


async def test_304s_to_one_host_share_a_connection(
    feed_server: FeedServer, second_host: FeedServer, fetcher: Fetcher
) -> None:
    """A 304 hands its connection back for the next poll of that host (no new handshake);
    and hosts polled together keep their connections apart."""
    for server in (feed_server, second_host):
        for n in range(3):
            server.set_feed(f"/feed{n}", RSS, etag='"v"')
    for _ in range(2):
        for server in (feed_server, second_host):
            for n in range(3):
                result = await fetch(fetcher, server.url(f"/feed{n}"), etag='"v"')
                assert result.status == 304
    assert (feed_server.connections_accepted, second_host.connections_accepted) == (1, 1)


# Statuses


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_in_seconds_becomes_a_utc_datetime(
    feed_server: FeedServer, fetcher: Fetcher, status: int
) -> None:
    feed_server.set_response("/feed", status, headers={"Retry-After": "120"})
    before = datetime.now(UTC)
    error = await fetch_error(fetcher, feed_server.url("/feed"))
    assert error.status == status and error.retryable
    assert error.retry_after is not None and error.retry_after.tzinfo is not None
    assert before + timedelta(seconds=119) <= error.retry_after
    assert error.retry_after <= datetime.now(UTC) + timedelta(seconds=121)


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_as_http_date(
    feed_server: FeedServer, fetcher: Fetcher, status: int
) -> None:
    later = time.time() + 7200
    feed_server.set_response("/feed", status, headers={"Retry-After": http_date(later)})
    error = await fetch_error(fetcher, feed_server.url("/feed"))
    assert error.retry_after == datetime.fromtimestamp(int(later), UTC)
    assert error.message.startswith(f"HTTP {status} ")


@pytest.mark.parametrize("value", ["soon", "-5", "", "1.5"])
async def test_unreadable_retry_after_is_ignored(
    feed_server: FeedServer, fetcher: Fetcher, value: str
) -> None:
    feed_server.set_response("/feed", 503, headers={"Retry-After": value})
    error = await fetch_error(fetcher, feed_server.url("/feed"))
    assert (error.status, error.retryable, error.retry_after) == (503, True, None)


@pytest.mark.parametrize(
    "value", ["999999999", "9" * 40, "9" * 5000, "Fri, 31 Dec 9999 23:59:59 GMT"]
)
async def test_absurd_retry_after_is_cut_to_the_maximum(
    feed_server: FeedServer, value: str
) -> None:
    # Years ahead, or past the end of the calendar: the feed is still polled within a day.
    now = datetime(2030, 1, 1, tzinfo=UTC)
    feed_server.set_response("/feed", 503, headers={"Retry-After": value})
    async with Fetcher(FetchSettings(max_retry_after=3600), clock=lambda: now) as fetcher:
        error = await fetch_error(fetcher, feed_server.url("/feed"))
    assert error.retry_after == now + timedelta(hours=1)


async def test_retry_after_comes_from_the_fetchers_clock(feed_server: FeedServer) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    feed_server.set_response("/feed", 429, headers={"Retry-After": " 30 "})
    async with Fetcher(FetchSettings(), clock=lambda: now) as fetcher:
        error = await fetch_error(fetcher, feed_server.url("/feed"))
    assert error.retry_after == now + timedelta(seconds=30)


async def test_410_is_a_gone_result_not_an_error(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set_response("/feed", 410, b"gone for good")
    result = await fetch(fetcher, feed_server.url("/feed"))
    assert result.status == 410 and result.gone and result.body == b""


@pytest.mark.parametrize(
    ("status", "retryable", "message"),
    [
        (404, False, "HTTP 404 Not Found"),
        (403, False, "HTTP 403 Forbidden"),
        (401, False, "HTTP 401 Unauthorized"),
        (400, False, "HTTP 400 Bad Request"),
        (408, True, "HTTP 408 Request Timeout"),
        (429, True, "HTTP 429 Too Many Requests"),
        (500, True, "HTTP 500 Internal Server Error"),
        (503, True, "HTTP 503 Service Unavailable"),
    ],
)
async def test_error_statuses_raise_with_status_and_retryability(
    feed_server: FeedServer, fetcher: Fetcher, status: int, retryable: bool, message: str
) -> None:
    # A 4xx other than 408 and 429 says the request itself is wrong: asking again soon
    # gets the same answer, so the feed backs off to its maximum at once.
    feed_server.set_response("/feed", status, b"<html>oops</html>")
    error = await fetch_error(fetcher, feed_server.url("/feed"))
    assert (error.status, error.retryable, error.retry_after) == (status, retryable, None)
    assert error.message == message


async def test_permanent_status_keeps_the_servers_retry_after(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    later = time.time() + 7200
    feed_server.set_response("/feed", 403, headers={"Retry-After": http_date(later)})
    error = await fetch_error(fetcher, feed_server.url("/feed"))
    assert not error.retryable
    assert error.retry_after == datetime.fromtimestamp(int(later), UTC)


# Redirects


def chain(server: FeedServer, statuses: Sequence[int], end: str = "/feed") -> str:
    """Make /r0 -> /r1 -> ... -> end with the given redirect statuses; return /r0's URL."""
    paths = [f"/r{i}" for i in range(len(statuses))] + [end]
    for i, status in enumerate(statuses):
        server.set_handler(paths[i], lambda r, to=paths[i + 1], s=status: Response.redirect(to, s))
    return server.url(paths[0])


@pytest.mark.parametrize(
    ("statuses", "permanent"),
    [((301, 308), True), ((301,), True), ((301, 302, 308), False), ((307,), False), ((), False)],
)
async def test_permanent_url_only_when_every_hop_is_permanent(
    feed_server: FeedServer, fetcher: Fetcher, statuses: tuple[int, ...], permanent: bool
) -> None:
    feed_server.set_feed("/feed", RSS)
    result = await fetch(fetcher, chain(feed_server, statuses))
    assert result.body == RSS
    assert result.final_url == feed_server.url("/feed")
    assert result.permanent_url == (feed_server.url("/feed") if permanent else None)


async def test_redirect_limit(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set_feed("/feed", RSS)
    assert (await fetch(fetcher, chain(feed_server, [302] * 5))).body == RSS
    error = await fetch_error(fetcher, chain(feed_server, [302] * 6))
    assert error.message == "too many redirects (limit 5)"
    assert error.retryable  # the server's misconfiguration of the moment, as a 5xx


async def test_redirect_loop_is_detected(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set_handler("/a", lambda r: Response.redirect("/b"))
    feed_server.set_handler("/b", lambda r: Response.redirect(feed_server.url("/a"), 301))
    error = await fetch_error(fetcher, feed_server.url("/a"))
    assert error.message == f"redirect loop: {feed_server.url('/a')} was already visited"
    assert error.retryable  # the server's misconfiguration of the moment, as a 5xx
    assert len(feed_server.requests) == 2


@pytest.mark.parametrize(
    ("location", "message", "retryable"),
    [
        ("ftp://example.com/feed", "unsupported URL scheme 'ftp'", False),
        ("file:///etc/passwd", "unsupported URL scheme 'file'", False),
        ("mailto:feeds@example.com", "unsupported URL scheme 'mailto'", False),
        # A Location that does not parse is a broken response, as a missing one is.
        ("http://[::1/feed", "invalid redirect Location 'http://[::1/feed'", True),
        (None, "HTTP 302 Found without a Location header", True),
    ],
)
async def test_bad_redirects_are_refused(
    feed_server: FeedServer,
    fetcher: Fetcher,
    location: str | None,
    message: str,
    retryable: bool,
) -> None:
    headers = {"Location": location} if location else {}
    feed_server.set_response("/feed", 302, headers=headers)
    error = await fetch_error(fetcher, feed_server.url("/feed"))
    assert error.message.startswith(message)
    assert error.retryable is retryable


async def test_configured_headers_are_not_sent_to_another_host(
    feed_server: FeedServer, second_host: FeedServer, fetcher: Fetcher
) -> None:
    # All of them: which names are credentials is the feed's business (X-Api-Key, ...).
    second_host.set_feed("/feed", RSS)
    feed_server.set_handler("/feed", lambda r: Response.redirect(second_host.url("/feed")))
    headers = {"Authorization": "Bearer s3cret", "X-Api-Key": "k"}
    await fetch(fetcher, feed_server.url("/feed"), headers=headers)
    assert feed_server.requests[0].headers["authorization"] == "Bearer s3cret"
    assert feed_server.requests[0].headers["x-api-key"] == "k"
    assert "authorization" not in second_host.requests[0].headers
    assert "x-api-key" not in second_host.requests[0].headers


# Time and size limits


async def test_dripping_server_hits_the_total_deadline(feed_server: FeedServer) -> None:
    feed_server.set_handler("/feed", lambda r: Response(body=drip(b"x", 0.2)))
    started = time.monotonic()
    async with Fetcher(FetchSettings(deadline=1.5, timeout=10)) as fetcher:
        error = await fetch_error(fetcher, feed_server.url("/feed"))
    assert error.message == "timed out after 1.5s (total deadline)"
    assert error.retryable
    assert time.monotonic() - started < 2.5


async def test_waiting_for_a_host_slot_does_not_count_against_the_deadline(
    feed_server: FeedServer,
) -> None:
    feed_server.set_handler("/feed", lambda r: Response(body=RSS, delay=0.4))
    async with Fetcher(FetchSettings(deadline=1.0, per_host=1)) as fetcher:
        urls = [feed_server.url("/feed")] * 3  # 1.2 s in all, each 0.4 s on the wire
        results = await asyncio.gather(*(fetch(fetcher, url) for url in urls))
    assert [r.body for r in results] == [RSS] * 3
    assert all(350 <= r.elapsed_ms < 900 for r in results)


async def test_each_network_operation_has_a_timeout(feed_server: FeedServer) -> None:
    feed_server.set_handler("/feed", lambda r: Response(body=RSS, delay=2.0))
    async with Fetcher(FetchSettings(timeout=0.3)) as fetcher:
        error = await fetch_error(fetcher, feed_server.url("/feed"))
    assert error.message == "timed out after 0.3s waiting for the server"


async def test_body_over_the_cap_is_refused(feed_server: FeedServer) -> None:
    feed_server.set_response("/declared", 200, b"x" * 2048)  # with Content-Length
    feed_server.set_handler("/chunked", lambda r: Response(body=drip(b"x" * 512, 0, 100)))
    async with Fetcher(FetchSettings(max_bytes=1024)) as fetcher:
        for path in ("/declared", "/chunked"):
            error = await fetch_error(fetcher, feed_server.url(path))
            assert error.message == "response larger than 1 KiB"
            assert error.retryable  # feeds shrink as old entries drop out


async def test_declared_length_over_the_cap_is_refused_before_reading(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    headers = {"Content-Length": str(20 * 1024 * 1024)}  # then it sends a byte a second
    feed_server.set_handler("/feed", lambda r: Response(body=drip(b"x", 1.0), headers=headers))
    started = time.monotonic()
    error = await fetch_error(fetcher, feed_server.url("/feed"))
    assert error.message == "response larger than 10 MiB"
    assert time.monotonic() - started < 0.5


def _bomb(size: int, layers: int) -> bytes:
    """``size`` zero bytes gzipped ``layers`` times, streamed to keep the test's memory low."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(1024 * 1024)
    data = b"".join(packer.compress(zeros) for _ in range(size // len(zeros))) + packer.flush()
    for _ in range(layers - 1):
        data = gzip.compress(data, 9)
    return data


@pytest.mark.parametrize(("layers", "coding"), [(1, "gzip"), (2, "gzip, gzip")])
async def test_gzip_bomb_is_cut_at_the_cap_without_inflating_it(
    feed_server: FeedServer, fetcher: Fetcher, layers: int, coding: str
) -> None:
    bomb = _bomb(200 * 1024 * 1024, layers)  # 200 MiB of zeros
    assert len(bomb) < 250_000 if layers == 1 else len(bomb) < 10_000
    headers = {"Content-Encoding": coding}
    feed_server.set_response("/feed", 200, bomb, headers=headers)
    tracemalloc.start()
    started = time.monotonic()
    try:
        error = await fetch_error(fetcher, feed_server.url("/feed"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.message == "response larger than 10 MiB"
    # Measured ~13 MB; httpx's own decoder peaks at ~150 MB (gzip) and ~460 MB (gzip, gzip).
    assert peak < 24 * 1024 * 1024
    assert time.monotonic() - started < 5


# Encodings


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
async def test_compressed_bodies_are_decoded(
    feed_server: FeedServer, fetcher: Fetcher, coding: str
) -> None:
    body = b"".join(b"<item>%d</item>" % i for i in range(100_000))  # > one 64 KiB piece
    feed_server.set_feed("/feed", body, content_encoding=coding)
    result = await fetch(fetcher, feed_server.url("/feed"))
    assert result.body == body
    assert "content-encoding" not in result.headers
    assert feed_server.requests[0].headers["accept-encoding"] == "gzip, deflate, br"


async def test_raw_deflate_is_decoded_too(feed_server: FeedServer, fetcher: Fetcher) -> None:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw = packer.compress(RSS) + packer.flush()
    feed_server.set_response("/feed", 200, raw, headers={"Content-Encoding": "deflate"})
    assert (await fetch(fetcher, feed_server.url("/feed"))).body == RSS


@pytest.mark.parametrize(
    ("body", "coding", "message"),
    [
        (b"not gzip at all", "gzip", "cannot decode gzip body: "),
        (RSS, "zstd", "unsupported Content-Encoding 'zstd'"),
    ],
)
async def test_undecodable_bodies_raise(
    feed_server: FeedServer, fetcher: Fetcher, body: bytes, coding: str, message: str
) -> None:
    feed_server.set_response("/feed", 200, body, headers={"Content-Encoding": coding})
    error = await fetch_error(fetcher, feed_server.url("/feed"))
    assert error.message.startswith(message)


# Failures before HTTP


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/feed.xml", "unsupported URL scheme 'ftp'"),
        ("file:///etc/passwd", "unsupported URL scheme 'file'"),
        ("data:text/xml,<rss/>", "unsupported URL scheme 'data'"),
        ("example.com/feed", "invalid URL 'example.com/feed': no scheme"),
        ("http:///feed", "invalid URL 'http:///feed': no host"),
        ("http://[::1/feed", "invalid URL 'http://[::1/feed': "),
    ],
)
async def test_unusable_urls_are_refused_and_not_retryable(
    fetcher: Fetcher, url: str, message: str
) -> None:
    error = await fetch_error(fetcher, url)
    assert error.message.startswith(message) and not error.retryable


@pytest.mark.parametrize("allow_private", [True, False])
@pytest.mark.parametrize("host", ["nonexistent.invalid", "a" * 64 + ".example"])
async def test_unresolvable_host(allow_private: bool, host: str) -> None:
    # .invalid never resolves (RFC 6761 section 6.4); a 64-character label is refused by
    # IDNA before any lookup. With the guard on, the guarded backend resolves by itself.
    async with Fetcher(FetchSettings(allow_private_networks=allow_private)) as fetcher:
        error = await fetch_error(fetcher, f"http://{host}/feed")
    assert error.message == f"cannot resolve host {host}" and error.retryable


async def test_connection_refused(fetcher: Fetcher) -> None:
    with socket.socket() as probe:  # a port that was just free and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = await fetch_error(fetcher, f"http://127.0.0.1:{port}/feed")
    assert error.message == "connection refused" and error.retryable


async def test_untrusted_certificate_is_a_tls_error(fetcher: Fetcher) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    with FeedServer(ssl_context=context) as server:
        server.set_feed("/feed", RSS)
        error = await fetch_error(fetcher, server.url("/feed"))
    assert error.message.startswith("TLS certificate verification failed: ")
    assert "Error(" not in error.message


async def test_tls_to_a_plain_http_server_is_a_tls_error(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    error = await fetch_error(fetcher, feed_server.url("/feed").replace("http:", "https:"))
    assert error.message == "TLS error: wrong version number"


# Concurrency


class InFlight:
    """A handler counting requests in flight across servers (a global view)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.now = self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.delay)
        with self.lock:
            self.now -= 1
        return Response(body=RSS)


async def test_at_most_per_host_requests_in_flight_to_one_host(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed_server.set_handler("/feed", lambda r: Response(body=RSS, delay=0.2))
    urls = [feed_server.url(f"/feed?n={i}") for i in range(6)]
    await asyncio.gather(*(fetch(fetcher, url) for url in urls))
    assert feed_server.max_in_flight == 2


async def test_global_limit_caps_requests_across_hosts(
    feed_server: FeedServer, second_host: FeedServer
) -> None:
    counter = InFlight(delay=0.2)
    for server in (feed_server, second_host):
        server.set_handler("/feed", counter)
    urls = [server.url(f"/feed?n={i}") for server in (feed_server, second_host) for i in range(3)]
    async with Fetcher(FetchSettings(max_concurrency=3)) as fetcher:
        await asyncio.gather(*(fetch(fetcher, url) for url in urls))
    assert counter.peak == 3


async def test_slow_host_does_not_delay_another_host(
    feed_server: FeedServer, second_host: FeedServer
) -> None:
    feed_server.set_handler("/feed", lambda r: Response(body=RSS, delay=1.0))
    second_host.set_feed("/feed", RSS)
    async with Fetcher(FetchSettings(max_concurrency=3)) as fetcher:
        slow = [asyncio.create_task(fetch(fetcher, feed_server.url("/feed"))) for _ in range(6)]
        await asyncio.to_thread(feed_server.wait_for_requests, "/feed", 2)
        started = time.monotonic()
        fast = await fetch(fetcher, second_host.url("/feed"))
        assert time.monotonic() - started < 0.5
        assert not any(task.done() for task in slow)
        for task in slow:
            task.cancel()
        await asyncio.gather(*slow, return_exceptions=True)
    assert fast.body == RSS


# Private-network guard


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_private_addresses_are_refused_when_not_allowed(
    feed_server: FeedServer, host: str
) -> None:
    feed_server.set_feed("/feed", RSS)
    url = feed_server.url("/feed").replace("127.0.0.1", host)
    async with Fetcher(FetchSettings(allow_private_networks=False)) as fetcher:
        error = await fetch_error(fetcher, url)
    assert error.message.startswith("refusing private address ")
    assert error.message.endswith(f" for host {host} (allow_private_networks is false)")
    assert not error.retryable
    assert isinstance(error.__cause__, AddressRefused)
    assert feed_server.requests == []


async def test_every_redirect_hop_is_vetted(
    feed_server: FeedServer, second_host: FeedServer
) -> None:
    allowed_port = int(feed_server.base_url.rsplit(":", 1)[1])

    def only_first_server(host: str, port: int, addresses: Sequence[IPAddress]) -> str | None:
        return None if port == allowed_port else f"port {port} is not allowed"

    second_host.set_feed("/feed", RSS)
    feed_server.set_handler("/feed", lambda r: Response.redirect(second_host.url("/feed"), 301))
    async with Fetcher(FetchSettings(), guard=only_first_server) as fetcher:
        error = await fetch_error(fetcher, feed_server.url("/feed"))
    assert error.message == f"port {second_host.base_url.rsplit(':', 1)[1]} is not allowed"
    assert len(feed_server.requests) == 1 and second_host.requests == []


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


# Headers and cache lifetime


async def test_headers_identify_us_and_ask_for_feeds(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed_server.set_feed("/feed", RSS)
    await fetch(fetcher, feed_server.url("/feed"), headers={"X-Token": "t", "Accept": "*/*"})
    sent = feed_server.requests[0].headers
    for part in ("feed-monitor", monitor.__version__, monitor.PROJECT_URL):
        assert part in sent["user-agent"]
    assert ACCEPT == (
        "application/rss+xml, application/atom+xml, application/feed+json, "
        "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
    )
    assert sent["accept-encoding"] == "gzip, deflate, br"
    assert sent["x-token"] == "t"
    assert sent["accept"] == "*/*"  # a feed's own headers win over the defaults


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-Name": "café"}, "configured header 'X-Name' cannot be sent: the value contains c"),
        ({"X-Name": "a\nb"}, "configured header 'X-Name' cannot be sent: the value contains a"),
        (
            {"Bad Name": "v"},
            "configured header 'Bad Name' cannot be sent: the name is not an HTTP field name",
        ),
    ],
)
async def test_configured_header_that_cannot_be_sent_is_not_retryable(
    feed_server: FeedServer, fetcher: Fetcher, headers: dict[str, str], message: str
) -> None:
    feed_server.set_feed("/feed", RSS)
    error = await fetch_error(fetcher, feed_server.url("/feed"), headers=headers)
    assert error.message.startswith(message) and not error.retryable
    assert feed_server.requests == []


async def test_default_accept_header(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set_feed("/feed", RSS)
    await fetch(fetcher, feed_server.url("/feed"))
    assert feed_server.requests[0].headers["accept"] == ACCEPT


async def test_cookies_are_not_kept_between_fetches(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed_server.set_feed("/feed", RSS, headers={"Set-Cookie": "session=1; Path=/"})
    await fetch(fetcher, feed_server.url("/feed"))
    await fetch(fetcher, feed_server.url("/feed"))
    assert "cookie" not in feed_server.requests[1].headers


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"cache-control": "public, max-age=600"}, 600),
        ({"cache-control": "max-age=600", "expires": "Thu, 01 Jan 2032 00:00:00 GMT"}, 600),
        ({"cache-control": "no-cache, max-age=600"}, None),
        ({"cache-control": "no-store"}, None),
        ({"cache-control": "s-maxage=60"}, None),
        (
            {"expires": "Thu, 01 Jan 2030 01:00:00 GMT", "date": "Thu, 01 Jan 2030 00:30:00 GMT"},
            1800,
        ),
        ({"expires": "Thu, 01 Jan 2030 02:00:00 GMT"}, 7200),  # no Date: from now
        ({"expires": "Mon, 01 Jan 2029 00:00:00 GMT"}, 0),  # in the past
        ({"expires": "0"}, 0),  # invalid means already expired (RFC 9111 section 5.3)
        ({}, None),
    ],
)
def test_parse_max_age(headers: dict[str, str], expected: float | None) -> None:
    assert parse_max_age(headers, datetime(2030, 1, 1, tzinfo=UTC)) == expected


async def test_result_carries_max_age_and_elapsed_time(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed_server.set_handler(
        "/max-age",
        sequence(Response(body=RSS, headers={"Cache-Control": "max-age=900"}, delay=0.2)),
    )
    feed_server.set_feed("/expires", RSS, headers={"Expires": http_date(time.time() + 3600)})
    result = await fetch(fetcher, feed_server.url("/max-age"))
    assert result.max_age_seconds == 900
    assert 200 <= result.elapsed_ms < 1000
    expires = await fetch(fetcher, feed_server.url("/expires"))
    assert expires.max_age_seconds is not None and 3590 <= expires.max_age_seconds <= 3600
