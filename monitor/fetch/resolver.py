"""Host name resolution for the private-network guard, on threads of its own.

asyncio's ``getaddrinfo`` runs in the event loop's default executor, which the rest of the
process shares (``asyncio.to_thread``: the store, a channel's blocking SMTP session). Once
those threads are busy, a feed's look-up waits behind unrelated work and the feed fails
for no fault of its own. ``Resolver`` keeps a few threads for look-ups alone.

A running ``getaddrinfo`` cannot be interrupted: a caller that gives up (its connect
timeout, the fetch deadline) leaves the look-up running until the system resolver
returns. So each thread is a slot, released when its look-up ends rather than when its
caller stops waiting: look-ups stuck on a dead DNS server hold at most every thread, and
later callers wait for a slot within their own timeout, never in an unbounded queue.

Input: a host name and port. Output: the addresses, in the resolver's order, without
repeats; ``OSError`` or ``UnicodeError`` when the name does not resolve.
Does not: time out by itself (callers bound the wait), cache answers, or vet addresses
(``guard`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

THREADS = 8  # look-ups take milliseconds: a few threads serve many feeds


class Resolver:
    """Resolves host names with ``socket.getaddrinfo`` on at most ``threads`` threads."""

    def __init__(self, threads: int = THREADS) -> None:
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="monitor-resolver")
        self._slots = asyncio.Semaphore(threads)

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The addresses of ``host``. IPv6 scope ids are kept (``fe80::1%eth0``) so that an
        allowed link-local address stays connectable."""
        loop = asyncio.get_running_loop()
        await self._slots.acquire()
        try:
            lookup = self._executor.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        except BaseException:
            self._slots.release()
            raise
        lookup.add_done_callback(lambda _: self._release(loop))
        infos = await asyncio.wrap_future(lookup)
        addresses = [ipaddress.ip_address(str(info[4][0])) for info in infos]
        return list(dict.fromkeys(addresses))

    def close(self) -> None:
        """Stop taking look-ups; those still running end on their own."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _release(self, loop: asyncio.AbstractEventLoop) -> None:
        # Called on the look-up's thread (or the loop's, when it was cancelled unstarted).
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(self._slots.release)
