"""The service's clock: the only module that imports APScheduler.

APScheduler 3 runs two short in-memory interval jobs. The schedule of each feed lives in
the database (``feeds.next_poll_at``), not in APScheduler: every tick claims the feeds that
are due with a lease, so one feed is never polled twice at once, and several instances
share one PostgreSQL. Polls run as tasks so that a slow feed never holds up the tick.

Several instances share the work by each claiming no more than it can start:
at most its free slots (``polling.max_concurrency`` polls at once), again as soon as some
are free while more is due. Light load is shared by chance: each tick claims at a random
moment within the tick, so no instance is always the first to look after feeds fall due,
whatever the phases of their ticks.

On stop, no new work is claimed, the polls and deliveries under way finish (their database
writes complete), and only then does :meth:`Service.run` return. A reload of the
configuration (:meth:`Service.reload`) drains the same way, has the app rebuild its parts,
and goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.app import App, Chore
from monitor.config import Settings
from monitor.types import ClaimedFeed, utcnow

log = logging.getLogger("monitor.service")


class Service:
    """Runs an :class:`App`'s pipeline and outbox on the tick until stopped."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.tick = app.settings.service.tick  # changing it needs a restart
        self.tasks: set[asyncio.Task[object]] = set()
        self.polls = 0
        self._freed = asyncio.Event()  # set when a poll ends
        self._draining = asyncio.Event()  # set while stopping or pausing
        self.rng = random.Random()
        self.claiming: asyncio.Task[object] | None = None
        self.delivering: asyncio.Task[object] | None = None
        self.chores: dict[str, asyncio.Task[object]] = {}
        self.ticked_at = time.monotonic()  # the last poll tick (readiness reads the lag)
        self.stopping = False
        self.paused = False
        self._pausing = asyncio.Lock()
        app.metrics.watch_ticks(self.tick_lag)

    def tick_lag(self) -> float:
        """Seconds the next poll tick is overdue: 0 while the scheduler keeps time. The
        tick's own interval is allowed for, so a long ``service.tick`` is not lag."""
        return max(0.0, time.monotonic() - self.ticked_at - self.tick)

    def _spawn(self, coro: Coroutine[object, object, object]) -> asyncio.Task[object]:
        """Work runs in tasks we own, not in the scheduler's jobs: APScheduler cancels the
        jobs still running when it shuts down, and a poll must finish its writes."""
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def poll_tick(self) -> None:
        self.ticked_at = time.monotonic()
        if self._idle and (self.claiming is None or self.claiming.done()):
            # Instances that claim at fixed moments split light load by their phases: the
            # one that looks first after feeds fall due takes nearly all of them.
            delay = self.rng.uniform(0, self.tick)
            self.claiming = self._spawn(self._claim_and_poll(delay))

    async def deliver_tick(self) -> None:
        if self._idle and (self.delivering is None or self.delivering.done()):
            self.delivering = self._spawn(self._deliver())

    async def chore_tick(self, chore: Chore) -> None:
        running = self.chores.get(chore.name)
        if self._idle and (running is None or running.done()):
            self.chores[chore.name] = self._spawn(self._chore(chore))

    async def _chore(self, chore: Chore) -> None:
        try:
            await chore.run()
        except Exception:
            log.exception("%s failed; trying again in %ss", chore.name, chore.every)

    @property
    def _idle(self) -> bool:
        return not self.stopping and not self.paused

    async def paused_for(self, change: Callable[[], Awaitable[None]]) -> None:
        """Run ``change`` while nothing runs: claim no new work, let the polls and the
        delivery pass under way finish, change, go on. Due work is not lost, only delayed:
        it stays due in the database. One change at a time."""
        async with self._pausing:
            self.paused = True
            try:
                await self._drain()
                await change()
            finally:
                self.paused = False
                self._draining.clear()

    async def reload(self, settings: Settings) -> list[str]:
        """Apply a new configuration between polls; returns what changed, for the log.

        Claims stop, the work under way finishes, the app rebuilds its parts, claims go on.
        A configuration the app refuses (:class:`~monitor.errors.ConfigError`) changes
        nothing, and the service goes on with the running one."""
        changes: list[str] = []

        async def apply() -> None:
            changes.extend(await self.app.reload(settings))

        await self.paused_for(apply)
        return changes

    @property
    def slots(self) -> int:
        """Polls run at once: as many as are fetched at once. A feed claimed beyond that
        would wait here while another instance sharing the database has room for it."""
        return self.app.settings.polling.max_concurrency

    async def _claim_and_poll(self, delay: float) -> None:
        """After ``delay`` (cut short by a stop or a pause), claim due feeds into the free
        slots. A claim that fills them suggests more is due: claim again once a quarter of
        the slots are free, not at the next tick, so a busy instance stays busy (claiming
        once a tick capped one at ``slots`` feeds per tick)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._draining.wait(), delay)
        room = self.slots - self.polls
        while room > 0 and self._idle:
            try:
                feeds = await self.app.pipeline.claim_feeds(only_due=True, limit=room)
            except Exception:
                log.exception("cannot claim due feeds; trying again next tick")
                return
            for feed in feeds:
                self.polls += 1
                self._spawn(self._poll(feed))
            if len(feeds) < room:
                return  # every due feed is under way
            batch = max(1, self.slots // 4)
            while self._idle and self.slots - self.polls < batch:
                self._freed.clear()
                await self._freed.wait()
            room = self.slots - self.polls

    async def _poll(self, feed: ClaimedFeed) -> None:
        try:
            await self.app.pipeline.poll_feed(feed)
        finally:
            self.polls -= 1
            self._freed.set()

    async def _deliver(self) -> None:
        try:
            await self.app.outbox.deliver_due()
        except Exception:
            log.exception("delivery pass failed; trying again next tick")

    async def run(self, stop: asyncio.Event) -> None:
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone="UTC")
        for job in (self.poll_tick, self.deliver_tick):
            scheduler.add_job(
                job,
                "interval",
                seconds=self.tick,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=utcnow(),
            )
        for chore in self.app.chores():
            scheduler.add_job(
                self.chore_tick,
                "interval",
                args=(chore,),
                seconds=chore.every,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=utcnow(),
            )
        scheduler.start()
        log.info("service started: tick=%ss", self.tick)
        try:
            await stop.wait()
        finally:
            self.stopping = True
            scheduler.shutdown(wait=False)
            await self._drain()
            log.info("service stopped")

    async def _drain(self) -> None:
        self._draining.set()
        if self.tasks:
            log.info("finishing %d task(s) in flight", len(self.tasks))
        while self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
