"""Feed-health notices raised: the service's "health" chore.

Input: the store, the ``health:`` settings and the clock. Each run reads every polled
feed's health facts, asks :mod:`monitor.health` (pure) what to announce, and writes each
change with its notices, one delivery per ``health.notify`` channel (with none listed, the
health is still recorded, and nothing is raised). Returns how many notices it raised.

Every instance runs it: a change two instances decide together is written by one (the
store's version check), so each notice is raised once, and the health lives in the
database, so a restart raises nothing again. It sends nothing: the outbox sends notices
with the alerts, with the same leases, retries and one-at-a-time per channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from httpfields import redact_url
from monitor.config_ops import HealthConfig
from monitor.health import HealthRules, decide_health
from monitor.store import Store

log = logging.getLogger("monitor.health")


def health_rules(config: HealthConfig) -> HealthRules:
    return HealthRules(
        failing_after=config.failing_after,
        silent_factor=config.silent_factor,
        silent_after=config.silent_after,
    )


async def raise_notices(store: Store, config: HealthConfig, clock: Callable[[], datetime]) -> int:
    """One pass over the feeds; returns the number of notices raised (one per change and
    channel)."""
    rules = health_rules(config)
    facts = await asyncio.to_thread(store.health_facts)
    now = clock()
    raised = 0
    for feed in facts:
        change = decide_health(feed, rules, now)
        if change is None:
            continue
        if not await asyncio.to_thread(store.change_health, change, config.notify, now):
            continue  # another instance wrote this change first
        raised += len(change.notices) * len(config.notify)
        for notice in change.notices:
            # The URL only: a feed's title is the feed's to choose, the log is ours.
            log.warning(
                "feed=%s health notice=%s channels=%d",
                redact_url(feed.current_url),
                notice.kind,
                len(config.notify),
            )
    return raised
