"""The service's clock: the only module that imports APScheduler.

APScheduler 3 runs two short in-memory interval jobs. The schedule of each feed lives in
the database (``feeds.next_poll_at``), not in APScheduler: every tick claims the feeds that
are due with a lease, so one feed is never polled twice at once, and several instances can
later share one PostgreSQL. Polls run as tasks so that a slow feed never holds up the tick;
the tick only starts new polls while fewer than ``max_inflight`` are running.

On stop, no new work is claimed, the polls and deliveries under way finish (their database
writes complete), and only then does ``run_service`` return.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.pipeline import Pipeline

log = logging.getLogger("monitor.service")


class Service:
    def __init__(self, pipeline: Pipeline, *, tick: float, max_inflight: int) -> None:
        self.pipeline = pipeline
        self.tick = tick
        self.max_inflight = max_inflight
        self.polls: set[asyncio.Task[object]] = set()
        self.delivering: asyncio.Task[int] | None = None
        self.stopping = False

    async def poll_tick(self) -> None:
        room = self.max_inflight - len(self.polls)
        if self.stopping or room <= 0:
            return
        try:
            feeds = await self.pipeline.claim_feeds(only_due=True, limit=room)
        except Exception:
            log.exception("cannot claim due feeds; trying again next tick")
            return
        for feed in feeds:
            task = asyncio.create_task(self.pipeline.poll_feed(feed))
            self.polls.add(task)
            task.add_done_callback(self.polls.discard)

    async def deliver_tick(self) -> None:
        if self.stopping:
            return
        self.delivering = asyncio.create_task(self.pipeline.deliver_due())
        try:
            await self.delivering
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
                next_run_time=datetime.now(UTC),
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
        pending = [*self.polls, *([self.delivering] if self.delivering else [])]
        if pending:
            log.info("finishing %d task(s) in flight", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)
