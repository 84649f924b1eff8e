"""Sharded connection pools (monitor/fetch/pools.py): every shard guarded when a guard is given,
one TLS context for all, and an origin always in the same shard (so its connections are
reused). Against a real server on loopback, with and without the guard: a connection is
reused, and one the server closed while idle is noticed (monitor/fetch/streams.py) and
replaced rather than failing the next request."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from monitor.fetch.guard import GuardedTransport, IPAddress
from monitor.fetch.pools import SHARDS, ShardedTransport, pooled_transport
from monitor.fetch.resolver import Resolver
from monitor.fetch.streams import readable


def refuse_all(host: str, port: int, addresses: Sequence[IPAddress]) -> str | None:
    return "refused"


def test_with_a_guard_every_shard_is_guarded() -> None:
    transport = pooled_transport(50, refuse_all, Resolver())
    assert len(transport._shards) == SHARDS
    assert all(isinstance(shard, GuardedTransport) for shard in transport._shards)


def test_shards_share_one_tls_context() -> None:
    for guard in (None, refuse_all):
        transport = pooled_transport(50, guard, Resolver())
        contexts = {id(shard._pool._ssl_context) for shard in transport._shards}  # type: ignore[attr-defined]
        assert len(contexts) == 1


async def test_an_origin_always_goes_to_the_same_shard() -> None:
    seen: dict[str, set[int]] = {}

    class Recorder(httpx.AsyncBaseTransport):
        def __init__(self, index: int) -> None:
            self.index = index

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen.setdefault(f"{request.url.host}:{request.url.port}", set()).add(self.index)
            return httpx.Response(204)

    counter = iter(range(SHARDS))
    transport = ShardedTransport(lambda: Recorder(next(counter)))
    for n in range(100):
        for path in ("/a", "/b"):
            request = httpx.Request("GET", f"http://host{n % 40}.example:{8000 + n % 3}{path}")
            await transport.handle_async_request(request)
    assert all(len(shards) == 1 for shards in seen.values())
    assert len(set().union(*seen.values())) > SHARDS // 2  # origins spread over the shards


def allow_all(host: str, port: int, addresses: Sequence[IPAddress]) -> str | None:
    return None


class Server:
    """HTTP/1.1 on loopback, keep-alive; with ``hang_up`` it closes each connection right
    after its response, without saying so (no ``Connection: close``), as servers do with
    idle connections."""

    def __init__(self, *, hang_up: bool) -> None:
        self.hang_up = hang_up
        self.connections = 0
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                self.requests += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
                if self.hang_up:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


@pytest.fixture(params=[None, allow_all], ids=["plain", "guarded"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    transport = pooled_transport(10, request.param, Resolver())
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


async def serve(handler: Server) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/feed"


async def test_a_connection_is_reused(client: httpx.AsyncClient) -> None:
    handler = Server(hang_up=False)
    server, url = await serve(handler)
    async with server:
        for _ in range(3):
            assert (await client.get(url)).text == "ok"
    assert (handler.connections, handler.requests) == (1, 3)


async def test_a_connection_the_server_closed_while_idle_is_replaced(
    client: httpx.AsyncClient,
) -> None:
    handler = Server(hang_up=True)
    server, url = await serve(handler)
    async with server:
        for _ in range(3):
            assert (await client.get(url)).text == "ok"
            await asyncio.sleep(0.1)  # the server's close reaches the idle connection
    assert (handler.connections, handler.requests) == (3, 3)


def test_readable_means_data_or_the_end_waits() -> None:
    ours, theirs = socket.socketpair()
    try:
        assert not readable(ours)
        theirs.sendall(b"x")
        assert readable(ours)
        ours.recv(1)
        theirs.close()
        assert readable(ours)  # the end of the stream: a read returns b"" at once
    finally:
        ours.close()
    assert readable(ours)  # closed here: counts as readable, so it is dropped
    assert readable(None)
