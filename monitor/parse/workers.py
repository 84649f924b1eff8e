"""Parse workers: feed parsing off the event loop, on every core, within a time budget.

feedparser is CPU-bound and holds the GIL, so the service parses in worker processes
(``forkserver``: never fork a process that runs threads), one document at a time each. A
worker still parsing when the document's budget is spent (a document that is slow to
parse, whatever the reason) is killed and replaced, and so is one that dies (out of
memory on a hostile document, a segfault in a C extension): one bad feed costs one failed
poll, and no claim on a feed outlives its lease because of a parse. The processes are our
own, not a ``ProcessPoolExecutor``'s: that cannot stop one task, and a dead worker breaks
it for good. Article pages of full-text feeds (:mod:`monitor.parse.article`) are
extracted by the same workers, under the same budget.

With ``workers=0`` parsing runs in a thread instead (tests, tiny deployments). A thread
cannot be killed: the poll still fails once the budget is spent, but the thread parses on
to the end, holding a core meanwhile. Where feeds may be hostile, parse in processes.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from typing import Any

from monitor.errors import ParseError
from monitor.parse.article import MAX_HTML, Article, extract_article
from monitor.types import FetchResult, ParsedFeed

log = logging.getLogger("monitor.parse.workers")

DEFAULT_BUDGET = 20.0
_START_TIMEOUT = 60.0  # a new worker imports the parsers before it says it is ready
# A document, as a worker receives it: what to do with it (``parse_document`` or
# ``extract_article``, sent by reference), body, URL (the base for links), headers.
_Task = Callable[..., Any]
_Job = tuple[_Task, bytes, str, dict[str, str]]


class ParseWorkers:
    def __init__(
        self,
        workers: int | None,
        budget: float = DEFAULT_BUDGET,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        """``workers``: None = one per core; 0 = parse in a thread of this process.
        ``budget``: the seconds one document may take to parse. ``on_restart`` is called
        each time a worker is killed or found dead (the service counts them)."""
        self.count = (os.cpu_count() or 1) if workers is None else workers
        self.budget = budget
        self._on_restart = on_restart
        self._context = multiprocessing.get_context("forkserver")
        self._idle: list[_Worker] = []
        # A worker is driven from a thread of its own (sending, waiting, receiving block),
        # so that no other work waits behind a parse for a thread of the default executor.
        self._threads = ThreadPoolExecutor(max(self.count, 1), "monitor-parse")
        self._gate: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._closed = False

    async def parse(self, result: FetchResult) -> ParsedFeed:
        """Parse one fetched document; ParseError when it is not a feed, when its parse
        took longer than the budget and when the parser crashed on it."""
        parsed: ParsedFeed = await self._run(parse_document, result)
        return parsed

    async def extract(self, result: FetchResult) -> Article:
        """The main text of a fetched article page, in a worker like a feed (the extractor
        is as CPU-bound, and a hostile page as able to hang it); ParseError only when it
        took longer than the budget or crashed the worker."""
        # Only the start of a page is read (``MAX_HTML``): the rest need not cross the pipe.
        page = replace(result, body=result.body[:MAX_HTML])
        article: Article = await self._run(extract_article, page)
        return article

    async def _run(self, task: _Task, result: FetchResult) -> Any:
        job: _Job = (task, result.body, result.final_url, dict(result.headers))
        if not self.count:
            thread = asyncio.to_thread(task, job[1], url=job[2], headers=job[3])
            try:
                return await asyncio.wait_for(thread, self.budget)
            except TimeoutError:
                raise self._overtime(result.url) from None
        async with self._slots():
            return await self._in_worker(job, result.url)

    async def _in_worker(self, job: _Job, url: str) -> Any:
        loop = asyncio.get_running_loop()
        worker = self._idle.pop() if self._idle else None
        try:
            if worker is None:
                worker = await loop.run_in_executor(self._threads, _Worker, self._context)
            ok, value = await loop.run_in_executor(self._threads, worker.run, job, self.budget)
        except TimeoutError:
            self._restarted()
            raise self._overtime(url) from None
        except (EOFError, OSError):
            self._restarted()
            log.error("a parse worker died while parsing %s; starting another", url)
            raise ParseError(url, "the parser crashed on this document") from None
        except BaseException:  # cancelled: the worker may be mid-parse, so it goes
            if worker is not None:
                worker.kill()
            raise
        if self._closed:
            worker.stop()
        else:
            self._idle.append(worker)
        if ok:
            return value
        raise value

    def _restarted(self) -> None:
        if self._on_restart is not None:
            self._on_restart()

    def _overtime(self, url: str) -> ParseError:
        log.error("parsing %s took longer than %gs; its worker was stopped", url, self.budget)
        return ParseError(url, f"parsing took longer than {self.budget:g}s")

    def _slots(self) -> asyncio.Semaphore:
        """At most ``count`` documents in workers at once (one per worker)."""
        loop = asyncio.get_running_loop()
        if self._gate is None or self._gate[0] is not loop:
            self._gate = (loop, asyncio.Semaphore(self.count))
        return self._gate[1]

    def close(self) -> None:
        """Stop the idle workers now and the busy ones when their document is parsed."""
        self._closed = True
        while self._idle:
            self._idle.pop().stop()
        self._threads.shutdown(wait=False)


class _Worker:
    """A worker process and the pipe to it, driven by one thread at a time."""

    def __init__(self, context: BaseContext) -> None:
        """Start the process and wait until it can parse (its imports are not parsing, so
        they do not count against a budget)."""
        self.connection, child = context.Pipe()  # type: ignore[attr-defined]
        self.process = context.Process(  # type: ignore[attr-defined]
            target=_serve, args=(child,), name="monitor-parse", daemon=True
        )
        self.process.start()
        child.close()
        try:
            ready = self.connection.poll(_START_TIMEOUT) and self.connection.recv() == "ready"
        except EOFError:
            ready = False
        if not ready:
            self.stop()
            raise EOFError("a parse worker did not start")

    def run(self, job: _Job, budget: float) -> tuple[bool, Any]:
        """Send a document and wait for its outcome, at most ``budget`` seconds of
        parsing: (True, the ParsedFeed) or (False, the exception). TimeoutError when the
        budget was spent, EOFError or OSError when the worker died; either way the worker
        is stopped here, by the thread that uses its pipe."""
        try:
            self.connection.send(job)
            if not self.connection.poll(budget):
                raise TimeoutError
            outcome: tuple[bool, Any] = self.connection.recv()
            return outcome
        except BaseException:
            self.stop()
            raise

    def kill(self) -> None:
        """Kill the process (from any thread); the thread using the pipe sees it closed."""
        self.process.kill()

    def stop(self) -> None:
        self.process.kill()
        self.process.join()
        self.connection.close()


def parse_document(body: bytes, *, url: str, headers: dict[str, str]) -> ParsedFeed:
    """:func:`~monitor.parse.feed.parse_feed`, imported where it runs: in a worker, or in
    this process when it parses itself (``parse_workers: 0``). The service's own process
    then never loads feedparser while its workers parse."""
    from monitor.parse.feed import parse_feed

    return parse_feed(body, url=url, headers=headers)


def _serve(connection: Connection) -> None:
    """A worker process: parse each document received until the pipe closes."""
    # Ctrl-C reaches the whole process group; the service stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import monitor.parse.feed  # noqa: F401  # before "ready": not on the first document's clock

    connection.send("ready")
    while True:
        try:
            task, body, url, headers = connection.recv()
        except EOFError:
            return
        try:
            outcome: tuple[bool, Any] = (True, task(body, url=url, headers=headers))
        except Exception as exc:
            outcome = (False, exc)
        try:
            connection.send(outcome)
        except Exception as exc:  # an exception that does not pickle
            reason = f"the parser failed: {type(exc).__name__}"
            connection.send((False, ParseError(url, reason)))
