"""Parse workers: feed parsing off the event loop, on every core, within a time budget.

feedparser is CPU-bound and holds the GIL, so the service parses in worker processes, one
document at a time each. A worker still parsing when the document's budget is spent (a
document that is slow to parse, whatever the reason) is killed and replaced, and so is one
that dies (out of memory on a hostile document, a segfault in a C extension): one bad feed
costs one failed poll, and no claim on a feed outlives its lease because of a parse. The
processes are our own, not a ``ProcessPoolExecutor``'s: that cannot stop one task, and a
dead worker breaks it for good. Article pages of full-text feeds
(:mod:`monitor.parse.article`) are extracted by the same workers, under the same budget.

Memory, not CPU, is what a quiet service runs short of, so workers are few and plain:

- Each is a fresh interpreter (``python -m monitor.parse.serve``, started by
  ``subprocess``, whose fork-and-exec is safe in a process that runs threads), talking
  over a socket pair. multiprocessing's ``forkserver`` would add a server process and a
  resource tracker (some 7 MB each) that parse nothing, and would run the service's main
  module again in the server. A worker imports only the parsers, and exits when its
  connection closes, so it never outlives the service, however that ends.
- Workers start when documents need them and retire when idle. A busy spell (the first
  pass over every feed) starts up to ``count``, one per core; the most recently used idle
  worker takes the next document, so in a steady state (mostly 304s, a document a second)
  one worker stays warm and the rest are stopped: the last one alive once idle past
  ``idle_timeout``, a surplus one (idle while another is alive) after ``surplus_timeout``,
  so that a busy spell's memory is handed back within seconds of its end. A document that
  finds every worker busy waits up to ``patience`` (from its arrival) for one to finish
  before another is started: two documents meeting now and then (at 5% of 1,000 feeds
  changing a minute, about twice a minute) would otherwise keep a second worker from ever
  idling long enough to retire. A start costs some tenths of a second, not counted against
  the budget.

With ``workers=0`` parsing runs in a thread instead (tests, tiny deployments). A thread
cannot be killed: the poll still fails once the budget is spent, but the thread parses on
to the end, holding a core meanwhile. Where feeds may be hostile, parse in processes.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import functools
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from monitor.errors import ParseError
from monitor.parse.article import MAX_HTML, Article, extract_article
from monitor.parse.serve import parse_document
from monitor.types import FetchResult, ParsedFeed

log = logging.getLogger("monitor.parse.workers")

DEFAULT_BUDGET = 20.0
# Long enough that a worker serving a document a minute or so stays, short enough that the
# surplus of a busy spell does not hold memory for long.
DEFAULT_IDLE_TIMEOUT = 60.0
# A worker idle while another is alive: the busy spell that started it is over, and the one
# kept serves the stream after it (a second start costs some tenths of a CPU second).
DEFAULT_SURPLUS_TIMEOUT = 10.0
# A parse takes milliseconds (tens for a whole document): waiting up to this long for a
# busy worker is cheaper than starting (and keeping) another, on a loaded or slow machine
# too (a poll is due once a minute, not to the second), and a backlog (the first pass)
# still starts them.
DEFAULT_PATIENCE = 1.0
_START_TIMEOUT = 60.0  # a new worker imports the parsers before it says it is ready
# A document, as a worker receives it: what to do with it (``parse_document`` or
# ``extract_article``, sent by reference, perhaps with the feed's fingerprint bound), body,
# URL (the base for links), headers.
_Task = Callable[..., Any]
_Job = tuple[_Task, bytes, str, dict[str, str]]


class ParseWorkers:
    def __init__(
        self,
        workers: int | None,
        budget: float = DEFAULT_BUDGET,
        on_restart: Callable[[], None] | None = None,
        *,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        surplus_timeout: float = DEFAULT_SURPLUS_TIMEOUT,
        patience: float = DEFAULT_PATIENCE,
    ) -> None:
        """``workers``: None = one per core; 0 = parse in a thread of this process.
        ``budget``: the seconds one document may take to parse. ``on_restart`` is called
        each time a worker is killed or found dead (the service counts them).
        ``idle_timeout``: the seconds a worker may wait for a document before it stops;
        ``surplus_timeout``: the same for a worker idle while another is alive.
        ``patience``: the seconds a document waits for a busy worker before another starts."""
        self.count = (os.cpu_count() or 1) if workers is None else workers
        self.budget = budget
        self.idle_timeout = idle_timeout
        self.surplus_timeout = min(surplus_timeout, idle_timeout)
        self.patience = patience
        self._busy = 0  # workers taken for a document (starting, parsing, handed over)
        # Documents waiting for a busy worker to finish, oldest first.
        self._waiting: collections.deque[asyncio.Future[_Worker]] = collections.deque()
        self._on_restart = on_restart
        # A stack: the worker used last on top, so that surplus workers sink, stay idle and
        # retire; the bottom one has been idle longest.
        self._idle: list[_Worker] = []
        self._retiring: asyncio.TimerHandle | None = None  # on the loop of the last release
        # A worker is driven from a thread of its own (sending, waiting, receiving block),
        # so that no other work waits behind a parse for a thread of the default executor.
        self._threads = ThreadPoolExecutor(max(self.count, 1), "monitor-parse")
        self._gate: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._closed = False

    async def parse(self, result: FetchResult, *, known: bytes | None = None) -> ParsedFeed:
        """Parse one fetched document, leaving out the items ``known`` recorded
        (:mod:`monitor.parse.unchanged`); ParseError when it is not a feed, when its parse
        took longer than the budget and when the parser crashed on it."""
        task = functools.partial(parse_document, known=known) if known else parse_document
        parsed: ParsedFeed = await self._run(task, result)
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
        arrived = time.monotonic()
        async with self._slots():
            return await self._in_worker(job, result.url, arrived)

    async def _in_worker(self, job: _Job, url: str, arrived: float) -> Any:
        worker = await self._take(arrived)
        outcome: tuple[bool, Any] | None = None
        try:
            outcome = await self._send(worker, job)
        except TimeoutError:
            self._restarted()
            raise self._overtime(url) from None
        except (EOFError, OSError):
            self._restarted()
            log.error("a parse worker died while parsing %s; starting another", url)
            raise ParseError(url, "the parser crashed on this document") from None
        finally:
            if outcome is None:  # the worker is gone: killed, crashed, or cancelled
                self._busy -= 1
        self._release(worker)
        ok, value = outcome
        if ok:
            return value
        raise value

    async def _take(self, arrived: float) -> _Worker:
        """A worker for one document, counted busy from now until it is released: one
        starting or handed over from one document to the next counts, or a document
        arriving meanwhile would find none busy and start another.

        While one is busy, a document waits (``patience``) for it before taking an idle
        one, so that a surplus worker stays idle and retires: documents meeting now and
        then need no second worker. Patience counts from the document's arrival: one that
        queued for a slot that long (a burst, such as the first pass) starts another at once.
        No idle worker means that all alive are busy, fewer than ``count`` (the slots)."""
        patience = self.patience - (time.monotonic() - arrived)
        if self._busy and patience > 0:
            handed = await self._handed_over(patience)
            if handed is not None:
                return handed  # still counted: the count of its last document carries on
        worker = self._idle.pop() if self._idle else None
        self._busy += 1
        if worker is None:
            try:
                worker = await self._start()
            except BaseException:
                self._busy -= 1
                raise
        return worker

    async def _handed_over(self, patience: float) -> _Worker | None:
        """The next worker to finish, if one does within ``patience`` seconds."""
        waiting: asyncio.Future[_Worker] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiting)
        try:
            return await asyncio.wait_for(waiting, patience)
        except TimeoutError:
            return None
        except asyncio.CancelledError:  # a worker handed over meanwhile goes to the next
            if waiting.done() and not waiting.cancelled():
                self._release(waiting.result())
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiting.remove(waiting)

    async def _start(self) -> _Worker:
        """A new worker, started in a thread (it takes some tenths of a second); one whose
        document was cancelled meanwhile is stopped once it has started."""
        started = self._threads.submit(_Worker)
        try:
            return await asyncio.wrap_future(started)
        except asyncio.CancelledError:
            started.add_done_callback(_stop_started)
            raise

    async def _send(self, worker: _Worker, job: _Job) -> tuple[bool, Any]:
        """The outcome of ``job`` in ``worker``, from a thread. Cancelled, the worker is
        killed at once (it may be mid-parse) and reaped when its thread is done with it
        (the thread may not even have started, and then nothing else would)."""
        running = self._threads.submit(worker.run, job, self.budget)
        try:
            return await asyncio.wrap_future(running)
        except asyncio.CancelledError:
            worker.kill()
            running.add_done_callback(lambda _: worker.stop())
            raise

    def _release(self, worker: _Worker) -> None:
        """Hand the worker to the next document waiting (it stays busy), else make it idle."""
        if self._closed:
            self._busy -= 1
            worker.stop()
            return
        while self._waiting:
            waiting = self._waiting.popleft()
            if not waiting.done():
                waiting.set_result(worker)
                return
        self._busy -= 1
        worker.idle_since = time.monotonic()
        self._idle.append(worker)
        self._retire_idle()

    def _retire_idle(self) -> None:
        """Stop the idle workers whose time is up (the bottom of the stack first: it has
        been idle longest), and wake up again when the next one's will be: a timer, not a
        thread that polls. The timer is set again at each release, as a worker coming to
        rest above the bottom one makes that one surplus, and its time shorter."""
        now = time.monotonic()
        while self._idle and now >= self._retires_at(self._idle[0]):
            self._idle.pop(0).stop()
        if self._retiring is not None:
            self._retiring.cancel()
            self._retiring = None
        if self._idle and not self._closed:
            wait = self._retires_at(self._idle[0]) - now
            self._retiring = asyncio.get_running_loop().call_later(wait, self._woken)

    def _retires_at(self, bottom: _Worker) -> float:
        """When the bottom idle worker stops: sooner if another is alive (idle or busy)."""
        alone = len(self._idle) == 1 and not self._busy
        return bottom.idle_since + (self.idle_timeout if alone else self.surplus_timeout)

    def _woken(self) -> None:
        self._retiring = None
        self._retire_idle()

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
        if self._retiring is not None:
            self._retiring.cancel()
            self._retiring = None
        while self._idle:
            self._idle.pop().stop()
        self._threads.shutdown(wait=False)


class _Worker:
    """A worker process and the connection to it, driven by one thread at a time."""

    def __init__(self) -> None:
        """Start the process and wait until it can parse (its imports are not parsing, so
        they do not count against a budget)."""
        self.idle_since = 0.0
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [*_interpreter(), "-m", "monitor.parse.serve", str(theirs.fileno())],
                stdin=subprocess.DEVNULL,  # stdout and stderr are the service's: crashes show
                pass_fds=(theirs.fileno(),),
                env={**os.environ, "PYTHONPATH": os.pathsep.join(map(os.path.abspath, sys.path))},
                # Ctrl-C at a terminal goes to the service alone, which stops its workers.
                process_group=0,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.connection = Connection(ours.detach())
        try:
            ready = self.connection.poll(_START_TIMEOUT) and self.connection.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.stop()
            raise EOFError("a parse worker did not start")

    def run(self, job: _Job, budget: float) -> tuple[bool, Any]:
        """Send a document and wait for its outcome, at most ``budget`` seconds of
        parsing: (True, the ParsedFeed) or (False, the exception). TimeoutError when the
        budget was spent, EOFError or OSError when the worker died; either way the worker
        is stopped here, by the thread that uses its connection."""
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
        """Kill the process (from any thread); the thread using the connection sees it
        closed."""
        self.process.kill()

    def stop(self) -> None:
        """Kill the process and reap it (no zombie is left)."""
        self.process.kill()
        self.process.wait()
        self.connection.close()


def _interpreter() -> list[str]:
    """This interpreter, finding the modules this process finds (its ``sys.path``, passed
    as ``PYTHONPATH``) and no others: ``-P``, so that the working directory does not come
    first."""
    flags = ["-B"] if sys.dont_write_bytecode else []
    return [sys.executable, "-P", *flags]


def _stop_started(started: concurrent.futures.Future[_Worker]) -> None:
    if not started.cancelled() and started.exception() is None:
        started.result().stop()
