"""The outcomes of polls without items, written several to a transaction.

A poll that brought no new items (a 304, an error, a gone feed) ends by writing its outcome
on the feed's row. Written one to a transaction, the transaction's own cost (a thread, a
pooled connection, SQLite's write lock, the commit) was most of a 304's CPU. So outcomes
wait a moment (``delay``) for others and go together; they go at once when every poll
under way has one waiting, as when polls run one after another or the others have ended.
The pipeline says when a poll starts and ends (``started``, ``ended``).

Each poll still waits for its own outcome to be written and gets that write's error, so
callers see no change but when. A poll cancelled while waiting still has its outcome
written. If the process dies first, nothing is lost: the feeds' claims expire and they are
polled again. A batch that fails is written again one outcome at a time, so that one bad
outcome fails its own poll only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from monitor.types import PollUpdate

DELAY = 0.25  # seconds an outcome may wait for others
MOST = 200  # outcomes in one transaction: SQLite's write lock is held while it runs

Outcome = tuple[int, PollUpdate]
_Waiting = tuple[int, PollUpdate, asyncio.Future[None]]


class PollRecorder:
    def __init__(self, write: Callable[[Sequence[Outcome]], None], *, delay: float = DELAY) -> None:
        """``write`` stores outcomes in one transaction (it runs in a thread)."""
        self._write = write
        self.delay = delay
        self.under_way = 0  # polls started and not ended: each may still bring an outcome
        self._pending: list[_Waiting] = []
        self._all_in: asyncio.Event | None = None  # the writer's, on the running loop
        self._writer: asyncio.Task[None] | None = None

    def started(self) -> None:
        self.under_way += 1

    def ended(self) -> None:
        self.under_way -= 1
        self._go_if_all_in()

    def _go_if_all_in(self) -> None:
        if self._all_in is not None and self._pending and len(self._pending) >= self.under_way:
            self._all_in.set()

    async def record(self, feed_id: int, poll: PollUpdate) -> None:
        """Return once the outcome is written; raise what writing it raised."""
        done = asyncio.get_running_loop().create_future()
        self._pending.append((feed_id, poll, done))
        if self._writer is None or self._writer.done():
            all_in = self._all_in = asyncio.Event()
            self._writer = asyncio.create_task(self._write_pending(all_in))
        self._go_if_all_in()
        await done

    async def _write_pending(self, all_in: asyncio.Event) -> None:
        while self._pending:
            if not all_in.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(all_in.wait(), self.delay)
            all_in.clear()
            batch, self._pending = self._pending[:MOST], self._pending[MOST:]
            await self._write_batch(batch)

    async def _write_batch(self, batch: list[_Waiting]) -> None:
        try:
            await asyncio.to_thread(self._write, [(feed, poll) for feed, poll, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][2], exc)
                return
            for one in batch:
                await self._write_batch([one])
            return
        for _, _, done in batch:
            _settle(done, None)


def _settle(done: asyncio.Future[None], error: Exception | None) -> None:
    if done.done():  # its poll was cancelled: nobody waits for it
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
