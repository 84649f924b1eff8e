"""When to poll a feed next: intervals, server hints, back-off and jitter.

Pure: takes ``now`` and a random source, returns a time. It does not talk to servers or the
database. The rules:
- after a success: the feed's interval, raised (never lowered) by the server's hints
  (``Cache-Control: max-age``, ``Expires``, RSS ``<ttl>``, ``sy:updatePeriod``) but a hint
  never raises it past ``ceiling``; plus up to ``jitter`` of the delay, so that feeds
  configured together drift apart instead of hitting servers in bursts;
- after consecutive failures: the interval doubled per failure, capped at ``max_backoff``;
  after a permanent failure (a refused address, a 404: trying again soon cannot help),
  ``max_backoff`` at once; never before a server's ``Retry-After``.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta


def next_poll_after_success(
    now: datetime,
    interval: float,
    *,
    hints: tuple[float | None, ...] = (),
    ceiling: float,
    jitter: float,
    rng: random.Random,
) -> datetime:
    delay = interval
    hinted = max((h for h in hints if h), default=0.0)
    if hinted > interval:
        delay = max(interval, min(hinted, ceiling))
    return now + timedelta(seconds=delay * (1 + rng.uniform(0, jitter)))


def next_poll_after_failure(
    now: datetime,
    interval: float,
    *,
    failures: int,
    max_backoff: float,
    retry_after: datetime | None,
    jitter: float,
    rng: random.Random,
    permanent: bool = False,
) -> datetime:
    ceiling = max(max_backoff, interval)
    exponent = min(max(failures - 1, 0), 30)
    delay = ceiling if permanent else min(interval * 2**exponent, ceiling)
    when = now + timedelta(seconds=delay * (1 + rng.uniform(0, jitter)))
    if retry_after is not None and retry_after > when:
        return retry_after
    return when
