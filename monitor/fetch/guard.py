"""Guards of the fetch stage against hostile or broken servers.

Checks that httpx does not make for us:

- where a feed URL may lead: only http and https; the addresses of every host a connection
  is opened to, redirect hops included, are vetted by an ``AddressGuard``;
- how far a body may expand: Content-Encoding is decoded here with bounded output per step,
  so a gzip or brotli bomb is cut after ``max_bytes`` of output instead of being inflated
  whole in memory (httpx inflates each 64 KiB network chunk in one go, which is ~64 MB for
  gzip and unbounded for stacked encodings such as ``gzip, gzip``);
- what went wrong below HTTP: httpx errors (DNS, refused, TLS, resets) become one-line
  messages, never reprs.

Vetting and connecting use one resolution. ``GuardedBackend`` is the network backend of the
connection pool (``GuardedTransport``): it resolves the host once, asks the guard about the
addresses and connects the TCP stream to one of exactly those addresses. Resolving to vet
and letting httpx resolve again to connect would let a DNS server that answers a public
address first and a private one next (DNS rebinding) slip past the guard. TLS still checks
the certificate against, and sends SNI for, the host name: httpcore passes the URL's host
to ``start_tls`` whatever address the stream was connected to. A pooled connection is only
reused for its own scheme, host and port, so every hop to a new origin meets the guard
before a byte of its request is sent.

Proxies: none. The fetcher ignores proxy environment variables (``trust_env=False``), and a
guard here could not vet what a proxy connects to; proxy support would need the proxy to
enforce the policy.

Input: a URL to vet; the guard, host and port of each new connection; raw body chunks and
the Content-Encoding header.
Output: nothing or a ``FetchError``; a stream connected to a vetted address, or
``AddressRefused``; decoded pieces of at most about ``PIECE`` bytes; a message and
retryability for an httpx error.
Does not: send requests, follow redirects, count the body against the cap (fetch does that).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

import brotli
import httpcore
import httpx

from monitor.errors import FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Returns why the destination is refused, or None to allow it.
AddressGuard = Callable[[str, int, Sequence[IPAddress]], str | None]

PIECE = 64 * 1024  # bound on one decoded piece; brotli may overshoot it by up to ~1.5x

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix


def is_public_address(address: IPAddress) -> bool:
    """True for a globally routable unicast address, seen through IPv6 wrappings of IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(embedded)
    return address.is_global and not address.is_multicast


def refuse_private(host: str, port: int, addresses: Sequence[IPAddress]) -> str | None:
    """The guard used when ``allow_private_networks`` is false.

    Every address must be public: a name that resolves to one public and one private
    address is refused, since the connection may use either.
    """
    for address in addresses:
        if not is_public_address(address):
            return (
                f"refusing private address {address} for host {host} "
                "(allow_private_networks is false)"
            )
    return None


class AddressRefused(Exception):
    """The guard refused the addresses of a host; ``reason`` is its one-line message.

    Not an httpcore error, so httpx lets it through unwrapped: the fetcher turns it into a
    ``FetchError`` carrying the reason as is.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses of ``host`` in the resolver's order of preference, without repeats.

    IPv6 scope ids are kept (``fe80::1%eth0``) so that an allowed link-local address stays
    connectable. Raises ``OSError`` or ``UnicodeError`` when the name does not resolve.
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [ipaddress.ip_address(str(info[4][0])) for info in infos]
    return list(dict.fromkeys(addresses))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that only connects to addresses its guard accepted.

    ``connect_tcp`` resolves the host once, has the guard vet every address, then connects
    to them in turn until one accepts (a plain fallback, no Happy Eyeballs racing: every
    address is vetted, so any of them will do). Resolution and all attempts share the
    connect timeout, as in httpcore's own backend. Failures come out as httpcore's
    ``ConnectError``/``ConnectTimeout``, which httpx maps to its own, so ``describe_error``
    still finds the ``gaierror`` or ``OSError`` underneath; a refusal as ``AddressRefused``.
    Unix sockets are not supported (the base class raises ``NotImplementedError``).
    """

    def __init__(
        self, guard: AddressGuard, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self._guard = guard
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                addresses = await resolve(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"timed out resolving {host}") from exc
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve host {host}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve host {host}")
        reason = self._guard(host, port, addresses)
        if reason is not None:
            raise AddressRefused(reason)
        *others, last = addresses
        for address in others:
            try:
                return await self._connect(address, port, deadline, local_address, socket_options)
            except httpcore.ConnectError:  # a timeout has used the budget up: not caught
                continue  # every address was vetted: the next one will do as well
        return await self._connect(last, port, deadline, local_address, socket_options)

    async def _connect(
        self,
        address: IPAddress,
        port: int,
        deadline: float | None,
        local_address: str | None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None,
    ) -> httpcore.AsyncNetworkStream:
        remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
        return await self._inner.connect_tcp(
            str(address),
            port,
            timeout=None if remaining is None else max(0.0, remaining),
            local_address=local_address,
            socket_options=socket_options,
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, over a pool whose connections go through ``GuardedBackend``.

    httpx 0.28 cannot hand a network backend to the pool it builds (encode/httpx#3749
    proposes a parameter), so the pool it built is replaced by one made with the same
    settings plus the backend; ``handle_async_request`` and ``aclose`` only use
    ``self._pool``. Request conversion and exception mapping stay httpx's. httpx is pinned
    below 0.29, and a changed ``_pool`` fails here, loudly, rather than leaving the pool
    unguarded. No proxy: the guard vets the addresses this process connects to.
    """

    def __init__(
        self,
        guard: AddressGuard,
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
            network_backend=GuardedBackend(guard),
        )


def check_url(feed_url: str, url: str) -> httpx.URL:
    """Parse a URL of the feed or of a redirect hop; only http and https are fetched."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise FetchError(feed_url, f"invalid URL {url!r}: {exc}", retryable=False) from exc
    if not parsed.scheme:
        raise FetchError(feed_url, f"invalid URL {url!r}: no scheme", retryable=False)
    if parsed.scheme not in ("http", "https"):
        message = f"unsupported URL scheme {parsed.scheme!r}"
        raise FetchError(feed_url, message, retryable=False)
    if not parsed.host:
        raise FetchError(feed_url, f"invalid URL {url!r}: no host", retryable=False)
    return parsed


def port_of(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def describe_error(exc: httpx.HTTPError, host: str, timeout: float) -> tuple[str, bool]:
    """A one-line message and retryability for an httpx failure (no reprs, no tracebacks)."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connect timed out after {timeout:g}s", True
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g}s waiting for the server", True
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        return f"invalid request: {exc}", False
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"protocol error: {exc}", True
    cause = _root_cause(exc)
    if isinstance(cause, socket.gaierror | UnicodeError):  # UnicodeError: a label IDNA refuses
        return f"cannot resolve host {host}", True
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused", True
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {cause.verify_message}", True
    if isinstance(cause, ssl.SSLError):  # reason is OpenSSL's code, e.g. WRONG_VERSION_NUMBER
        return f"TLS error: {(cause.reason or 'handshake failed').lower().replace('_', ' ')}", True
    if isinstance(cause, OSError) and cause.strerror:
        return f"connection failed: {cause.strerror.lower()}", True
    if isinstance(exc, httpx.ReadError):
        return "connection lost while reading the response", True
    detail = str(exc)
    return (f"connection failed: {detail}" if detail else "connection failed"), True


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception: httpx wraps httpcore, which wraps the OS error."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    return exc


class _Layer(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]: ...


class _Identity:
    def feed(self, data: bytes) -> Iterator[bytes]:
        if data:
            yield data


class _Zlib:
    """gzip or deflate. ``deflate`` is meant to be zlib-wrapped (RFC 9110 section 8.4.1.2)
    but some servers send raw deflate: like httpx, fall back if the first chunk fails."""

    def __init__(self, wbits: int, *, raw_fallback: bool = False) -> None:
        self._inflater = zlib.decompressobj(wbits)
        self._raw_fallback = raw_fallback

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._raw_fallback:
            self._raw_fallback = False
            try:
                first = self._inflater.decompress(data, PIECE)
            except zlib.error:
                self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                first = self._inflater.decompress(data, PIECE)
            yield first
            data = self._inflater.unconsumed_tail
            if not data and len(first) < PIECE:
                return
        while not self._inflater.eof:
            piece = self._inflater.decompress(data, PIECE)
            data = self._inflater.unconsumed_tail
            if piece:
                yield piece
            # A full piece may leave output pending in zlib even with no input left.
            if not data and len(piece) < PIECE:
                return


class _Brotli:
    def __init__(self) -> None:
        self._decompressor = brotli.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._decompressor.is_finished():
            return
        piece = self._decompressor.process(data, output_buffer_limit=PIECE)
        yield piece
        # Drain with empty input, as brotli requires, until it stops producing output.
        while not self._decompressor.is_finished():
            piece = self._decompressor.process(b"", output_buffer_limit=PIECE)
            if piece:
                yield piece
            elif self._decompressor.can_accept_more_data():
                return


def _layer(coding: str) -> _Layer | None:
    if coding in ("identity", ""):
        return _Identity()
    if coding in ("gzip", "x-gzip"):
        return _Zlib(zlib.MAX_WBITS | 16)
    if coding == "deflate":
        return _Zlib(zlib.MAX_WBITS, raw_fallback=True)
    if coding == "br":
        return _Brotli()
    return None


class BodyDecoder:
    """Undoes the Content-Encoding layers of a body, a bounded piece at a time.

    Pieces are produced lazily: a caller that stops iterating once it has seen enough
    never makes the decoder inflate more than one more piece.
    """

    def __init__(self, url: str, content_encoding: str) -> None:
        self._url = url
        codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
        layers: list[_Layer] = []
        # Codings are listed in the order they were applied: undo them in reverse.
        for coding in reversed(codings):
            layer = _layer(coding)
            if layer is None:
                raise FetchError(url, f"unsupported Content-Encoding {coding!r}")
            layers.append(layer)
        self._layers = layers
        self._name = ", ".join(codings)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decoded pieces of ``data``; raises ``FetchError`` on corrupt input."""
        pieces: Iterator[bytes] = iter((data,))
        for layer in self._layers:
            pieces = _through(layer, pieces)
        try:
            yield from (piece for piece in pieces if piece)
        except (zlib.error, brotli.error) as exc:
            raise FetchError(self._url, f"cannot decode {self._name} body: {exc}") from exc


def _through(layer: _Layer, pieces: Iterator[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield from layer.feed(piece)
