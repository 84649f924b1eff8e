"""Guards of the fetch stage against hostile or broken servers.

Checks that httpx does not make for us:

- where a feed URL may lead: only http and https; the host is resolved and its addresses
  vetted by an ``AddressGuard`` before each request, redirect hops included;
- how far a body may expand: Content-Encoding is decoded here with bounded output per step,
  so a gzip or brotli bomb is cut after ``max_bytes`` of output instead of being inflated
  whole in memory (httpx inflates each 64 KiB network chunk in one go, which is ~64 MB for
  gzip and unbounded for stacked encodings such as ``gzip, gzip``);
- what went wrong below HTTP: httpx errors (DNS, refused, TLS, resets) become one-line
  messages, never reprs.

Input: a URL, host and port to vet; raw body chunks and the Content-Encoding header.
Output: nothing or a ``FetchError``; decoded pieces of at most about ``PIECE`` bytes;
a message and retryability for an httpx error.
Does not: send requests, follow redirects, count the body against the cap (fetch does that).

Known gap: the guard resolves the name itself and httpx resolves it again to connect, so a
DNS server that answers differently the second time (DNS rebinding) can slip past it.
Closing that gap needs a transport that connects to the vetted address; not done.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import brotli
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


async def check_destination(url: str, host: str, port: int, guard: AddressGuard) -> None:
    """Resolve ``host`` and raise ``FetchError`` if ``guard`` refuses its addresses."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise FetchError(url, f"cannot resolve host {host}") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    reason = guard(host, port, addresses)
    if reason is not None:
        raise FetchError(url, reason, retryable=False)


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
