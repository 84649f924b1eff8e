"""Feed health, the decision: is a feed failing, silent, gone or moved, and what to announce.

Input: a feed's facts as stored (its polling state, its last success, the gaps between its
recent arrivals, the health last announced), the rules (``health:`` settings) and ``now``.
Output: a :class:`~monitor.store.health.HealthChange` (the feed's new health and the
notices it raises), or None when there is nothing to announce.

The rules:

- **failing**: its polls fail (state ``error``) and its last successful poll (or, if it
  never had one, its addition) is more than ``failing_after`` ago. A feed failing for less
  keeps what was announced: a short outage is no news.
- **silent**: polled fine, but no poll has brought a new item for more than
  ``max(silent_factor × usual gap, silent_after)``. The usual gap is learned from the feed's
  own history, as Huginn's ``expected_update_period`` is set by hand: the median of the
  gaps between its last polls that brought new items (a median, so one busy or one quiet
  day does not move it), and only once it has MIN_GAPS of them. Silence is measured up to
  the last successful poll, not to now: a feed that was not polled (paused, the service
  stopped) has not been seen to be silent.
- **gone**: it answered 410 Gone. **moved**: its current URL is not the one announced
  last (at first, the configured one); a notice of its own, beside its health.
- **recovered**: healthy again (polled fine, not silent) after any of the three.

Each notice announces the feed's new health, so one change raises one notice: failing for
days raises "failing" once, and "recovered" when a poll works again (or "silent" if the
feed still brings nothing new). A paused, removed or never-polled feed raises nothing.
Notice ids follow from the feed, its health version and the kind: the same decision made
by two instances is the same notice, and only one of them can write it (the version).

Pure, like :mod:`monitor.decide`: no database, no network, no clock of its own.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Sequence
from datetime import datetime

from alerts.base import AlertFeed, Notice, NoticeKind
from alerts.durations import format_duration
from alerts.render import utc_clock
from httpfields import redact_url
from monitor.store.health import FeedHealth, FeedHealthFacts, HealthChange
from monitor.types import FeedState, frozen

NOTICE_NAMESPACE = uuid.UUID("3f0c9a52-7d1e-4b6a-8e2f-51c4a7b9d603")
MIN_GAPS = 5  # gaps between arrivals (six polls bringing items) before silence can be judged
_KINDS = {
    FeedHealth.OK: NoticeKind.RECOVERED,
    FeedHealth.FAILING: NoticeKind.FAILING,
    FeedHealth.SILENT: NoticeKind.SILENT,
    FeedHealth.GONE: NoticeKind.GONE,
}


@frozen
class HealthRules:
    """The ``health:`` settings the decision reads, in seconds."""

    failing_after: float
    silent_factor: float
    silent_after: float


@frozen
class Verdict:
    """A feed's health as its facts show it now."""

    health: FeedHealth
    since: datetime
    detail: str


def usual_gap(gaps: Sequence[float]) -> float | None:
    """The feed's usual gap between polls that brought new items, in seconds; None while
    its history is too short to tell."""
    return statistics.median(gaps) if len(gaps) >= MIN_GAPS else None


def silence_bound(gaps: Sequence[float], rules: HealthRules) -> float | None:
    """How long without a new item makes this feed silent; None: not known yet."""
    gap = usual_gap(gaps)
    return None if gap is None else max(rules.silent_factor * gap, rules.silent_after)


def assess(facts: FeedHealthFacts, rules: HealthRules, now: datetime) -> Verdict | None:
    """The feed's health now; None when its facts do not settle it (never polled, or
    failing for less than ``failing_after``)."""
    if facts.state == FeedState.GONE:
        since = facts.last_polled_at or now
        return Verdict(health=FeedHealth.GONE, since=since, detail=facts.last_error or "HTTP 410")
    if facts.state == FeedState.ERROR:
        since = facts.last_success_at or facts.created_at
        failing = (now - since).total_seconds()
        if failing <= rules.failing_after:
            return None
        never = "" if facts.last_success_at else " (it never had one)"
        error = facts.last_error or "unknown"
        detail = f"no successful poll for {duration(failing)}{never}; last error: {error}"
        return Verdict(health=FeedHealth.FAILING, since=since, detail=detail)
    if facts.state == FeedState.OK:
        return _silent(facts, rules) or Verdict(
            health=FeedHealth.OK, since=facts.last_success_at or now, detail=""
        )
    return None


def _silent(facts: FeedHealthFacts, rules: HealthRules) -> Verdict | None:
    bound = silence_bound(facts.gaps, rules)
    if bound is None or facts.last_arrival_at is None or facts.last_success_at is None:
        return None
    quiet = (facts.last_success_at - facts.last_arrival_at).total_seconds()
    if quiet <= bound:
        return None
    detail = (
        f"no new item for {duration(quiet)} of successful polls; it usually brings one every "
        f"{duration(usual_gap(facts.gaps) or 0)} (the median of its last {len(facts.gaps)} "
        f"gaps), so {duration(bound)} without one is unusual"
    )
    return Verdict(health=FeedHealth.SILENT, since=facts.last_arrival_at, detail=detail)


def decide_health(facts: FeedHealthFacts, rules: HealthRules, now: datetime) -> HealthChange | None:
    """What to announce about one feed now, and the health to record with it."""
    if not facts.watched or facts.state == FeedState.NEW:
        return None
    verdict = assess(facts, rules, now)
    notices: list[Notice] = []
    health, since, url = facts.health, facts.health_since, facts.health_url
    if verdict is not None and verdict.health != facts.health:
        notices.append(_health_notice(facts, verdict, now))
        health, since = verdict.health, verdict.since
    announced = facts.health_url or facts.url
    if facts.current_url != announced:
        notices.append(_moved_notice(facts, announced, now))
        url = facts.current_url
    if not notices:
        return None
    return HealthChange(
        feed_id=facts.id,
        version=facts.version,
        health=health,
        since=since,
        url=url,
        notices=tuple(notices),
    )


def notice_id(facts: FeedHealthFacts, kind: NoticeKind) -> str:
    """Stable for one change of one feed: the same whichever instance decides it."""
    return str(uuid.uuid5(NOTICE_NAMESPACE, f"{facts.id}\x1f{facts.version}\x1f{kind}"))


def _feed(facts: FeedHealthFacts) -> AlertFeed:
    # Receivers get the URL without the credentials it may carry.
    return AlertFeed(name=facts.name, url=redact_url(facts.current_url))


def _health_notice(facts: FeedHealthFacts, verdict: Verdict, now: datetime) -> Notice:
    kind = _KINDS[verdict.health]
    detail, since, recovered_from = verdict.detail, verdict.since, None
    if kind == NoticeKind.RECOVERED:
        recovered_from = _KINDS[facts.health]
        if facts.health == FeedHealth.SILENT and facts.last_arrival_at is not None:
            since = facts.last_arrival_at
        was = f" since {utc_clock(facts.health_since)}" if facts.health_since else ""
        detail = f"healthy again at {utc_clock(since)}; it was {recovered_from}{was}"
    return Notice(
        id=notice_id(facts, kind),
        kind=kind,
        feed=_feed(facts),
        since=since,
        detail=detail,
        recovered_from=recovered_from,
        created_at=now,
    )


def _moved_notice(facts: FeedHealthFacts, announced: str, now: datetime) -> Notice:
    old, new = redact_url(announced), redact_url(facts.current_url)
    return Notice(
        id=notice_id(facts, NoticeKind.MOVED),
        kind=NoticeKind.MOVED,
        feed=_feed(facts),
        since=facts.last_success_at or now,
        detail=f"permanently redirected from {old} to {new}; polled at the new URL from now on",
        previous_url=old,
        created_at=now,
    )


def duration(seconds: float) -> str:
    """``10h``, ``1d1h``: to the minute (a gap measured between polls is no finer)."""
    if seconds < 60:
        return f"{max(0, round(seconds))}s"
    return format_duration(round(seconds / 60) * 60)
