"""Stories in the database: ``.venv/bin/python bench/stories_window.py [--window N]
[--database URL]``.

Fills a fresh database with ``--window`` items seen over the last 48 hours, placed in
stories as the store would (clustered in memory by the same rule, bench/stories.py), with
their members and index rows: each headline is the start of one corpus headline and the end
of another, so the window holds distinct headlines sharing words the way a day's news does.
Then places ``--new`` more items the way a poll's write does
(``monitor.store.stories.place_items``: the candidate lookup in the index, the same-story
test, the member and index rows, the story's counts), one transaction per item, and prints
the time per item: median, 95th percentile, and how many joined a story. Half the new items
are rewrites of stored headlines, half are headlines of their own.

It measures; the suite checks behaviour.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dashboard import corpus_texts
from feedhost import REPO
from stories import cluster

sys.path.insert(0, str(REPO))

FEEDS = 1000


def item_row(n: int, title: str, summary: str, seen: datetime) -> dict[str, object]:
    key = f"bench:{n}"
    return {
        "id": n,
        "feed_id": n % FEEDS + 1,
        "key": key,
        "key_hash": hashlib.sha256(key.encode()).hexdigest(),
        "guid": key,
        "link": f"https://example.org/news/{n}",
        "title": title,
        "summary": summary,
        "content": "",
        "author": "",
        "categories": [],
        "published": seen,
        "updated": None,
        "content_hash": hashlib.sha256(f"{title}{summary}".encode()).hexdigest(),
        "first_seen_at": seen,
        "changed_at": seen,
    }


def rewrite(title: str, rng: random.Random) -> str:
    """A headline as another outlet might run it: a word dropped, an outlet suffix."""
    words = title.split()
    if len(words) > 5:
        del words[rng.randrange(len(words))]
    return " ".join(words) + rng.choice(["", " - Reuters", " | TASS", " (update)"])


def blend(texts: list[tuple[str, str]], first: int, second: int) -> tuple[str, str]:
    """A headline of its own: the first half of one corpus headline, the rest of another."""
    head, summary = texts[first]
    tail = texts[second][0].split()
    words = head.split()
    return " ".join(words[: len(words) // 2] + tail[len(tail) // 2 :]), summary


def fill(url: str, args: argparse.Namespace, texts: list[tuple[str, str]]) -> None:
    from sqlalchemy import insert

    from monitor.store.engine import create_db_engine, migrate
    from monitor.store.schema import FeedRow, ItemRow, StoryKeyRow, StoryMemberRow, StoryRow
    from monitor.stories import THRESHOLD, dump_features, story_features

    engine = create_db_engine(url)
    migrate(engine)
    now = datetime.now(UTC)
    feeds = [
        {
            "id": i + 1,
            "url": f"http://127.0.0.1/feed/{i}.xml",
            "current_url": f"http://127.0.0.1/feed/{i}.xml",
            "name": f"Feed {i}",
            "state": "ok",
            "next_poll_at": now,
            "created_at": now,
            "source": "config",
        }
        for i in range(FEEDS)
    ]
    items, stories, members, keys = [], {}, [], []
    started = time.perf_counter()
    window = []
    for n in range(1, args.window + 1):
        title, summary = blend(texts, n % len(texts), n * 7919 % len(texts))
        link = f"https://example.org/{n}"
        window.append((title, summary, story_features(title=title, summary=summary, link=link)))
    per_item = (time.perf_counter() - started) / args.window * 1e6
    print(f"features for the window: {per_item:.0f} µs/item")
    started = time.perf_counter()
    found = cluster([f for _, _, f in window], THRESHOLD)  # as the store would have
    print(f"clustered in memory: {time.perf_counter() - started:.0f} s")
    for n, ((title, summary, features), story_of) in enumerate(
        zip(window, found, strict=True), start=1
    ):
        seen = now - timedelta(seconds=48 * 3600 * (1 - n / args.window))
        items.append(item_row(n, title, summary, seen))
        story = f"story-{story_of + 1}"
        entry = stories.setdefault(
            story,
            {"id": story, "title": title, "created_at": seen, "size": 0, "sources": 0},
        )
        entry.update(last_at=seen, size=entry["size"] + 1, sources=entry["sources"] + 1)
        entry["announced"] = 0
        members.append(
            {
                "item_id": n,
                "story_id": story,
                "feed_id": n % FEEDS + 1,
                "seen_at": seen,
                "features": dump_features(features),
            }
        )
        keys += ({"key": k, "item_id": n, "seen_at": seen} for k in set(features.keys))
    with engine.begin() as conn:
        conn.execute(insert(FeedRow), feeds)
        for table, rows in (
            (ItemRow, items),
            (StoryRow, list(stories.values())),
            (StoryMemberRow, members),
            (StoryKeyRow, keys),
        ):
            for start in range(0, len(rows), 5000):
                conn.execute(insert(table), rows[start : start + 5000])
    if engine.dialect.name == "postgresql":  # statistics, as autovacuum would gather them
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    print(f"window: {args.window:,} items, {len(stories):,} stories, {len(keys):,} index rows")
    engine.dispose()


def place(
    url: str, args: argparse.Namespace, texts: list[tuple[str, str]], fresh: list[tuple[str, str]]
) -> None:
    from sqlalchemy import insert
    from sqlalchemy.orm import Session

    from monitor.store import Store
    from monitor.store.engine import create_db_engine
    from monitor.store.schema import ItemRow
    from monitor.store.stories import place_items
    from monitor.stories.features import dump_features, story_features
    from monitor.stories.plan import StoryItem, StoryPlan, StoryPolicy

    store = Store(create_db_engine(url))
    decisions = time_decisions()
    rng = random.Random(7)
    now = datetime.now(UTC)
    times: list[float] = []
    joined = 0
    for n in range(args.window + 1, args.window + args.new + 1):
        if n % 2:  # news of its own: from headlines the window was not built from
            title, summary = blend(fresh, rng.randrange(len(fresh)), rng.randrange(len(fresh)))
        else:  # another outlet's version of one in the window
            stored = rng.randrange(1, args.window + 1)
            title, summary = blend(texts, stored % len(texts), stored * 7919 % len(texts))
            title = rewrite(title, rng)
        row = item_row(n, title, summary, now)
        key = str(row["key"])
        features = story_features(title=title, summary=summary, link=f"https://example.net/{n}")
        plan = StoryPlan(
            feed_url="http://127.0.0.1/bench.xml",
            policy=StoryPolicy(window=timedelta(hours=48), steps=(5, 15)),
            items=(
                StoryItem(key=key, title=title, features=features, dumped=dump_features(features)),
            ),
            update_routes={},
        )
        with Session(store.engine) as s, s.begin():
            s.execute(insert(ItemRow), [row])
            started = time.perf_counter()
            placed = place_items(
                s,
                store._insert,
                feed_id=n % FEEDS + 1,
                ids={key: n},
                plan=plan,
                now=now,
            )
            times.append(time.perf_counter() - started)
        joined += placed.stories[n].startswith("story-")
    name = store.engine.dialect.name
    for what, found in (("placing", times), ("  of which the decision", decisions)):
        found.sort()
        median = statistics.median(found) * 1000
        p95 = found[int(len(found) * 0.95)] * 1000
        print(f"{what} ({name}): median {median:.2f} ms, p95 {p95:.2f} ms per item")
    print(f"{joined} of {args.new:,} joined a stored story")


def time_decisions() -> list[float]:
    """The decision alone (candidate lookup and scoring), timed inside ``place_items``."""
    import monitor.store.stories as placing

    decide = placing._find_stories
    found: list[float] = []

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return decide(*args, **kwargs)
        finally:
            found.append(time.perf_counter() - started)

    placing._find_stories = timed
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=100_000, help="items in the window")
    parser.add_argument("--new", type=int, default=1000, help="new items to place")
    parser.add_argument("--corpus-files", type=int, default=80)
    parser.add_argument("--database", help="a fresh PostgreSQL database URL (default: SQLite)")
    args = parser.parse_args()
    usable = [t for t in corpus_texts(args.corpus_files) if len(t[0].split()) >= 4]
    random.Random(3).shuffle(usable)
    texts, fresh = usable[len(usable) // 10 :], usable[: len(usable) // 10]
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{Path(tmp) / 'bench.db'}"
        fill(url, args, texts)
        place(url, args, texts, fresh)


if __name__ == "__main__":
    main()
