"""How much the fetch stage does at once, and for how long one fetch may run.

``Slots``: a per-host then a global limit on requests in flight. ``Budget``: the total
deadline of one fetch, stopped while it waits for a slot.

A host's semaphore exists only while a request holds or awaits it: the hosts come from
feeds and their redirects, so a table kept for every host ever seen would grow for as long
as a server keeps redirecting to new names.

Input: the limits, then each hop's host. Output: context managers that hold a slot or
pause the deadline. Does not: send requests or know about URLs beyond their host.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator


class _Host:
    """A host's semaphore and the number of requests holding or awaiting it."""

    __slots__ = ("semaphore", "users")

    def __init__(self, slots: int) -> None:
        self.semaphore = asyncio.Semaphore(slots)
        self.users = 0


class Slots:
    """Per-host and global request slots."""

    def __init__(self, per_host: int, overall: int) -> None:
        self._per_host = per_host
        self._overall = asyncio.Semaphore(overall)
        self._hosts: dict[str, _Host] = {}

    def __len__(self) -> int:
        """The number of hosts with a request in flight or waiting."""
        return len(self._hosts)

    @contextlib.asynccontextmanager
    async def hold(self, host: str, budget: Budget) -> AsyncIterator[None]:
        """Hold a per-host then a global slot. The host slot is taken first so that
        requests queued for a slow host never sit on global slots other hosts need."""
        entry = self._hosts.get(host)
        if entry is None:
            entry = self._hosts[host] = _Host(self._per_host)
        entry.users += 1
        try:
            with budget.paused():
                await entry.semaphore.acquire()
                try:
                    await self._overall.acquire()
                except BaseException:
                    entry.semaphore.release()
                    raise
            try:
                yield
            finally:
                self._overall.release()
                entry.semaphore.release()
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._hosts[host]


class Budget:
    """The time budget of one fetch: a deadline that stops while waiting for a slot.

    Waiting in the per-host queue is not the server's fault: counting it would time out
    feeds queued behind a slow host before they ever sent a request.
    """

    def __init__(self, seconds: float) -> None:
        self.timeout = asyncio.timeout(seconds)
        self._started = time.monotonic()
        self._queued = 0.0

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        when = self.timeout.when()
        loop = asyncio.get_running_loop()
        remaining = None if when is None else when - loop.time()
        began = time.monotonic()
        self.timeout.reschedule(None)
        try:
            yield
        finally:
            self._queued += time.monotonic() - began
            if remaining is not None:
                self.timeout.reschedule(loop.time() + remaining)

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self._started - self._queued) * 1000
