"""The private-network guard of the fetch stage: where a feed's connections may go.

Every host a connection is opened to, redirect hops included, has its addresses vetted by
an ``AddressGuard``; ``refuse_private`` is the guard used when ``allow_private_networks``
is false.

Vetting and connecting use one resolution. ``GuardedBackend`` is the network backend of the
connection pool (``GuardedTransport``): it resolves the host once (on the ``Resolver``'s
own threads, not the event loop's shared executor), asks the guard about the addresses and
connects the TCP stream to one of exactly those addresses (an address literal, which anyio
connects to without a look-up of its own). Resolving to vet and letting httpx resolve
again to connect would let a DNS server that answers a public address first and a private
one next (DNS rebinding) slip past the guard. TLS still checks the certificate against,
and sends SNI for, the host name: httpcore passes the URL's host to ``start_tls`` whatever
address the stream was connected to. A pooled connection is only reused for its own
scheme, host and port, so every hop to a new origin meets the guard before a byte of its
request is sent.

Proxies: none. The fetcher ignores proxy environment variables (``trust_env=False``), and a
guard here could not vet what a proxy connects to; proxy support would need the proxy to
enforce the policy.

Input: the guard, host and port of each new connection.
Output: a stream connected to a vetted address, or ``AddressRefused`` (not retryable).
Does not: check URL schemes (``urls``), send requests, follow redirects, decode bodies
(``decode``) or describe network failures (``failures``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Callable, Iterable, Sequence

import httpcore
import httpx

from monitor.errors import AddressRefused
from monitor.fetch.resolver import IPAddress, Resolver
from monitor.fetch.streams import BackendTransport, LeanBackend

# Returns why the destination is refused, or None to allow it.
AddressGuard = Callable[[str, int, Sequence[IPAddress]], str | None]

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
# IPv6 prefixes whose last 32 bits are an IPv4 address the packets end up at: the
# address is as public as that IPv4 address. (IPv4-mapped and 6to4 are read by ipaddress.)
_EMBEDDING_IPV4 = (
    _V6("64:ff9b::/96"),  # NAT64 well-known prefix (RFC 6052)
    _V6("::ffff:0:0:0/96"),  # IPv4-translated (RFC 2765)
    _V6("::/96"),  # IPv4-compatible, deprecated (RFC 4291 section 2.5.5.1); :: and ::1 too
)
# Not globally reachable (IANA special-purpose registries), though some Python versions'
# ``is_global`` says otherwise: the guard must not depend on the interpreter's tables.
_NOT_PUBLIC = (
    _V4("192.0.0.0/24"),  # IETF protocol assignments (RFC 6890), 192.0.0.8 among them
    _V4("192.88.99.0/24"),  # 6to4 relay anycast, deprecated (RFC 7526)
    _V6("fec0::/10"),  # site-local, deprecated (RFC 3879) but still routed by some
    _V6("64:ff9b:1::/48"),  # local-use NAT64 (RFC 8215): translates into local networks
    _V6("5f00::/16"),  # SRv6 segment identifiers (RFC 9602)
    _V6("3fff::/20"),  # documentation (RFC 9637)
)


def is_public_address(address: IPAddress) -> bool:
    """True for a globally routable unicast address, seen through IPv6 wrappings of IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        address = ipaddress.IPv6Address(int(address))  # without its scope id
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and any(address in prefix for prefix in _EMBEDDING_IPV4):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            address = embedded
    if any(address in network for network in _NOT_PUBLIC):
        return False
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


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that only connects to addresses its guard accepted.

    ``connect_tcp`` resolves the host once, has the guard vet every address, then connects
    to them in turn until one accepts (a plain fallback, no Happy Eyeballs racing: every
    address is vetted, so any of them will do). Resolution and all attempts share the
    connect timeout, as in httpcore's own backend. Failures come out as httpcore's
    ``ConnectError``/``ConnectTimeout``, which httpx maps to its own, so
    ``failures.describe_error`` still finds the ``gaierror`` or ``OSError`` underneath; a
    refusal as ``AddressRefused``, which is not an httpcore error: httpx lets it through
    unwrapped and the fetcher turns it into a ``FetchError`` carrying its reason as is.
    Unix sockets are not supported (the base class raises ``NotImplementedError``).
    """

    def __init__(
        self,
        guard: AddressGuard,
        resolver: Resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._guard = guard
        self._resolver = resolver
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
                addresses = await self._resolver.resolve(host, port)
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


class GuardedTransport(BackendTransport):
    """httpx's own transport, over a pool whose connections go through ``GuardedBackend``
    (and ``LeanBackend``'s streams). No proxy: the guard vets the addresses this process
    connects to."""

    def __init__(
        self,
        guard: AddressGuard,
        *,
        resolver: Resolver,
        limits: httpx.Limits,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        backend = GuardedBackend(guard, resolver, LeanBackend())
        super().__init__(backend, limits=limits, ssl_context=ssl_context)
