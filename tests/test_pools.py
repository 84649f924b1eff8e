"""Sharded connection pools (monitor/fetch/pools.py): every shard guarded when a guard is given,
one TLS context for all, and an origin always in the same shard (so its connections are
reused). Connection reuse itself is tested against a real server in tests/test_fetch.py."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from monitor.fetch.guard import GuardedTransport, IPAddress
from monitor.fetch.pools import SHARDS, ShardedTransport, pooled_transport
from monitor.fetch.resolver import Resolver


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
