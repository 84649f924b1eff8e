"""The private-network guard (monitor/fetch/guard.py) against DNS rebinding, on loopback only.

No DNS can be run here, so the process's ``socket.getaddrinfo`` is replaced by a scripted
resolver for made-up names (every resolution in the fetch path goes through it: the guard's
resolver threads and asyncio's executor), and the loop's ``create_connection`` by a
recorder that lets only 127.0.0.0/8 through: a test that vets a public address must never
actually reach it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import trustme
from feedserver import FeedServer, Response

from monitor.errors import AddressRefused, FetchError, MonitorError
from monitor.fetch import Fetcher, FetchSettings
from monitor.fetch.guard import GuardedTransport, IPAddress, is_public_address, refuse_private
from monitor.fetch.resolver import Resolver
from monitor.types import FetchRequest

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
PUBLIC = "93.184.216.34"


class Network:
    """A scripted resolver and a connection recorder.

    ``answers[name]`` lists the addresses each successive resolution of ``name`` returns;
    the last answer repeats; ``delays[name]`` makes each answer take that many seconds
    (cut short when the test ends). Other names resolve as usual. ``peak`` is the most
    scripted look-ups that were running at once.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.delays: dict[str, float] = {}
        self.resolved: list[str] = []  # names, once per resolution
        self.connected: list[tuple[str, int]] = []  # (address, port), once per attempt
        self.peak = 0
        self.released = threading.Event()
        self._running = 0
        self._lock = threading.Lock()
        self._getaddrinfo = socket.getaddrinfo
        self._create_connection = loop.create_connection

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in self.answers:
            return self._getaddrinfo(host, port, *args, **kwargs)
        with self._lock:
            self.resolved.append(name)
            self._running += 1
            self.peak = max(self.peak, self._running)
            script = self.answers[name]
            answer = script.pop(0) if len(script) > 1 else script[0]
        try:
            self.released.wait(self.delays.get(name, 0.0))
        finally:
            with self._lock:
                self._running -= 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, int(port or 0))) for a in answer]

    async def create_connection(self, factory: Any, host: Any, port: Any, **kwargs: Any) -> Any:
        self.connected.append((str(host), int(port)))
        if ipaddress.ip_address(host) not in ipaddress.ip_network("127.0.0.0/8"):
            raise ConnectionRefusedError(111, "Connection refused (tests stay on loopback)")
        return await self._create_connection(factory, host, port, **kwargs)


@pytest.fixture
async def network(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Network]:
    loop = asyncio.get_running_loop()
    fake = Network(loop)
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    monkeypatch.setattr(loop, "create_connection", fake.create_connection)
    yield fake
    fake.released.set()


def port_of(server: FeedServer) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


async def test_rebinding_to_loopback_after_the_check_is_not_followed(
    feed_server: FeedServer, network: Network
) -> None:
    # The first answer is public and passes the guard; any later one points at loopback.
    # Connecting must use the vetted answer, never a second lookup.
    feed_server.set_feed("/feed", RSS)
    port = port_of(feed_server)
    network.answers["rebind.test"] = [[PUBLIC], ["127.0.0.1"]]
    async with Fetcher(FetchSettings(allow_private_networks=False)) as fetcher:
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(FetchRequest(url=f"http://rebind.test:{port}/feed"))
    assert feed_server.requests == []
    assert network.connected == [(PUBLIC, port)]
    assert caught.value.message == "connection refused"
    assert network.resolved == ["rebind.test"]


async def test_one_private_address_among_public_ones_is_refused(
    feed_server: FeedServer, network: Network
) -> None:
    network.answers["mixed.test"] = [[PUBLIC, "127.0.0.1"]]
    url = f"http://mixed.test:{port_of(feed_server)}/feed"
    async with Fetcher(FetchSettings(allow_private_networks=False)) as fetcher:
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(FetchRequest(url=url))
    expected = "refusing private address 127.0.0.1 for host mixed.test "
    assert caught.value.message == expected + "(allow_private_networks is false)"
    assert not caught.value.retryable
    assert network.connected == [] and feed_server.requests == []


def test_a_refused_address_is_a_permanent_monitor_error() -> None:
    # The pipeline reads ``retryable`` off the error root: a refusal backs off at once.
    refused = AddressRefused("refusing private address 10.0.0.1 for host intranet")
    assert isinstance(refused, MonitorError) and not refused.retryable
    assert refused.reason == str(refused) == "refusing private address 10.0.0.1 for host intranet"


class Recorder:
    """A guard that allows everything and remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, list[str]]] = []

    def __call__(self, host: str, port: int, addresses: Sequence[IPAddress]) -> str | None:
        self.calls.append((host, port, [str(a) for a in addresses]))
        return None


async def test_guarded_connection_goes_to_the_vetted_address_under_the_host_name(
    feed_server: FeedServer, network: Network
) -> None:
    feed_server.set_feed("/feed", RSS)
    port = port_of(feed_server)
    network.answers["feeds.example"] = [["127.0.0.1"]]
    guard = Recorder()
    async with Fetcher(FetchSettings(), guard=guard) as fetcher:
        result = await fetcher.fetch(FetchRequest(url=f"http://feeds.example:{port}/feed"))
    assert result.body == RSS
    assert guard.calls == [("feeds.example", port, ["127.0.0.1"])]
    assert network.resolved == ["feeds.example"]  # once: vetting and connecting share it
    assert network.connected == [("127.0.0.1", port)]
    assert feed_server.requests[0].headers["host"] == f"feeds.example:{port}"


async def test_tls_checks_the_certificate_and_sends_sni_for_the_host_name(
    network: Network,
) -> None:
    # The certificate names feeds.example only: had TLS used the connected address,
    # verification would fail.
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("feeds.example").configure_cert(server_context)
    sni: list[str | None] = []
    server_context.sni_callback = lambda sock, name, context: sni.append(name)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    limits = httpx.Limits(max_connections=2)
    resolver = Resolver()
    transport = GuardedTransport(
        Recorder(), resolver=resolver, limits=limits, ssl_context=client_context
    )
    with FeedServer(ssl_context=server_context) as server:
        server.set_feed("/feed", RSS)
        port = port_of(server)
        network.answers["feeds.example"] = [["127.0.0.1"]]
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get(f"https://feeds.example:{port}/feed")
    resolver.close()
    assert response.status_code == 200 and response.content == RSS
    assert sni == ["feeds.example"]
    assert network.connected == [("127.0.0.1", port)]


async def test_the_next_vetted_address_is_tried_when_one_fails(
    feed_server: FeedServer, network: Network
) -> None:
    # Nothing listens on 127.0.0.2 at this port: refused, then 127.0.0.1 answers.
    feed_server.set_feed("/feed", RSS)
    port = port_of(feed_server)
    network.answers["two.test"] = [["127.0.0.2", "127.0.0.1"]]
    async with Fetcher(FetchSettings(), guard=Recorder()) as fetcher:
        result = await fetcher.fetch(FetchRequest(url=f"http://two.test:{port}/feed"))
    assert result.body == RSS
    assert network.connected == [("127.0.0.2", port), ("127.0.0.1", port)]


async def test_refused_connections_do_not_use_up_the_pool(
    feed_server: FeedServer, network: Network
) -> None:
    feed_server.set_feed("/feed", RSS)
    port = port_of(feed_server)
    network.answers["bad.test"] = [["127.0.0.1"]]
    network.answers["good.test"] = [["127.0.0.1"]]

    def refuse_bad(host: str, port: int, addresses: Sequence[IPAddress]) -> str | None:
        return "bad host" if host == "bad.test" else None

    settings = FetchSettings(max_concurrency=2, deadline=5.0)
    async with Fetcher(settings, guard=refuse_bad) as fetcher:
        for _ in range(5):
            with pytest.raises(FetchError, match="bad host"):
                await fetcher.fetch(FetchRequest(url=f"http://bad.test:{port}/feed"))
        result = await fetcher.fetch(FetchRequest(url=f"http://good.test:{port}/feed"))
    assert result.body == RSS
    assert [r.headers["host"] for r in feed_server.requests] == [f"good.test:{port}"]


async def test_a_redirect_hop_that_rebinds_is_not_followed(
    feed_server: FeedServer, network: Network
) -> None:
    # The first host is let through; the hop is vetted as usual and rebinds after its
    # first lookup: only the vetted (public, so blocked here) address may be connected to.
    port = port_of(feed_server)
    feed_server.set_handler("/feed", lambda r: Response.redirect(f"http://hop.test:{port}/x"))
    network.answers["start.test"] = [["127.0.0.1"]]
    network.answers["hop.test"] = [[PUBLIC], ["127.0.0.1"]]

    def private_except_start(host: str, port: int, addresses: Sequence[IPAddress]) -> str | None:
        return None if host == "start.test" else refuse_private(host, port, addresses)

    async with Fetcher(FetchSettings(), guard=private_except_start) as fetcher:
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(FetchRequest(url=f"http://start.test:{port}/feed"))
    assert caught.value.message == "connection refused"
    assert [r.path for r in feed_server.requests] == ["/feed"]
    assert network.connected == [("127.0.0.1", port), (PUBLIC, port)]


async def test_a_slow_lookup_counts_against_the_connect_timeout(network: Network) -> None:
    network.answers["slow.test"] = [["127.0.0.1"]]
    network.delays["slow.test"] = 5.0
    async with Fetcher(FetchSettings(timeout=0.2), guard=Recorder()) as fetcher:
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(FetchRequest(url="http://slow.test:9/feed"))
    assert caught.value.message == "connect timed out after 0.2s" and caught.value.retryable
    assert time.monotonic() - started < 2.0
    assert network.connected == []


async def test_lookups_do_not_wait_for_the_loops_shared_executor(
    feed_server: FeedServer, network: Network
) -> None:
    # Its only thread is taken (as by a channel stuck in a blocking SMTP session): the
    # guard resolves on threads of its own, so the feed is fetched all the same.
    feed_server.set_feed("/feed", RSS)
    network.answers["feeds.example"] = [["127.0.0.1"]]
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(1))
    busy = threading.Event()
    blocker = loop.run_in_executor(None, busy.wait)
    try:
        async with Fetcher(FetchSettings(timeout=1.0), guard=Recorder()) as fetcher:
            url = f"http://feeds.example:{port_of(feed_server)}/feed"
            result = await fetcher.fetch(FetchRequest(url=url))
    finally:
        busy.set()
        await blocker
    assert result.body == RSS
    assert network.resolved == ["feeds.example"]


async def test_stuck_lookups_hold_at_most_the_resolvers_threads(network: Network) -> None:
    # A dead DNS server: each look-up outlives its caller's timeout. Later callers wait for
    # a thread within their own timeout instead of queueing more look-ups behind them.
    network.answers["stuck.test"] = [["127.0.0.1"]]
    network.delays["stuck.test"] = 30.0
    settings = FetchSettings(timeout=0.3, resolver_threads=2)
    started = time.monotonic()
    async with Fetcher(settings, guard=Recorder()) as fetcher:
        request = FetchRequest(url="http://stuck.test:9/feed")
        outcomes = await asyncio.gather(
            *(fetcher.fetch(request) for _ in range(6)), return_exceptions=True
        )
    assert all(isinstance(o, FetchError) for o in outcomes)
    assert {o.message for o in outcomes if isinstance(o, FetchError)} == {
        "connect timed out after 0.3s"
    }
    assert time.monotonic() - started < 2.0
    assert network.resolved == ["stuck.test"] * 2 and network.peak == 2


@pytest.mark.parametrize(
    "address",
    [
        "fec0::1",  # site-local
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::a00:1",  # IPv4-compatible 10.0.0.1
        "::ffff:0:7f00:1",  # IPv4-translated 127.0.0.1
        "::ffff:0:a00:1",  # IPv4-translated 10.0.0.1
        "64:ff9b:1::5db8:d822",  # local-use NAT64, whatever it embeds
        "64:ff9b::c0a8:101",  # NAT64 of 192.168.1.1
        "64:ff9b::c000:8",  # NAT64 of 192.0.0.8
        "2002:c000:8::",  # 6to4 of 192.0.0.8
        "::ffff:192.0.0.8",  # IPv4-mapped 192.0.0.8
        "192.0.0.8",  # IETF protocol assignments
        "192.0.0.170",
        "192.88.99.1",  # 6to4 relay anycast
        "5f00::1",  # SRv6 segment identifiers
        "3fff::1",  # documentation
        "fe80::1%eth0",  # link-local with a scope id
        "::",
        "::1",
    ],
)
def test_reserved_and_wrapped_private_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "::5db8:d822", "::ffff:0:5db8:d822", "64:ff9b::5db8:d822", "2606:4700::1"],
)
def test_public_addresses_and_their_wrappings_are_public(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))
