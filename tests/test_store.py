"""Storage on SQLite and PostgreSQL: claims, dedupe, the outbox, listings."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from monitor.store import FeedSpec, Store
from monitor.store.engine import create_db_engine, migrate
from monitor.types import (
    DeliveryMode,
    DeliveryState,
    FeedState,
    Item,
    MatchDetail,
    NewAlert,
    PollUpdate,
    Route,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Store:
    engine = create_db_engine(db_url)
    migrate(engine)
    return Store(engine)


def item(key: str, title: str = "t", body: str = "b") -> Item:
    return Item(
        key=key,
        guid=key,
        link=f"https://example.org/{key}",
        title=title,
        summary=body,
        content="",
        author="",
        categories=("x",),
        published=NOW,
        updated=None,
        content_hash=f"{title}|{body}",
    )


def ok(now: datetime = NOW) -> PollUpdate:
    return PollUpdate(
        polled_at=now, state=FeedState.OK, status=200, next_poll_at=now + timedelta(hours=1)
    )


def new_alert(key: str, watchlist: str = "csto", channels: tuple[str, ...] = ("hook",)) -> NewAlert:
    return NewAlert(
        id=f"{key}-{watchlist}",
        item_key=key,
        watchlist=watchlist,
        matches=(MatchDetail(term="CSTO", field="title", snippet="CSTO"),),
        routes=tuple(Route(channel=c) for c in channels),
    )


def test_migrate_is_idempotent(db_url: str) -> None:
    engine = create_db_engine(db_url)
    migrate(engine)
    migrate(engine)


def test_due_feed_is_claimed_once_until_its_lease_ends(store: Store) -> None:
    store.sync_feeds([FeedSpec(url="https://a.example/feed", name="A")], NOW)
    first = store.claim_due_feeds(NOW, lease=60)
    assert [f.url for f in first] == ["https://a.example/feed"]
    assert first[0].first_poll
    assert store.claim_due_feeds(NOW, lease=60) == []
    assert store.claim_due_feeds(NOW + timedelta(seconds=61), lease=60) != []


def test_poll_result_moves_next_poll_and_releases_lease(store: Store) -> None:
    store.sync_feeds([FeedSpec(url="https://a.example/feed", name=None)], NOW)
    [feed] = store.claim_due_feeds(NOW, lease=60)
    store.record_poll(feed.id, ok())
    assert store.claim_due_feeds(NOW, lease=60) == []
    assert store.claim_due_feeds(NOW, lease=60, only_due=False) != []


def test_retry_after_blocks_even_a_forced_poll(store: Store) -> None:
    store.sync_feeds([FeedSpec(url="https://a.example/feed", name=None)], NOW)
    [feed] = store.claim_due_feeds(NOW, lease=60)
    update = PollUpdate(
        polled_at=NOW,
        state="error",
        status=429,
        error="HTTP 429",
        next_poll_at=NOW,
        retry_after=NOW + timedelta(minutes=10),
        error_count=1,
    )
    store.record_poll(feed.id, update)
    assert store.claim_due_feeds(NOW + timedelta(minutes=5), lease=60, only_due=False) == []
    assert store.claim_due_feeds(NOW + timedelta(minutes=11), lease=60, only_due=False) != []


def test_gone_feed_is_never_claimed(store: Store) -> None:
    store.sync_feeds([FeedSpec(url="https://a.example/feed", name=None)], NOW)
    [feed] = store.claim_due_feeds(NOW, lease=60)
    gone = PollUpdate(polled_at=NOW, state="gone", status=410, error="gone", next_poll_at=NOW)
    store.record_poll(feed.id, gone)
    assert store.claim_due_feeds(NOW + timedelta(days=9), lease=60, only_due=False) == []
    [status] = store.list_feeds()
    assert status.state == "gone" and status.next_poll_at is None


def test_items_are_stored_once_and_alerts_written_with_them(store: Store) -> None:
    store.sync_feeds([FeedSpec(url="https://a.example/feed", name="A")], NOW)
    [feed] = store.claim_due_feeds(NOW, lease=60)
    items = [item("1"), item("2")]
    result = store.add_items(feed.id, new=items, changed=[], alerts=[new_alert("1")], poll=ok())
    assert (result.new, result.alerts) == (2, 1)
    assert store.existing_items(feed.id, ["1", "2", "3"]) == {"1": "t|b", "2": "t|b"}
    again = store.add_items(feed.id, new=items, changed=[], alerts=[new_alert("1")], poll=ok())
    assert (again.new, again.alerts) == (0, 0)
    [status] = store.list_feeds()
    assert status.items == 2 and status.state == "ok"


def test_edited_item_is_updated_in_place(store: Store) -> None:
    store.sync_feeds([FeedSpec(url="https://a.example/feed", name="A")], NOW)
    [feed] = store.claim_due_feeds(NOW, lease=60)
    store.add_items(feed.id, new=[item("1")], changed=[], alerts=[], poll=ok())
    edited = item("1", title="t2")
    store.add_items(feed.id, new=[], changed=[edited], alerts=[], poll=ok())
    assert store.existing_items(feed.id, ["1"]) == {"1": "t2|b"}


def test_delivery_claim_send_and_retry_states(store: Store) -> None:
    store.sync_feeds([FeedSpec(url="https://a.example/feed", name="A")], NOW)
    [feed] = store.claim_due_feeds(NOW, lease=60)
    alert = new_alert("1", channels=("hook", "mail"))
    store.add_items(feed.id, new=[item("1")], changed=[], alerts=[alert], poll=ok())
    claimed = store.claim_due_deliveries(NOW, 60, ["hook", "mail"])
    assert sorted(d.channel for d in claimed) == ["hook", "mail"]
    assert claimed[0].alert.item.title == "t" and claimed[0].alert.matches[0].term == "CSTO"
    assert store.claim_due_deliveries(NOW, 60, ["hook", "mail"]) == []  # leased
    by_channel = {d.channel: d for d in claimed}
    store.record_delivery([by_channel["hook"].id], state="sent", now=NOW)
    later = NOW + timedelta(seconds=5)
    store.record_delivery(
        [by_channel["mail"].id], state="failed", now=NOW, error="down", next_attempt_at=later
    )
    assert store.claim_due_deliveries(NOW, 60, ["hook", "mail"]) == []
    [retry] = store.claim_due_deliveries(later, 60, ["hook", "mail"])
    assert retry.channel == "mail" and retry.attempts == 1
    [record] = store.list_alerts()
    states = {d.channel: (d.state, d.attempts, d.last_error) for d in record.deliveries}
    assert states == {"hook": ("sent", 1, None), "mail": ("failed", 1, "down")}
    assert [r.alert.id for r in store.list_alerts(state="failed")] == [alert.id]
    assert store.list_alerts(state="dead") == []


def test_deliveries_of_unconfigured_channels_are_left_alone(store: Store) -> None:
    store.sync_feeds([FeedSpec(url="https://a.example/feed", name="A")], NOW)
    [feed] = store.claim_due_feeds(NOW, lease=60)
    store.add_items(feed.id, new=[item("1")], changed=[], alerts=[new_alert("1")], poll=ok())
    assert store.claim_due_deliveries(NOW, 60, ["other"]) == []


def test_feed_removed_from_config_is_kept_but_not_polled(store: Store) -> None:
    store.sync_feeds([FeedSpec(url="https://a.example/feed", name="A")], NOW)
    store.sync_feeds([], NOW)
    assert store.claim_due_feeds(NOW, lease=60) == []
    [status] = store.list_feeds()
    assert not status.active


def test_release_leases_frees_claimed_work(store: Store) -> None:
    store.sync_feeds([FeedSpec(url="https://a.example/feed", name="A")], NOW)
    assert store.claim_due_feeds(NOW, lease=600)
    store.release_leases()
    assert store.claim_due_feeds(NOW, lease=600)


def test_digest_route_waits_for_its_time(store: Store) -> None:
    store.sync_feeds([FeedSpec(url="https://a.example/feed", name="A")], NOW)
    [feed] = store.claim_due_feeds(NOW, lease=60)
    at = NOW + timedelta(hours=3)
    alert = new_alert("1")
    alert = NewAlert(
        id=alert.id,
        item_key="1",
        watchlist="csto",
        matches=alert.matches,
        routes=(Route(channel="hook", digest_at=at),),
    )
    store.add_items(feed.id, new=[item("1")], changed=[], alerts=[alert], poll=ok())
    assert store.claim_due_deliveries(NOW, 60, ["hook"]) == []
    [due] = store.claim_due_deliveries(at, 60, ["hook"])
    assert due.mode == "digest"


def test_disabled_channel_is_not_claimed_until_enabled(store: Store) -> None:
    store.sync_feeds([FeedSpec(url="https://a.example/feed", name="A")], NOW)
    [feed] = store.claim_due_feeds(NOW, lease=60)
    store.add_items(feed.id, new=[item("1")], changed=[], alerts=[new_alert("1")], poll=ok())
    store.disable_channel("hook", "HTTP 410 Gone", NOW)
    assert store.claim_due_deliveries(NOW, 60, ["hook"]) == []
    [status] = store.list_channels(["hook"])
    assert status.disabled_reason == "HTTP 410 Gone" and status.deliveries == {"pending": 1}
    assert store.enable_channel("hook")
    assert len(store.claim_due_deliveries(NOW, 60, ["hook"])) == 1


def test_retry_dead_deliveries_starts_the_schedule_over(store: Store) -> None:
    store.sync_feeds([FeedSpec(url="https://a.example/feed", name="A")], NOW)
    [feed] = store.claim_due_feeds(NOW, lease=60)
    store.add_items(feed.id, new=[item("1")], changed=[], alerts=[new_alert("1")], poll=ok())
    [claimed] = store.claim_due_deliveries(NOW, 60, ["hook"])
    store.record_delivery([claimed.id], state="dead", now=NOW, error="HTTP 404")
    assert store.claim_due_deliveries(NOW, 60, ["hook"]) == []
    assert store.retry_deliveries(NOW, dead_only=True) == (1, 0)
    [again] = store.claim_due_deliveries(NOW, 60, ["hook"])
    assert again.attempts == 0


def test_retrying_an_alert_leaves_a_delivery_being_sent_alone(store: Store) -> None:
    """Resetting a claimed delivery would let a second sender take it while the first one
    is still sending: a double send."""
    store.sync_feeds([FeedSpec(url="https://a.example/feed", name="A")], NOW)
    [feed] = store.claim_due_feeds(NOW, lease=60)
    alert = new_alert("1", channels=("hook", "mail"))
    store.add_items(feed.id, new=[item("1")], changed=[], alerts=[alert], poll=ok())
    assert len(store.claim_due_deliveries(NOW, 60, ["hook"])) == 1  # leased until NOW + 60 s
    assert store.retry_deliveries(NOW, alert_id=alert.id, dead_only=False) == (1, 1)
    assert store.claim_due_deliveries(NOW, 60, ["hook"]) == []  # still the first claim's
    later = NOW + timedelta(seconds=61)  # the claim has expired: retry takes it
    assert store.retry_deliveries(later, alert_id=alert.id, dead_only=False) == (2, 0)


def test_rate_count_counts_a_digest_once(store: Store) -> None:
    store.sync_feeds([FeedSpec(url="https://a.example/feed", name="A")], NOW)
    [feed] = store.claim_due_feeds(NOW, lease=60)
    alerts = [new_alert(k) for k in ("1", "2", "3")]
    items = [item(k) for k in ("1", "2", "3")]
    store.add_items(feed.id, new=items, changed=[], alerts=alerts, poll=ok())
    claimed = store.claim_due_deliveries(NOW, 60, ["hook"])
    store.record_delivery([d.id for d in claimed[:2]], state="sent", now=NOW)  # a digest
    store.record_delivery([claimed[2].id], state="sent", now=NOW + timedelta(seconds=1))
    assert store.count_sent_since("hook", NOW - timedelta(hours=1)) == 2
    assert store.count_sent_since("hook", NOW + timedelta(seconds=1)) == 1


def test_states_are_stored_as_their_plain_values_and_read_back_as_enums(store: Store) -> None:
    """Other tools (and older code) read these columns: the values are the words, never an
    enum's name or repr."""
    store.sync_feeds([FeedSpec(url="https://a.example/feed", name="A")], NOW)
    [feed] = store.claim_due_feeds(NOW, 60)
    store.add_items(feed.id, new=[item("k")], changed=[], alerts=[new_alert("k")], poll=ok())
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT state FROM feeds")).scalar_one() == "ok"
        row = conn.execute(text("SELECT state, mode FROM deliveries")).one()
        assert tuple(row) == ("pending", "now")
    [status] = store.list_feeds()
    assert status.state is FeedState.OK
    [claimed] = store.claim_due_deliveries(NOW, 60, ["hook"])
    assert claimed.mode is DeliveryMode.NOW
    [record] = store.list_alerts()
    assert record.deliveries[0].state is DeliveryState.PENDING


def test_the_migrations_build_the_schema_the_code_queries(db_url: str) -> None:
    """Every table, column, index and constraint of ``schema.py`` as the migrations made
    them, on both databases: a migration that forgot one would fail only in production."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from monitor.store.schema import Base

    engine = create_db_engine(db_url)
    migrate(engine)
    try:
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    finally:
        engine.dispose()


def test_the_head_revision_is_alembic_s_own() -> None:
    from alembic.script import ScriptDirectory

    from monitor.store.engine import alembic_config, head_revision

    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def alembic_loaded_after_migrate_apart(url: str) -> list[str]:
    """In a process of its own: ``migrate_apart`` brings ``url`` to the head revision;
    the Alembic modules that process then holds."""
    check = (
        "import sys\n"
        "from sqlalchemy import text\n"
        "from monitor.store.engine import create_db_engine, head_revision, migrate_apart\n"
        f"engine = create_db_engine({url!r})\n"
        "migrate_apart(engine)\n"
        "with engine.connect() as c:\n"
        "    found = c.execute(text('SELECT version_num FROM alembic_version')).scalar()\n"
        "assert found == head_revision(), found\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return eval(done.stdout)  # a list of names printed by the child above


def test_a_current_database_is_opened_without_loading_alembic(db_url: str) -> None:
    """The running service keeps what it imported: Alembic only where a migration runs."""
    engine = create_db_engine(db_url)
    migrate(engine)
    engine.dispose()
    assert alembic_loaded_after_migrate_apart(db_url) == []


def test_a_due_migration_runs_apart_and_the_service_never_loads_alembic(tmp_path: Path) -> None:
    assert alembic_loaded_after_migrate_apart(f"sqlite:///{tmp_path / 'new.db'}") == []


def test_a_migration_that_fails_apart_says_why(tmp_path: Path) -> None:
    from monitor.errors import StorageError
    from monitor.store.engine import migrate_apart

    engine = create_db_engine(f"sqlite:///{tmp_path / 'missing' / 'monitor.db'}")
    with pytest.raises(StorageError, match=r"cannot migrate database .*unable to open"):
        migrate_apart(engine)
