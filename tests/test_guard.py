"""The private-network guard (monitor/fetch/guard.py) against DNS rebinding, on loopback only.

No DNS can be run here, so the event loop's ``getaddrinfo`` is replaced by a scripted
resolver for made-up names (every resolution in the fetch path goes through it: the guard's
and anyio's), and ``create_connection`` by a recorder that lets only 127.0.0.0/8 through:
a test that vets a public address must never actually reach it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
import trustme
from feedserver import FeedServer, Response

from monitor.errors import AddressRefused, FetchError, MonitorError
from monitor.fetch import Fetcher, FetchSettings
from monitor.fetch.guard import GuardedTransport, IPAddress, refuse_private
from monitor.types import FetchRequest

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
PUBLIC = "93.184.216.34"


class Network:
    """A scripted resolver and a connection recorder, installed on the running loop.

    ``answers[name]`` lists the addresses each successive resolution of ``name`` returns;
    the last answer repeats; ``delays[name]`` makes each answer take that many seconds.
    Other names resolve as usual.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.delays: dict[str, float] = {}
        self.resolved: list[str] = []  # names, once per resolution
        self.connected: list[tuple[str, int]] = []  # (address, port), once per attempt
        self._getaddrinfo = loop.getaddrinfo
        self._create_connection = loop.create_connection

    async def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in self.answers:
            return await self._getaddrinfo(host, port, *args, **kwargs)
        self.resolved.append(name)
        await asyncio.sleep(self.delays.get(name, 0.0))
        script = self.answers[name]
        answer = script.pop(0) if len(script) > 1 else script[0]
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
    monkeypatch.setattr(loop, "getaddrinfo", fake.getaddrinfo)
    monkeypatch.setattr(loop, "create_connection", fake.create_connection)
    yield fake


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
    transport = GuardedTransport(Recorder(), limits=limits, ssl_context=client_context)
    with FeedServer(ssl_context=server_context) as server:
        server.set_feed("/feed", RSS)
        port = port_of(server)
        network.answers["feeds.example"] = [["127.0.0.1"]]
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get(f"https://feeds.example:{port}/feed")
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
