"""Parse workers: feed parsing off the event loop, on every core.

feedparser is CPU-bound and holds the GIL, so the service parses in a pool of processes
(``forkserver``: never fork a process that runs threads). A worker that dies (out of memory
on a hostile document, a segfault in a C extension) breaks a ``ProcessPoolExecutor`` for
good; this pool replaces it so that one bad feed costs one failed poll, not every poll
after it. With ``workers=0`` parsing runs in a thread instead (tests, tiny deployments).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial

from monitor.errors import ParseError
from monitor.parse.feed import parse_feed
from monitor.types import FetchResult, ParsedFeed

log = logging.getLogger("monitor.parse.workers")


class ParseWorkers:
    def __init__(self, workers: int | None) -> None:
        """``workers``: None = one per core; 0 = parse in a thread of this process."""
        self.count = (os.cpu_count() or 1) if workers is None else workers
        self._pool: ProcessPoolExecutor | None = self._new_pool() if self.count else None

    def _new_pool(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        return ProcessPoolExecutor(self.count, mp_context=context)

    async def parse(self, result: FetchResult) -> ParsedFeed:
        job = partial(parse_feed, result.body, url=result.final_url, headers=dict(result.headers))
        pool = self._pool
        if pool is None:
            return await asyncio.to_thread(job)
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, job)
        except BrokenProcessPool:
            if self._pool is pool:  # the first poll to notice replaces the pool
                log.error("a parse worker died while parsing %s; restarting workers", result.url)
                pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
            raise ParseError(result.url, "the parser crashed on this document") from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
