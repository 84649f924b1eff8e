"""The rule between the file's feeds and the database's, as the store keeps it, on SQLite
and PostgreSQL: the file owns what it lists; imported feeds stay until removed; a reload
never touches them; listing an imported URL in the file hands it to the file; a removed
feed comes back when imported again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.store import FeedSpec, FeedStatus, Store
from monitor.store.engine import create_db_engine, migrate
from monitor.types import FeedSource

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FILE_FEED = FeedSpec(url="https://file.example/feed", name="File")
IMPORTED = FeedSpec(url="https://imported.example/feed", name="Imported", tags=frozenset({"kz"}))


@pytest.fixture
def store(db_url: str) -> Store:
    engine = create_db_engine(db_url)
    migrate(engine)
    return Store(engine)


def by_url(store: Store) -> dict[str, FeedStatus]:
    return {r.configured_url: r for r in store.list_feeds()}


def test_imported_feeds_survive_a_reload_and_keep_their_own_name_and_tags(store: Store) -> None:
    store.sync_feeds([FILE_FEED], NOW)
    assert store.add_feeds([IMPORTED], FeedSource.OPML, NOW) == [IMPORTED.url]
    store.sync_feeds([FILE_FEED], NOW + timedelta(minutes=1))  # a reload
    store.sync_feeds([], NOW + timedelta(minutes=2))  # the file's feeds all taken out
    feeds = by_url(store)
    imported = feeds[IMPORTED.url]
    assert (imported.active, imported.source, imported.tags) == (True, "opml", frozenset({"kz"}))
    assert imported.configured_name == "Imported"
    assert feeds[FILE_FEED.url].active is False  # the file's own feed followed the file


def test_an_import_never_renames_retags_or_takes_a_file_feed(store: Store) -> None:
    store.sync_feeds([FILE_FEED], NOW)
    store.add_feeds([IMPORTED], FeedSource.OPML, NOW)
    again = [
        FeedSpec(url=IMPORTED.url, name="Renamed", tags=frozenset({"other"})),
        FeedSpec(url=FILE_FEED.url, name="Taken", tags=frozenset({"other"})),
    ]
    assert store.add_feeds(again, FeedSource.OPML, NOW) == []
    feeds = by_url(store)
    assert (feeds[IMPORTED.url].configured_name, feeds[IMPORTED.url].tags) == (
        "Imported",
        frozenset({"kz"}),
    )
    assert (feeds[FILE_FEED.url].configured_name, feeds[FILE_FEED.url].source) == (
        "File",
        "config",
    )


def test_listing_an_imported_url_in_the_file_hands_it_to_the_file(store: Store) -> None:
    store.add_feeds([IMPORTED], FeedSource.OPML, NOW)
    store.sync_feeds([FeedSpec(url=IMPORTED.url, name="Now the file's")], NOW)
    assert by_url(store)[IMPORTED.url].source == "config"
    assert store.remove_feed(IMPORTED.url) is False  # the file's to remove now
    store.sync_feeds([], NOW)  # taken out of the file: it stops, it is not the database's
    assert by_url(store)[IMPORTED.url].active is False


def test_a_removed_feed_comes_back_when_imported_again(store: Store) -> None:
    store.add_feeds([IMPORTED], FeedSource.OPML, NOW)
    assert store.remove_feed(IMPORTED.url) is True
    assert store.remove_feed(IMPORTED.url) is False  # already stopped
    assert by_url(store)[IMPORTED.url].active is False
    assert store.claim_due_feeds(NOW + timedelta(hours=1), 60) == []

    later = NOW + timedelta(days=1)
    back = FeedSpec(url=IMPORTED.url, name="Back", tags=frozenset({"uz"}))
    assert store.add_feeds([back], FeedSource.OPML, later) == [IMPORTED.url]
    row = by_url(store)[IMPORTED.url]
    assert (row.active, row.configured_name, row.tags) == (True, "Back", frozenset({"uz"}))
    [claimed] = store.claim_due_feeds(later, 60)  # due at once
    assert claimed.tags == frozenset({"uz"})


def test_a_feed_taken_out_of_the_file_can_be_imported(store: Store) -> None:
    store.sync_feeds([FILE_FEED], NOW)
    store.sync_feeds([], NOW)
    spec = FeedSpec(url=FILE_FEED.url, name="Imported now", tags=frozenset({"kz"}))
    assert store.add_feeds([spec], FeedSource.OPML, NOW) == [FILE_FEED.url]
    row = by_url(store)[FILE_FEED.url]
    assert (row.active, row.source, row.configured_name) == (True, "opml", "Imported now")
    store.sync_feeds([], NOW)  # a reload leaves it alone now
    assert by_url(store)[FILE_FEED.url].active is True
