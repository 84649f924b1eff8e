"""When to try a delivery again: a fixed schedule with jitter, and the receiver's Retry-After.

Input: how many attempts were made, the time of the last one and the receiver's wish;
output: the time of the next attempt, or None when the schedule is exhausted (the delivery
is dead). Pure: no clock, no database; the outbox passes ``now`` and stores the answer.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

# Svix's schedule (docs.svix.com/retries): immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
# 10 h. Eight attempts over about 27.5 hours: long enough to ride out a receiver's
# overnight outage, short enough that a dead endpoint stops costing work the next day.
DEFAULT_SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)

# A receiver may ask for any Retry-After; one day keeps a typo ("Retry-After: 99999999")
# from parking a delivery for years while still honouring any sane request.
MAX_RETRY_AFTER = 86400.0


class RetryPolicy:
    """``schedule[n]`` is the delay before attempt n+1, counted from the previous attempt.

    ``schedule[0]`` is the delay of the first attempt (0: at once); ``len(schedule)`` is the
    most attempts a delivery gets. Jitter spreads retries of many alerts that failed
    together (one receiver outage) so they do not come back as a burst.
    """

    __slots__ = ("jitter", "schedule")

    def __init__(self, schedule: Sequence[float] = DEFAULT_SCHEDULE, jitter: float = 0.1) -> None:
        if not schedule:
            raise ValueError("a retry schedule needs at least one attempt")
        if any(delay < 0 for delay in schedule):
            raise ValueError("retry delays must be >= 0")
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be a fraction in [0, 1)")
        self.schedule = tuple(float(delay) for delay in schedule)
        self.jitter = jitter

    @classmethod
    def from_retries(cls, retries: Sequence[float] | None, jitter: float = 0.1) -> RetryPolicy:
        """Build the policy for a channel's ``retry:`` setting.

        The setting lists the waits between attempts after the first, immediate one
        (``retry: [1m, 10m]`` = 3 attempts); None means the default schedule.
        """
        if retries is None:
            return cls(DEFAULT_SCHEDULE, jitter)
        return cls((0.0, *retries), jitter)

    @property
    def max_attempts(self) -> int:
        return len(self.schedule)

    def next_attempt(
        self,
        attempts_made: int,
        now: datetime,
        retry_after: float | None,
        rng: random.Random | None = None,
    ) -> datetime | None:
        """When attempt ``attempts_made + 1`` is due, or None if the schedule is used up.

        ``retry_after`` (seconds, from the receiver) wins when it is later than the
        scheduled delay, up to MAX_RETRY_AFTER; it never shortens the schedule.
        """
        if attempts_made < 0:
            raise ValueError("attempts_made must be >= 0")
        if attempts_made >= len(self.schedule):
            return None
        delay = self.schedule[attempts_made]
        if delay and self.jitter:
            delay *= 1 + (rng or random).uniform(-self.jitter, self.jitter)
        if retry_after is not None and retry_after > 0:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return now + timedelta(seconds=delay)
