"""Connection pools for polling many hosts: one HTTP transport per shard of hosts.

httpcore's pool looks through all of its connections for every request it queues or
finishes, so one pool shared by the requests to hundreds of hosts costs more with every
connection it holds (encode/httpcore#1035). Keeping connections alive for reuse makes the
pool larger and slower; closing them after each response costs a new TCP (and TLS)
handshake per poll, paid by the feed's server too. So the fetcher spreads hosts over
``SHARDS`` small pools by a hash of the origin: each origin always lands in the same pool,
its connections are reused (feeds on one host are mostly due together), and each pool stays
small.

Input: the transport settings; the guard and its resolver, when addresses are vetted.
Output: an httpx transport. Does not: limit concurrency (the fetcher's ``limits`` do),
follow redirects, or read bodies.
"""

from __future__ import annotations

import ssl
import zlib
from collections.abc import Callable

import httpx

from monitor.fetch.guard import AddressGuard, GuardedTransport
from monitor.fetch.resolver import Resolver
from monitor.fetch.streams import BackendTransport, LeanBackend

SHARDS = 16
# Idle connections kept per shard (httpx's default for a whole pool): enough for the hosts
# of a shard that are polled together, so that they do not evict each other's connections.
# The fetcher's own limits cap connections in use.
KEEPALIVE_PER_SHARD = 20
# An idle connection is closed after this long: feeds of one host are due together, so reuse
# happens within seconds, and well before servers drop idle connections (Apache: after 5 s),
# which would fail a poll that picked the connection just then.
KEEPALIVE_SECONDS = 2.0


class ShardedTransport(httpx.AsyncBaseTransport):
    """Sends each request through the transport of its origin's shard."""

    def __init__(self, make: Callable[[], httpx.AsyncBaseTransport], shards: int = SHARDS) -> None:
        self._shards = [make() for _ in range(shards)]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = f"{url.scheme}://{url.host}:{url.port}".encode()
        shard = self._shards[zlib.crc32(origin) % len(self._shards)]
        return await shard.handle_async_request(request)

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()


def pooled_transport(
    max_connections: int, guard: AddressGuard | None, resolver: Resolver | None = None
) -> ShardedTransport:
    """The fetcher's transport: shards of httpx's own transport over ``LeanBackend`` (or,
    with a guard, of ``GuardedTransport``, all resolving with ``resolver``), sharing one TLS
    context (each one loads the CA store). The caller owns the resolver and closes it."""
    context: ssl.SSLContext = httpx.create_ssl_context(trust_env=False)
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=KEEPALIVE_PER_SHARD,
        keepalive_expiry=KEEPALIVE_SECONDS,
    )
    if guard is None:
        return ShardedTransport(
            lambda: BackendTransport(LeanBackend(), limits=limits, ssl_context=context)
        )
    if resolver is None:
        raise ValueError("a guarded transport needs a resolver")
    return ShardedTransport(
        lambda: GuardedTransport(guard, resolver=resolver, limits=limits, ssl_context=context)
    )
