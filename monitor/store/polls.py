"""Each feed's poll history: its last polls and its last failed polls, for the dashboard.

Two rings per feed in ``poll_history``: "poll" keeps the last :data:`POLLS_KEPT` polls,
"error" the last :data:`ERRORS_KEPT` failed ones, so that a run of good polls never pushes
a feed's errors out of sight. The feed's row counts its polls and its failed polls; a
poll's number modulo the ring's size is its slot, and a poll is written over that slot's
row (an upsert). The table is thus bounded by construction: no pruning, no growth.

:func:`remember_polls` is called by :func:`~monitor.store.feeds.apply_polls`, in the polls'
own transaction, after their UPDATEs of the feeds counted them: each row takes its number
from the feed's row as the UPDATE left it (an INSERT from a SELECT), so a batch of polls is
one statement run for all of them, or two when some failed, and no count travels back and
forth. It decides nothing about the feed (its state, its next poll).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from functools import lru_cache

from sqlalchemy import Connection, Executable, bindparam, literal, select
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


def remember_polls(s: Session | Connection, polls: Sequence[tuple[int, PollUpdate]]) -> None:
    """Write each poll into its feed's ring of polls (as poll number ``poll_count``) and
    each failed one into its ring of errors too (as failure number ``poll_failures``)."""
    rows = [_history_row(feed_id, p) for feed_id, p in polls]
    if not rows:
        return
    bind = s.get_bind() if isinstance(s, Session) else s
    s.execute(_remember(bind.dialect.name, POLLS), rows)
    failed = [row for row in rows if row["outcome"] in (PollOutcome.ERROR, PollOutcome.GONE)]
    if failed:
        s.execute(_remember(bind.dialect.name, ERRORS), failed)


def _history_row(feed_id: int, p: PollUpdate) -> dict[str, object]:
    return {
        "feed": feed_id,
        "polled_at": p.polled_at,
        "outcome": poll_outcome(p),
        "status": p.status,
        "ms": p.ms,
        "new_items": p.new_items,
        "error": p.error[:MAX_ERROR] if p.error else None,
    }


@lru_cache(maxsize=8)
def _remember(dialect: str, ring: str) -> Executable:
    """The upsert of a poll's slot in one ring, built once per dialect and ring (building
    it at each poll cost more than running it): the feed's count names the slot."""
    table = PollRow.__table__
    count = FeedRow.poll_count if ring == POLLS else FeedRow.poll_failures
    kept = POLLS_KEPT if ring == POLLS else ERRORS_KEPT
    given = ("polled_at", "outcome", "status", "ms", "new_items", "error")
    numbered = select(
        FeedRow.id,
        literal(ring, table.c.ring.type),
        count % kept,
        count,
        *(bindparam(name, type_=table.c[name].type) for name in given),
    ).where(FeedRow.id == bindparam("feed"))
    columns = ["feed_id", "ring", "slot", "seq", *given]
    stmt = _INSERTS[dialect](table).from_select(columns, numbered)
    return stmt.on_conflict_do_update(
        index_elements=["feed_id", "ring", "slot"],
        set_={name: stmt.excluded[name] for name in ("seq", *given)},
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
