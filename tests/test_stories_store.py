"""The candidate lookup of the stories in the database (monitor.store.stories), on SQLite and
PostgreSQL: new items join the story of the members they share keys with, with one
statement whose text is the same for every item (so each database prepares it once), and
with the cap of candidates written in it (PostgreSQL then runs it on a plan made once); a
key counts its newest members only; the index rows go by age, not with their items."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, delete, func, insert, select, text
from sqlalchemy.orm import Session

from monitor.store import Store, stories
from monitor.store.engine import create_db_engine, migrate
from monitor.store.schema import FeedRow, ItemRow, StoryKeyRow
from monitor.store.stories import PER_KEY, Placed, place_items, prune_story_keys
from monitor.stories import THRESHOLD, dump_features, load_features, story_features, story_score
from monitor.stories.plan import StoryItem, StoryPlan, StoryPolicy
from monitor.stories.similar import Scorer

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HEADLINES = [
    "Tokayev asks CSTO to send peacekeepers to Kazakhstan",
    "CSTO to send peacekeepers to Kazakhstan at Tokayev's request",
    "Almaty airport closed amid unrest in Kazakhstan",
    "Kazakhstan government resigns after fuel protests",
    "Ford beats earnings estimates as car prices climb",
    "Mirziyoyev pardons 1,200 prisoners ahead of Independence Day",
    "Oil prices rose after OPEC+ announced a surprise output cut",
    "Oil prices rise as OPEC+ announces surprise output cut",
    "ECB raises rates by 50 basis points in first hike in 11 years",
    "ECB lifts interest rates 0.5% in first increase since 2011",
    "Wagner fighters fled Bakhmut positions, Kyiv says",
    "Wagner fighters flee Bakhmut as Ukrainian troops advance",
    "Mega Millions jackpot swells to over $1B after no winner",
    "No Mega Millions jackpot winner as prize climbs to $1.02 billion",
]


def add_feed(c: Connection) -> None:
    c.execute(
        insert(FeedRow).values(
            id=1,
            url="http://127.0.0.1/f.xml",
            current_url="http://127.0.0.1/f.xml",
            name="f",
            state="ok",
            next_poll_at=NOW,
            created_at=NOW,
            source="config",
        )
    )


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    engine = create_db_engine(db_url)
    migrate(engine)
    with engine.begin() as c:
        add_feed(c)
    yield Store(engine)
    engine.dispose()


def place(store: Store, s: Session, n: int, title: str, *, now: datetime = NOW) -> str:
    """Store item ``n`` and place it, seen at ``now``; its story's id."""
    key = f"k{n}"
    s.execute(
        insert(ItemRow).values(
            id=n,
            feed_id=1,
            key=key,
            key_hash=hashlib.sha256(key.encode()).hexdigest(),
            guid=key,
            link=f"https://example.org/{n}",
            title=title,
            summary="",
            content="",
            author="",
            categories=[],
            published=NOW,
            content_hash=key,
            first_seen_at=now,
            changed_at=now,
        )
    )
    features = story_features(title=title, summary="", link=f"https://example.org/{n}")
    item = StoryItem(key=key, title=title, features=features, dumped=dump_features(features))
    plan = StoryPlan(
        feed_url="http://127.0.0.1/f.xml",
        policy=StoryPolicy(window=timedelta(hours=48), steps=()),
        items=(item,),
        update_routes={},
    )
    placed: Placed = place_items(s, store._insert, feed_id=1, ids={key: n}, plan=plan, now=now)
    return placed.stories[n]


def test_items_join_the_story_their_candidates_report(store: Store) -> None:
    with Session(store.engine) as s, s.begin():
        stories = [place(store, s, n, title) for n, title in enumerate(HEADLINES, start=1)]
    assert stories[0] == stories[1]
    assert len({stories[0], stories[2], stories[3], stories[4], stories[5]}) == 5
    for first in range(6, len(HEADLINES), 2):
        assert stories[first] == stories[first + 1], HEADLINES[first]
    assert len(set(stories)) == 5 + (len(HEADLINES) - 6) // 2


def test_the_candidate_lookup_is_one_statement_of_one_text(store: Store) -> None:
    """Items with few and with many keys: one text, which SQLite and PostgreSQL prepare
    once (an ``IN`` list of one parameter per key would make a text per count of keys);
    its parameters are the item's keys and the window's start. The cap is in the text: as
    a parameter, PostgreSQL's estimate of a plan made once for every item (a tenth of the
    groups for ``LIMIT $n``) came out above planning each item afresh, with a window of
    100,000 items, and it planned every item (a third of the decision)."""
    short = story_features(title="CSTO drill", summary="", link="https://example.org/1")
    many = story_features(title=HEADLINES[0], summary=HEADLINES[1], link="https://example.org/b")
    assert len(set(short.keys)) < len(set(many.keys))
    with Session(store.engine) as s, s.begin():
        place(store, s, 1, "CSTO drill")
        for n, title in enumerate(HEADLINES, start=2):
            place(store, s, n, title)
        lookup = stories._LOOKUPS[store.engine.dialect.name]
        assert "LIMIT 30" in lookup.sql
        if store.engine.dialect.name == "postgresql":  # the keys as one array
            assert set(lookup.fixed) == {"keys", "since"} and not lookup.names
            prepared = s.execute(
                text(
                    "SELECT count(*) FROM pg_prepared_statements"
                    " WHERE statement LIKE '%story_keys%GROUP BY%'"
                )
            ).scalar_one()
            assert prepared == 1  # psycopg prepared it: run more than five times, one text
        else:  # the keys as one JSON array; the offset SQLAlchemy writes is 0
            assert lookup.names == ("keys", "param_1", "since")
            assert lookup.fixed["param_1"] == 0
            assert "json_each(?)" in lookup.sql


def test_a_story_that_passes_has_its_other_members_scored_only_to_rank_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once a member of a story passes, its other members are scored only if another story
    passes too: then the item joins the story of the best member, wherever it comes."""
    item = story_features(title=HEADLINES[6], summary="", link=None)
    same = dump_features(story_features(title=HEADLINES[6], summary="", link=None))
    close = dump_features(story_features(title=HEADLINES[7], summary="", link=None))
    loose = dump_features(
        story_features(title="Oil prices rise after OPEC cut", summary="", link=None)
    )
    scores = [story_score(load_features(t), item) for t in (loose, close, same)]
    assert THRESHOLD <= scores[0] < scores[1] < scores[2] == 1.0
    scored: list[str] = []
    score_stored = Scorer.score_stored
    monkeypatch.setattr(
        Scorer, "score_stored", lambda self, text: scored.append(text) or score_stored(self, text)
    )
    since = NOW - timedelta(hours=48)
    rows = [("a", loose), ("a", close), ("a", same)]
    monkeypatch.setattr(stories, "_candidates", lambda c, keys, since: rows)
    assert stories._find_stories(None, item, since) == ("a", set())  # type: ignore[arg-type]
    assert scored == [loose]
    scored.clear()
    rows = [("a", loose), ("b", close), ("a", same)]
    assert stories._find_stories(None, item, since) == ("a", {"b"})  # type: ignore[arg-type]
    assert scored == [loose, close, same]


def test_a_key_counts_its_newest_members_only(store: Store) -> None:
    """A headline the window holds many times (a feed's daily "Weather in Almaty") costs a
    new item no more than a rare one: its key brings the newest members holding it, and
    the item still joins the story it shares rarer keys with."""
    daily = "Weather in Almaty"
    with Session(store.engine) as s, s.begin():
        old = place(store, s, 1, daily)
        for n in range(2, PER_KEY + 6):
            assert place(store, s, n, daily) == old  # the same title: one story
        found = stories._candidates(
            s.connection(),
            list(set(story_features(title=daily, summary="", link=None).keys)),
            NOW - timedelta(hours=48),
        )
    assert len(found) == PER_KEY  # not every member, nor the cap of candidates
    assert PER_KEY < stories.CANDIDATES


def test_an_item_pruned_leaves_its_index_rows_to_the_prune_by_age(store: Store) -> None:
    """Deleting items does not cascade into the index (no index leads from an item to its
    rows: each deletion scanned them all); their rows are never candidates again, and the
    prune by age removes them."""
    with Session(store.engine) as s, s.begin():
        gone = place(store, s, 1, HEADLINES[0], now=NOW - timedelta(hours=1))
        kept = place(store, s, 2, HEADLINES[2])
        s.execute(delete(ItemRow).where(ItemRow.id == 1))
        held = select(func.count()).select_from(StoryKeyRow)
        assert s.scalar(held.where(StoryKeyRow.item_id == 1))
        # The same story as the deleted item: its rows lead nowhere.
        assert place(store, s, 3, HEADLINES[1]) not in {gone, kept}
        assert prune_story_keys(s, NOW, 100) == 1
        assert s.scalar(held.where(StoryKeyRow.item_id == 1)) == 0
        assert s.scalar(held.where(StoryKeyRow.item_id == 2))


def test_the_index_rows_outlive_the_migration_that_frees_them(db_url: str) -> None:
    """Upgrading a database with a stories window keeps its index rows (SQLite builds the
    table again), and going back drops only the rows whose member is gone."""
    from alembic import command
    from alembic.config import Config

    from monitor.store.engine import alembic_config

    engine = create_db_engine(db_url)
    config = alembic_config()

    def to(revision: str, step: Callable[[Config, str], None] = command.upgrade) -> None:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            step(config, revision)

    to("0007")
    store = Store(engine)
    with engine.begin() as c:
        add_feed(c)
    with Session(engine) as s, s.begin():
        place(store, s, 1, HEADLINES[0])
        place(store, s, 2, HEADLINES[2])
    held = select(StoryKeyRow.item_id).distinct()
    try:
        to("head")
        with engine.begin() as c:
            assert sorted(c.scalars(held)) == [1, 2]
            c.execute(delete(ItemRow).where(ItemRow.id == 1))
            assert sorted(c.scalars(held)) == [1, 2]
        to("0007", command.downgrade)
        with engine.begin() as c:
            assert sorted(c.scalars(held)) == [2]
        to("head")
    finally:
        engine.dispose()
