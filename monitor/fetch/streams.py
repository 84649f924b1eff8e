"""The fetcher's connection pools over network streams that say cheaply whether the server
has closed them.

For every request a pool queues or finishes, httpcore asks each idle connection it holds
whether the server has closed it (``get_extra_info("is_readable")``). Over anyio's stream,
each answer rebuilt the socket's table of attributes, which calls ``getpeername``: a third
of the pool's own time per poll. ``LeanStream`` keeps the socket it was connected with and
answers with one ``poll``; everything else goes to the stream it wraps (anyio's, TLS
included: TLS runs over the same socket).

``BackendTransport`` is httpx's own transport over a pool with a chosen network backend:
httpx 0.28 cannot hand one to the pool it builds (encode/httpx#3749 would add one), so the
pool it built is replaced by one made with the same settings plus the backend;
``handle_async_request`` and ``aclose`` only use ``self._pool``. Request conversion and
exception mapping stay httpx's. httpx is pinned below 0.29, and a changed ``_pool`` fails
here, loudly, rather than leaving the pool without its backend.
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx


class LeanStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return LeanStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return readable(self._socket)
        if info == "socket":
            return self._socket
        return self._inner.get_extra_info(info)


def readable(sock: socket.socket | None) -> bool:
    """Whether a read would return at once: data, or the end a closed connection gives. A
    socket already closed counts as readable, so that its connection is dropped."""
    fd = -1 if sock is None else sock.fileno()
    if fd < 0:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class LeanBackend(httpcore.AsyncNetworkBackend):
    """Connects with ``inner`` (anyio's by default) and wraps its streams in ``LeanStream``."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return LeanStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class BackendTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, over a pool whose connections ``backend`` opens."""

    def __init__(
        self,
        backend: httpcore.AsyncNetworkBackend,
        *,
        limits: httpx.Limits,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        context = ssl_context or httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=context, trust_env=False, limits=limits)
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            raise RuntimeError("httpx.AsyncHTTPTransport no longer keeps its pool in _pool")
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )
