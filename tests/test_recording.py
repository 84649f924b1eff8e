"""Outcomes of polls without items written several to a transaction (monitor.recording), on
SQLite and PostgreSQL: together while polls are under way, at once when none is left to
wait for (the others ended), one at a time when a batch fails, and written for a poll
cancelled meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from test_store_polls import feed_id, ok
from test_store_polls import store as store  # a fixture

from monitor.errors import StorageError
from monitor.recording import PollRecorder
from monitor.store import Store
from monitor.types import PollUpdate

LONG = 60.0  # a delay no test waits out: only writing at once passes in time


def polls_of(store: Store, feed: int) -> int:
    history = store.poll_history(feed)
    assert history is not None
    return len(history.polls)


class Writes:
    """The store's own write, counted, refusing the outcomes of ``refused`` feeds."""

    def __init__(self, store: Store, refused: frozenset[int] = frozenset()) -> None:
        self.store = store
        self.refused = refused
        self.batches: list[list[int]] = []

    def __call__(self, outcomes: Sequence[tuple[int, PollUpdate]]) -> None:
        self.batches.append([feed for feed, _ in outcomes])
        if any(feed in self.refused for feed, _ in outcomes):
            raise StorageError("cannot record poll: refused")
        self.store.record_polls(outcomes)


def recorder_of(writes: Writes, under_way: int, delay: float) -> PollRecorder:
    recorder = PollRecorder(writes, delay=delay)
    for _ in range(under_way):
        recorder.started()
    return recorder


def feeds(store: Store, count: int) -> list[int]:
    return [feed_id(store, f"https://a.example/{n}") for n in range(count)]


async def test_outcomes_of_polls_under_way_go_in_one_transaction(store: Store) -> None:
    ids = feeds(store, 5)
    writes = Writes(store)
    recorder = recorder_of(writes, len(ids), LONG)
    await asyncio.wait_for(asyncio.gather(*(recorder.record(f, ok(0)) for f in ids)), 10)
    assert writes.batches == [ids]
    assert [polls_of(store, f) for f in ids] == [1] * 5


async def test_an_outcome_waits_for_polls_still_under_way_up_to_the_delay(store: Store) -> None:
    ids = feeds(store, 2)
    writes = Writes(store)
    recorder = recorder_of(writes, 3, 0.2)  # a third poll never ends
    await asyncio.wait_for(asyncio.gather(*(recorder.record(f, ok(0)) for f in ids)), 10)
    assert writes.batches == [ids]


async def test_an_outcome_goes_at_once_when_the_other_polls_end_without_one(
    store: Store,
) -> None:
    (one,) = feeds(store, 1)
    writes = Writes(store)
    recorder = recorder_of(writes, 2, LONG)  # the other stores items: no outcome here
    waiting = asyncio.create_task(recorder.record(one, ok(0)))
    await asyncio.sleep(0.05)
    assert writes.batches == []
    recorder.ended()
    await asyncio.wait_for(waiting, 10)
    assert writes.batches == [[one]]


async def test_polls_one_after_another_are_written_at_once(store: Store) -> None:
    (one,) = feeds(store, 1)
    writes = Writes(store)
    recorder = recorder_of(writes, 1, LONG)
    for n in range(3):
        await asyncio.wait_for(recorder.record(one, ok(n)), 10)
    assert writes.batches == [[one]] * 3
    assert polls_of(store, one) == 3


async def test_a_refused_outcome_fails_its_own_poll_only(store: Store) -> None:
    ids = feeds(store, 4)
    bad = ids[2]
    writes = Writes(store, refused=frozenset({bad}))
    recorder = recorder_of(writes, len(ids), LONG)
    results = await asyncio.wait_for(
        asyncio.gather(*(recorder.record(f, ok(0)) for f in ids), return_exceptions=True), 10
    )
    assert [isinstance(r, StorageError) for r in results] == [False, False, True, False]
    assert writes.batches[0] == ids  # together first, then one by one
    assert [polls_of(store, f) for f in ids] == [1, 1, 0, 1]


async def test_a_cancelled_poll_still_has_its_outcome_written(store: Store) -> None:
    first, second = feeds(store, 2)
    writes = Writes(store)
    recorder = recorder_of(writes, 2, LONG)
    cancelled = asyncio.create_task(recorder.record(first, ok(0)))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await asyncio.wait_for(recorder.record(second, ok(0)), 10)
    assert writes.batches == [[first, second]]
    assert polls_of(store, first) == 1
