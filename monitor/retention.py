"""Retention's chore: prune items older than ``retention.items``, then forget stale tombstones.

Input: the store, the retention settings and the clock (the service's, so tests and several
instances agree on time). Output: a :class:`PruneReport` and one log line. Each batch is one
short transaction (``retention.batch`` rows) run in a worker thread: polls and deliveries
go on between batches, and nothing holds the database for long. A run stops after its time
budget and the next run carries on, so a first prune of years of items cannot keep the
service from stopping. Which items may go, and the tombstones, are the store's rules
(:mod:`monitor.store.retention`); this module does not schedule itself (the service runs it
as a chore, ``App.chores``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from monitor.config_ops import RetentionConfig, StoriesConfig
from monitor.store import Store
from monitor.types import frozen

log = logging.getLogger("monitor.retention")

RUN_BUDGET = 60.0  # seconds of pruning per run; the rest waits for the next one


@frozen
class PruneReport:
    """One run: items pruned, tombstones forgotten, items past their age kept for a
    delivery still to be made, transactions, and whether everything due was done."""

    pruned: int = 0
    forgotten: int = 0
    story_keys: int = 0  # members whose index rows left the stories window
    held: int = 0
    batches: int = 0
    done: bool = True


async def prune_old_items(
    store: Store,
    retention: RetentionConfig,
    clock: Callable[[], datetime],
    *,
    stories: StoriesConfig | None = None,
    budget: float = RUN_BUDGET,
) -> PruneReport:
    """Prune what ``retention`` says is due, batch by batch, for at most about
    ``budget`` seconds (at least one batch), then forget stale tombstones the same way.
    ``items: null`` keeps everything. First, the stories index drops what left its
    window (whatever ``items`` says: it is only ever read within the window)."""
    started = time.monotonic()
    batches = 0

    async def drain(step: Callable[[], int]) -> tuple[int, bool]:
        nonlocal batches
        total = 0
        while True:
            count = await asyncio.to_thread(step)
            batches += 1
            total += count
            if count < retention.batch:
                return total, True
            if time.monotonic() - started >= budget:
                return total, False

    keys = 0
    if stories is not None and stories.enabled:
        window = timedelta(seconds=stories.window)
        keys, _ = await drain(lambda: store.prune_story_keys(clock() - window, retention.batch))
    if retention.items is None:
        report = PruneReport(story_keys=keys, batches=batches)
        _log_run(report, (time.monotonic() - started) * 1000)
        return report
    before = clock() - timedelta(seconds=retention.items)
    pruned, done = await drain(lambda: store.prune_items(before, clock(), retention.batch))
    forgotten = 0
    if done:
        # A tombstone goes once its feed has not served the key for a retention period.
        forgotten, done = await drain(lambda: store.forget_pruned(before, retention.batch))
    held = await asyncio.to_thread(store.count_held_items, before)
    report = PruneReport(
        pruned=pruned, forgotten=forgotten, story_keys=keys, held=held, batches=batches, done=done
    )
    _log_run(report, (time.monotonic() - started) * 1000)
    return report


def _log_run(r: PruneReport, ms: float) -> None:
    fields = (
        f"retention pruned={r.pruned} forgotten={r.forgotten} story_keys={r.story_keys} "
        f"held={r.held} "
        f"batches={r.batches} done={'yes' if r.done else 'no'} ms={ms:.0f}"
    )
    if r.pruned or r.forgotten or r.story_keys or r.held or not r.done:
        log.info("%s", fields)
    else:
        log.debug("%s", fields)
