"""Retention on SQLite and PostgreSQL: old items pruned in batches with their alerts and
deliveries, never one still to be delivered; the tombstones that keep a re-served item
from alerting again, refreshed while served and forgotten after; a simulated year of daily
polls with a clock the test controls, against a real feed server and webhook receiver."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from feedserver import FeedServer
from receivers import WebhookReceiver
from sqlalchemy import Engine, event, func, select
from test_decide import FEED, decide
from test_decide import item as decide_item
from test_service import rss
from test_store import item, new_alert, ok

from monitor.app import App
from monitor.config import Settings, load_settings
from monitor.config_ops import RetentionConfig
from monitor.retention import prune_old_items
from monitor.store import FeedSpec, Store
from monitor.store.engine import create_db_engine, migrate
from monitor.store.schema import AlertRow, DeliveryRow, ItemRow, PrunedItemRow
from monitor.types import DeliveryState

DAY = timedelta(days=1)
START = datetime(2026, 1, 1, tzinfo=UTC)
TABLES = {"items": ItemRow, "alerts": AlertRow, "deliveries": DeliveryRow, "pruned": PrunedItemRow}


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    engine = create_db_engine(db_url)
    migrate(engine)
    yield Store(engine)
    engine.dispose()


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: conn.scalar(select(func.count()).select_from(row)) or 0
            for name, row in TABLES.items()
        }


def feed_id(store: Store) -> int:
    store.sync_feeds([FeedSpec(url="https://a.example/feed", name="A")], START)
    [feed] = store.claim_due_feeds(START, lease=60)
    return feed.id


def add(store: Store, feed: int, keys: list[str], at: datetime, alerts: bool = True) -> None:
    found = [new_alert(k, channels=("hook", "mail")) for k in keys] if alerts else []
    store.add_items(feed, new=[item(k) for k in keys], changed=[], alerts=found, poll=ok(at))


def mark(store: Store, keys: list[str], channel: str, state: DeliveryState) -> None:
    with store.engine.connect() as conn:
        ids = list(
            conn.scalars(
                select(DeliveryRow.id).where(
                    DeliveryRow.alert_id.in_([f"{k}-csto" for k in keys]),
                    DeliveryRow.channel == channel,
                )
            )
        )
    store.record_delivery(ids, state=state, now=START)


def retention(days: int, batch: int = 500) -> RetentionConfig:
    return RetentionConfig(items=days * DAY.total_seconds(), batch=batch)


# The store's rules


def test_pruned_item_goes_with_its_alerts_and_deliveries_and_leaves_its_identity(
    store: Store,
) -> None:
    feed = feed_id(store)
    add(store, feed, ["old"], START)
    add(store, feed, ["young"], START + 10 * DAY, alerts=False)
    mark(store, ["old"], "hook", DeliveryState.SENT)
    mark(store, ["old"], "mail", DeliveryState.SENT)
    assert counts(store.engine) == {"items": 2, "alerts": 1, "deliveries": 2, "pruned": 0}

    assert store.prune_items(START + DAY, START + 40 * DAY, batch=10) == 1
    assert counts(store.engine) == {"items": 1, "alerts": 0, "deliveries": 0, "pruned": 1}
    # A pruned key is known (None: content gone), a stored one has its hash, others absent.
    found = store.existing_items(feed, ["old", "young", "never"])
    assert found == {"old": None, "young": "t|b"}


@pytest.mark.parametrize("state", [DeliveryState.PENDING, DeliveryState.FAILED, DeliveryState.DEAD])
def test_item_with_an_undelivered_alert_is_kept_past_its_age_until_delivered(
    store: Store, state: DeliveryState
) -> None:
    feed = feed_id(store)
    add(store, feed, ["held", "done"], START)
    mark(store, ["held", "done"], "hook", DeliveryState.SENT)
    mark(store, ["done"], "mail", DeliveryState.SENT)
    if state != DeliveryState.PENDING:
        mark(store, ["held"], "mail", state)
    later = START + 100 * DAY

    assert store.prune_items(later, later, batch=10) == 1  # "done" only
    assert store.count_held_items(later) == 1
    assert store.existing_items(feed, ["held", "done"]) == {"held": "t|b", "done": None}

    mark(store, ["held"], "mail", DeliveryState.SENT)  # delivered at last (a retry)
    assert store.prune_items(later, later, batch=10) == 1
    assert store.count_held_items(later) == 0
    assert counts(store.engine) == {"items": 0, "alerts": 0, "deliveries": 0, "pruned": 2}


def test_tombstone_lasts_while_served_and_is_forgotten_a_period_after(store: Store) -> None:
    feed = feed_id(store)
    add(store, feed, ["k"], START, alerts=False)
    pruned_at = START + 31 * DAY
    store.prune_items(pruned_at - 30 * DAY, pruned_at, batch=10)

    served = START + 50 * DAY  # the feed serves the old key again: its tombstone is refreshed
    assert store.existing_items(feed, ["k"], served) == {"k": None}
    # Thirty days after the prune, but only twenty after it was last served: kept.
    assert store.forget_pruned(pruned_at + 35 * DAY - 30 * DAY, batch=10) == 0
    assert counts(store.engine)["pruned"] == 1
    # Thirty days and more since the feed last served it: forgotten.
    assert store.forget_pruned(served + 31 * DAY - 30 * DAY, batch=10) == 1
    assert store.existing_items(feed, ["k"]) == {}


def test_pruned_key_is_neither_new_nor_changed_nor_alerts() -> None:
    served = decide_item("a", "CSTO summit, as first published")  # matches the watchlist
    decision = decide(FEED, (served,), {"a": None})
    assert (decision.new, decision.changed, decision.alerts) == ((), (), ())
    # The same key unknown to the store is new and alerts (the rule above is what stops it).
    assert decide(FEED, (served,), {}).new == (served,)


# The chore


def transactions(engine: Engine) -> list[int]:
    """Items deleted per committed transaction, as the database saw them."""
    committed: list[int] = []
    current = [0]

    def executed(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM ITEMS"):
            current[0] += cursor.rowcount

    def commit(conn: Any) -> None:
        if current[0]:
            committed.append(current[0])
        current[0] = 0

    event.listen(engine, "after_cursor_execute", executed)
    event.listen(engine, "commit", commit)
    return committed


async def test_prune_goes_in_transactions_of_the_batch_size(store: Store) -> None:
    feed = feed_id(store)
    add(store, feed, [f"i{n}" for n in range(95)], START, alerts=False)
    committed = transactions(store.engine)
    later = START + 60 * DAY
    report = await prune_old_items(store, retention(30, batch=10), lambda: later)
    assert committed == [10] * 9 + [5]
    assert (report.pruned, report.done) == (95, True)
    assert counts(store.engine)["pruned"] == 95


async def test_a_run_over_its_budget_stops_and_the_next_goes_on(store: Store) -> None:
    feed = feed_id(store)
    add(store, feed, [f"i{n}" for n in range(25)], START, alerts=False)
    later = START + 60 * DAY
    first = await prune_old_items(store, retention(30, batch=10), lambda: later, budget=0)
    assert (first.pruned, first.done) == (10, False)
    rest = await prune_old_items(store, retention(30, batch=10), lambda: later)
    assert (rest.pruned, rest.done) == (15, True)


async def test_no_retention_prunes_nothing(store: Store) -> None:
    feed = feed_id(store)
    add(store, feed, ["a", "b"], START, alerts=False)
    later = START + 3650 * DAY
    report = await prune_old_items(store, RetentionConfig(items=None), lambda: later)
    assert report.pruned == 0
    assert counts(store.engine)["items"] == 2


# A year of daily polls

ITEMS_PER_DAY = 3  # one of which matches the watchlist
WINDOW = 3  # days a feed keeps an item in its document
RESERVED = (45, 70)  # an item comes back this many days after it was first served
RETENTION = 30


def day_items(day: int) -> list[tuple[str, str, str, datetime]]:
    at = START + day * DAY
    titles = [f"CSTO communique {day}", f"Weather report {day}", f"Markets {day}"]
    return [(f"d{day}-{n}", title, "text", at) for n, title in enumerate(titles)]


def document(day: int) -> bytes:
    """What the feed serves on ``day``: the last few days' items, some old ones again, and
    one pinned item served every day (first seen on day 0)."""
    days = [d for d in range(day, day - WINDOW, -1) if d >= 0]
    days += [day - back for back in RESERVED if day - back >= 0]
    pinned = ("pinned", "CSTO charter", "always here", START)
    return rss(pinned, *(i for d in days for i in day_items(d)))


def sqlite_size(url: str) -> int:
    """The SQLite file's size once compacted (the WAL checkpointed, free pages dropped)."""
    path = url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
    finally:
        conn.close()
    return Path(path).stat().st_size


@pytest.fixture
def year_app(
    tmp_path: Path, db_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> Callable[[], App]:
    config = tmp_path / "monitor.yaml"
    config.write_text(
        f"""
database: {db_url}
defaults: {{interval: 1d, backlog: all}}
polling: {{parse_workers: 0, jitter: 0}}
retention: {{items: {RETENTION}d, batch: 20, every: 1d}}
feeds:
  - url: {feed_server.url("/feed.xml")}
watchlists:
  - name: csto
    terms: [CSTO]
    notify: [hook]
channels:
  - name: hook
    type: webhook
    url: {webhook_receiver.url}
    retry: [0s]
""",
        encoding="utf-8",
    )
    return lambda: App(load_settings(config, {}))


@pytest.mark.slow
async def test_a_year_of_rotating_items_keeps_the_database_flat_and_alerts_once(
    year_app: Callable[[], App],
    db_url: str,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
) -> None:
    app = year_app()
    today = [START]
    app.clock.local = lambda: today[0]  # the service's clock, read by every part
    [chore] = [c for c in app.chores() if c.name == "retention"]
    daily: list[dict[str, int]] = []
    sizes: dict[int, int] = {}
    try:
        for day in range(365):
            today[0] = START + day * DAY
            feed_server.set_feed("/feed.xml", document(day))
            [report] = await app.pipeline.poll_feeds(await app.pipeline.claim_feeds(only_due=False))
            # Only the day's own items are new: never a re-served old one, nor the pinned.
            assert report.new == ITEMS_PER_DAY + (day == 0), (day, report)
            await app.outbox.deliver_due()
            await chore.run()
            daily.append(counts(app.engine))
            if db_url.startswith("sqlite") and day in (120, 364):
                sizes[day] = sqlite_size(db_url)
    finally:
        await app.aclose()

    # Every matching item alerted exactly once, a re-served one included.
    guids = [r.json()["item"]["guid"] for r in webhook_receiver.requests]
    assert sorted(guids) == sorted(["pinned", *(f"d{d}-0" for d in range(365))])
    # Flat after warm-up: about a retention period of items; tombstones for as long as an
    # item is served again (the last re-serve plus a retention period); not a year's worth.
    settled = daily[150:]
    assert max(c["items"] for c in settled) <= ITEMS_PER_DAY * (RETENTION + 2)
    assert max(c["alerts"] for c in settled) <= RETENTION + 2
    assert max(c["deliveries"] for c in settled) <= RETENTION + 2
    tombstones = ITEMS_PER_DAY * (max(RESERVED) + 2) + 1
    assert max(c["pruned"] for c in settled) <= tombstones
    assert max(c["pruned"] for c in settled) == max(c["pruned"] for c in daily[120:150])
    if sizes:  # SQLite: the compacted file no bigger at the end of the year than in May
        assert sizes[364] <= sizes[120] * 1.1, sizes


async def test_a_reload_turns_retention_on_for_the_running_chore(
    tmp_path: Path, db_url: str
) -> None:
    config = tmp_path / "monitor.yaml"

    def settings(retention: str) -> Settings:
        config.write_text(
            f"database: {db_url}\nretention: {retention}\n"
            "feeds:\n  - url: http://127.0.0.1:9/feed.xml\n",
            encoding="utf-8",
        )
        return load_settings(config, {})

    app = App(settings("{items: null}"))
    try:
        app.clock.local = lambda: START + 100 * DAY
        [chore] = [c for c in app.chores() if c.name == "retention"]  # listed while off
        [feed] = app.store.claim_due_feeds(START, lease=60, only_due=False)
        add(app.store, feed.id, ["old"], START, alerts=False)
        await chore.run()
        assert counts(app.engine)["items"] == 1

        changes = await app.reload(settings("{items: 30d}"))
        assert "settings: changed retention" in changes
        await chore.run()
        assert counts(app.engine) == {"items": 0, "alerts": 0, "deliveries": 0, "pruned": 1}
    finally:
        await app.aclose()
