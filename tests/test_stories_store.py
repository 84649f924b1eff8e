"""The candidate lookup of the stories in the database (monitor.store.stories), on SQLite and
PostgreSQL: new items join the story of the members they share keys with, with one
statement whose text is the same for every item (so each database prepares it once), and
with the cap of candidates written in it (PostgreSQL then runs it on a plan made once)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from monitor.store import Store, stories
from monitor.store.engine import create_db_engine, migrate
from monitor.store.schema import FeedRow, ItemRow
from monitor.store.stories import Placed, place_items
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


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    engine = create_db_engine(db_url)
    migrate(engine)
    with engine.begin() as c:
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
    yield Store(engine)
    engine.dispose()


def place(store: Store, s: Session, n: int, title: str) -> str:
    """Store item ``n`` and place it; its story's id."""
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
            first_seen_at=NOW,
            changed_at=NOW,
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
    placed: Placed = place_items(s, store._insert, feed_id=1, ids={key: n}, plan=plan, now=NOW)
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
