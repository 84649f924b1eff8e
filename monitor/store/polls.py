"""Each feed's poll history: its last polls and its last failed polls, for the dashboard.

Two rings per feed in ``poll_history``: "poll" keeps the last :data:`POLLS_KEPT` polls,
"error" the last :data:`ERRORS_KEPT` failed ones, so that a run of good polls never pushes
a feed's errors out of sight. The feed's row counts its polls and its failed polls; a
poll's number modulo the ring's size is its slot, and a poll is written over that slot's
row (an upsert). The table is thus bounded by construction: no pruning, no growth.

:func:`remember_poll` is called by :func:`~monitor.store.feeds.apply_poll`, in the poll's
own transaction, with the numbers its UPDATE of the feed returned: one more statement per
poll, no transaction of its own. It decides nothing about the feed (its state, its next
poll) and reads no other table.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from functools import lru_cache

from sqlalchemy import Connection, Executable, select
from sqlalchemy.orm import Session

from monitor.store.base import _INSERTS, StoreBase, storage_errors
from monitor.store.schema import FeedRow, PollRow
from monitor.types import FeedState, PollUpdate, frozen

POLLS_KEPT = 50
ERRORS_KEPT = 20
MAX_ERROR = 1000  # characters of an error kept (a server's text can be long)
POLLS = "poll"
ERRORS = "error"


class PollOutcome(StrEnum):
    """How a poll ended, as its history shows it."""

    OK = "ok"  # a full response, parsed and stored
    NOT_MODIFIED = "not-modified"  # 304: nothing to parse
    ERROR = "error"
    GONE = "gone"  # 410: polling stopped


@frozen
class PollRecord:
    """One poll as kept: when, how it ended, the HTTP status, how long it took (ms, from
    the fetch to the decision), the new items it stored and its error."""

    seq: int
    polled_at: datetime
    outcome: PollOutcome
    status: int | None
    ms: int | None
    new_items: int
    error: str | None


@frozen
class PollHistory:
    """A feed's recent polls and failed polls (newest first), with its counts of polls
    and failed polls recorded, and its last success and announced health."""

    polls: tuple[PollRecord, ...]
    errors: tuple[PollRecord, ...]
    poll_count: int
    poll_failures: int
    last_success_at: datetime | None
    health: str
    health_since: datetime | None


def poll_outcome(p: PollUpdate) -> PollOutcome:
    if p.state == FeedState.GONE:
        return PollOutcome.GONE
    if p.state != FeedState.OK:
        return PollOutcome.ERROR
    return PollOutcome.NOT_MODIFIED if p.status == 304 else PollOutcome.OK


def remember_poll(
    s: Session | Connection, feed_id: int, p: PollUpdate, *, seq: int, failures: int
) -> None:
    """Write poll number ``seq`` into the feed's ring of polls and, if it failed (as
    failure number ``failures``), into its ring of errors: one multi-row upsert."""
    outcome = poll_outcome(p)
    row = {
        "feed_id": feed_id,
        "seq": seq,
        "polled_at": p.polled_at,
        "outcome": outcome,
        "status": p.status,
        "ms": p.ms,
        "new_items": p.new_items,
        "error": p.error[:MAX_ERROR] if p.error else None,
    }
    rows = [row | {"ring": POLLS, "slot": seq % POLLS_KEPT}]
    if outcome in (PollOutcome.ERROR, PollOutcome.GONE):
        rows.append(row | {"ring": ERRORS, "slot": failures % ERRORS_KEPT, "seq": failures})
    bind = s.get_bind() if isinstance(s, Session) else s
    s.execute(_upsert(bind.dialect.name), rows)


@lru_cache(maxsize=4)
def _upsert(dialect: str) -> Executable:
    """The upsert of one slot, built once per dialect: building it at each poll cost more
    than running it."""
    stmt = _INSERTS[dialect](PollRow.__table__)
    kept = ("seq", "polled_at", "outcome", "status", "ms", "new_items", "error")
    return stmt.on_conflict_do_update(
        index_elements=["feed_id", "ring", "slot"],
        set_={name: stmt.excluded[name] for name in kept},
    )


class PollStore(StoreBase):
    def poll_history(self, feed_id: int) -> PollHistory | None:
        """A feed's kept polls and failed polls, newest first; None if there is no such
        feed. At most :data:`POLLS_KEPT` + :data:`ERRORS_KEPT` rows, read by primary key."""
        feed = select(
            FeedRow.poll_count,
            FeedRow.poll_failures,
            FeedRow.last_success_at,
            FeedRow.health,
            FeedRow.health_since,
        ).where(FeedRow.id == feed_id)
        rows = (
            select(PollRow)
            .where(PollRow.feed_id == feed_id)
            .order_by(PollRow.ring, PollRow.seq.desc())
        )
        with storage_errors("read poll history"), self._session() as s:
            found = s.execute(feed).first()
            if found is None:
                return None
            kept = list(s.scalars(rows))
        return PollHistory(
            polls=tuple(_record(r) for r in kept if r.ring == POLLS),
            errors=tuple(_record(r) for r in kept if r.ring == ERRORS),
            poll_count=found.poll_count,
            poll_failures=found.poll_failures,
            last_success_at=found.last_success_at,
            health=found.health,
            health_since=found.health_since,
        )


def _record(r: PollRow) -> PollRecord:
    return PollRecord(
        seq=r.seq,
        polled_at=r.polled_at,
        outcome=PollOutcome(r.outcome),
        status=r.status,
        ms=r.ms,
        new_items=r.new_items,
        error=r.error,
    )
