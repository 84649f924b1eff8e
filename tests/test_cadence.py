"""Next-poll times: server hints raise the interval up to a ceiling; failures back off."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from monitor.cadence import next_poll_after_failure, next_poll_after_success

NOW = datetime(2026, 11, 25, tzinfo=UTC)
RNG = random.Random(1)


def delay(when: datetime) -> float:
    return (when - NOW).total_seconds()


def test_interval_without_hints() -> None:
    assert delay(next_poll_after_success(NOW, 600, ceiling=3600, jitter=0, rng=RNG)) == 600


def test_hint_raises_interval_but_never_past_ceiling() -> None:
    raised = next_poll_after_success(NOW, 600, hints=(1800, None), ceiling=3600, jitter=0, rng=RNG)
    assert delay(raised) == 1800
    capped = next_poll_after_success(NOW, 600, hints=(86400,), ceiling=3600, jitter=0, rng=RNG)
    assert delay(capped) == 3600


def test_hint_never_lowers_interval() -> None:
    when = next_poll_after_success(NOW, 600, hints=(60,), ceiling=3600, jitter=0, rng=RNG)
    assert delay(when) == 600


def test_jitter_only_adds_up_to_its_fraction() -> None:
    delays = [
        delay(next_poll_after_success(NOW, 600, ceiling=3600, jitter=0.1, rng=RNG))
        for _ in range(200)
    ]
    assert all(600 <= d <= 660 for d in delays) and len(set(delays)) > 100


def test_failures_back_off_exponentially_up_to_cap() -> None:
    def after(failures: int) -> float:
        return delay(
            next_poll_after_failure(
                NOW, 60, failures=failures, max_backoff=3600, retry_after=None, jitter=0, rng=RNG
            )
        )

    assert [after(n) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert after(20) == 3600


def test_retry_after_is_a_floor() -> None:
    later = NOW + timedelta(hours=2)
    when = next_poll_after_failure(
        NOW, 60, failures=1, max_backoff=3600, retry_after=later, jitter=0, rng=RNG
    )
    assert when == later
