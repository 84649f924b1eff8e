"""Each feed's poll history on SQLite and PostgreSQL: two rings of fixed size (the last
polls, the last failed polls) written with the poll, gone with the feed, and the
migration that adds them to an existing database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import func, select, text

from monitor.store import FeedSpec, PollOutcome, Store
from monitor.store.engine import alembic_config, create_db_engine, migrate
from monitor.store.polls import ERRORS_KEPT, MAX_ERROR, POLLS_KEPT
from monitor.store.schema import PollRow
from monitor.types import FeedState, Item, PollUpdate

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
URL = "https://a.example/feed"


@pytest.fixture
def store(db_url: str) -> Store:
    engine = create_db_engine(db_url)
    migrate(engine)
    return Store(engine)


def feed_id(store: Store, url: str = URL) -> int:
    store.sync_feeds([FeedSpec(url=url, name=None)], NOW)
    found = store.find_feed(url=url)
    assert found is not None
    return found.id


def at(n: int) -> datetime:
    return NOW + timedelta(minutes=n)


def ok(n: int, *, status: int = 200, ms: int = 40, new: int = 0) -> PollUpdate:
    return PollUpdate(
        polled_at=at(n),
        state=FeedState.OK,
        status=status,
        next_poll_at=at(n + 1),
        ms=ms,
        new_items=new,
    )


def failed(n: int, error: str = "HTTP 500", status: int | None = 500) -> PollUpdate:
    return PollUpdate(
        polled_at=at(n),
        state=FeedState.ERROR,
        status=status,
        error=error,
        next_poll_at=at(n + 1),
        error_count=1,
        ms=7,
    )


def rows_of(store: Store, feed: int) -> int:
    with store.engine.connect() as conn:
        query = select(func.count()).select_from(PollRow).where(PollRow.feed_id == feed)
        return int(conn.execute(query).scalar_one())


def item(key: str) -> Item:
    return Item(
        key=key,
        guid=key,
        link=f"https://a.example/{key}",
        title=key,
        summary="",
        content="",
        author="",
        categories=(),
        published=NOW,
        updated=None,
        content_hash=key,
    )


def test_the_ring_keeps_only_the_last_polls_newest_first(store: Store) -> None:
    feed = feed_id(store)
    total = POLLS_KEPT * 2 + 7
    for n in range(total):
        store.record_poll(feed, ok(n, status=304, ms=n))
    history = store.poll_history(feed)
    assert history is not None and history.poll_count == total
    assert [p.seq for p in history.polls] == list(range(total, total - POLLS_KEPT, -1))
    assert history.polls[0].polled_at == at(total - 1) and history.polls[0].ms == total - 1
    assert {p.outcome for p in history.polls} == {PollOutcome.NOT_MODIFIED}
    assert rows_of(store, feed) == POLLS_KEPT  # overwritten in place, never grown
    assert history.errors == () and history.poll_failures == 0


def test_failed_polls_outlive_any_number_of_good_ones(store: Store) -> None:
    feed = feed_id(store)
    store.record_poll(feed, failed(0, "HTTP 503 <b>busy</b>", 503))
    store.record_poll(feed, failed(1, "timed out", None))
    for n in range(2, 2 + POLLS_KEPT + 10):
        store.record_poll(feed, ok(n))
    history = store.poll_history(feed)
    assert history is not None
    assert [(e.error, e.status, e.outcome) for e in history.errors] == [
        ("timed out", None, PollOutcome.ERROR),
        ("HTTP 503 <b>busy</b>", 503, PollOutcome.ERROR),
    ]
    assert history.errors[0].polled_at == at(1) and history.errors[0].ms == 7
    assert all(p.outcome == PollOutcome.OK for p in history.polls)
    assert history.last_success_at == at(POLLS_KEPT + 11)


def test_the_error_ring_keeps_the_last_failures_and_stays_bounded(store: Store) -> None:
    feed = feed_id(store)
    total = ERRORS_KEPT + 13
    for n in range(total):
        store.record_poll(feed, failed(n, f"failure {n} " + "x" * 5000))
    gone = PollUpdate(
        polled_at=at(total), state=FeedState.GONE, status=410, error="gone", next_poll_at=NOW
    )
    store.record_poll(feed, gone)
    history = store.poll_history(feed)
    assert history is not None and history.poll_failures == total + 1
    assert history.errors[0].outcome == PollOutcome.GONE and history.errors[0].status == 410
    assert [e.seq for e in history.errors] == list(range(total + 1, total + 1 - ERRORS_KEPT, -1))
    assert history.errors[1].error is not None
    assert history.errors[1].error.startswith(f"failure {total - 1} ")
    assert all(len(e.error or "") <= MAX_ERROR for e in history.polls + history.errors)
    assert history.polls[0].outcome == PollOutcome.GONE
    assert rows_of(store, feed) == ERRORS_KEPT + total + 1  # both rings, each bounded


def test_a_poll_with_items_is_kept_with_its_new_items_and_duration(store: Store) -> None:
    feed = feed_id(store)
    [claimed] = store.claim_due_feeds(NOW, lease=60)
    stored = store.add_items(
        claimed.id, new=[item("a"), item("b")], changed=[], alerts=[], poll=ok(0, ms=123, new=2)
    )
    assert stored.new == 2
    history = store.poll_history(feed)
    assert history is not None
    [poll] = history.polls
    assert (poll.outcome, poll.status, poll.ms, poll.new_items) == (PollOutcome.OK, 200, 123, 2)


def test_each_feed_has_its_own_history(store: Store) -> None:
    one, two = feed_id(store), feed_id(store, "https://b.example/feed")
    store.record_poll(one, ok(0))
    store.record_poll(two, failed(0))
    store.record_poll(two, failed(1))
    first, second = store.poll_history(one), store.poll_history(two)
    assert first is not None and second is not None
    assert (len(first.polls), len(first.errors)) == (1, 0)
    assert (len(second.polls), len(second.errors)) == (2, 2)
    assert store.poll_history(9999) is None


def test_the_history_goes_with_its_feed(store: Store) -> None:
    feed = feed_id(store)
    store.record_poll(feed, failed(0))
    store.record_poll(feed, ok(1))
    assert rows_of(store, feed) == 3
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM feeds WHERE id = :id"), {"id": feed})
    assert rows_of(store, feed) == 0
    assert store.poll_history(feed) is None


def test_the_migration_adds_the_history_to_an_existing_database(db_url: str) -> None:
    """A database at 0005 with a feed: upgraded, the feed starts with empty rings and its
    next poll is number 1. Going down and up again keeps the feed."""
    engine = create_db_engine(db_url)
    migrate(engine)
    store = Store(engine)
    feed = feed_id(store)
    alembic = alembic_config()
    try:
        for step, revision in ((command.downgrade, "0005"), (command.upgrade, "head")):
            with engine.begin() as connection:
                alembic.attributes["connection"] = connection
                step(alembic, revision)
        history = store.poll_history(feed)
        assert history is not None
        assert (history.polls, history.errors, history.poll_count) == ((), (), 0)
        store.record_poll(feed, failed(0))
        history = store.poll_history(feed)
        assert history is not None
        assert [p.seq for p in history.polls] == [1] and [e.seq for e in history.errors] == [1]
    finally:
        engine.dispose()


def test_outcomes_written_together_leave_each_feed_as_one_at_a_time(store: Store) -> None:
    """The service writes several polls' outcomes at once, one statement for each set of
    columns they change: every feed's row and history must come out as if each outcome had
    been written alone, whatever the mix (304s, a full response with a new title, failures,
    a 410) and however often the same feed comes back."""

    def outcomes(n: int) -> list[PollUpdate]:
        return [
            ok(n, status=304, ms=n),
            replace(ok(n), title=f"Title {n}", ttl_seconds=600.0),
            failed(n, f"failure {n}", 500 + n % 3),
            failed(n, "timed out", None) if n % 2 else ok(n),
            PollUpdate(polled_at=at(n), state=FeedState.GONE, status=410, next_poll_at=NOW),
        ]

    urls = [f"https://{side}{k}.example/feed" for side in "ta" for k in range(5)]
    store.sync_feeds([FeedSpec(url=url, name=None) for url in urls], NOW)
    ids = {f.url: f.id for f in store.list_feeds(count_items=False)}
    together, alone = [ids[u] for u in urls[:5]], [ids[u] for u in urls[5:]]
    for n in range(POLLS_KEPT + 3):
        store.record_polls(list(zip(together, outcomes(n), strict=True)))
        for feed, outcome in zip(alone, outcomes(n), strict=True):
            store.record_poll(feed, outcome)

    rows = {f.id: f for f in store.list_feeds(count_items=False)}
    for t, a in zip(together, alone, strict=True):
        assert store.poll_history(t) == store.poll_history(a)
        unnamed = {"id": 0, "url": "", "configured_url": "", "name": ""}
        assert replace(rows[t], **unnamed) == replace(rows[a], **unnamed)
