"""Stories in the database: each new item placed in the story of the window it reports,
or a story of its own; each alert's part in its story; spread updates; and a story as
its alerts show it (size, sources).

Runs inside the poll's write transaction (:mod:`monitor.store.items`), after the stories
lock: restarts and several instances then neither split nor double a story, and two
feeds carrying one story in the same tick are serialised into one. Candidates come from
the ``story_keys`` index (rows of the window sharing a key with the new item), never from
a scan of the window. Whether two items are the same story is :mod:`monitor.stories`'s
decision; the pure rules (ids, steps, routes) are :mod:`monitor.stories.plan`'s.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Select,
    String,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, aliased

from alerts.base import AlertStory, StorySource
from httpfields import redact_url
from monitor.store.schema import (
    AlertRow,
    FeedRow,
    ItemRow,
    StoryKeyRow,
    StoryMemberRow,
    StoryRow,
    UTCDateTime,
)
from monitor.stories.features import StoryFeatures
from monitor.stories.plan import StoryPlan, StoryRole, step_reached, story_id
from monitor.stories.similar import THRESHOLD, Scorer
from monitor.types import feed_display_name, frozen

# A transaction-level advisory lock on PostgreSQL ("stories" in ASCII): the writes that
# place items in stories take turns. SQLite's BEGIN IMMEDIATE already serialises them.
STORY_LOCK = 0x73746F72696573
CANDIDATES = 30  # members scored per new item: those sharing the most keys with it
PER_KEY = 20  # members a key counts: its newest
SOURCES_LISTED = 50  # a story's sources named in an alert; the count covers them all
TITLE_MAX = 500
IN_SLICE = 1000  # bound parameters per IN list (SQLite allows 32,766 per statement)


@frozen
class Placed:
    """Where a poll's new items went. ``stories``: item id -> story id; ``steps``: story
    id -> (the step its sources just reached, the item that brought it there)."""

    stories: dict[int, str]
    steps: dict[str, tuple[int, int]]


def place_items(
    s: Session,
    insert: Callable[..., Any],
    *,
    feed_id: int,
    ids: Mapping[str, int],
    plan: StoryPlan,
    now: datetime,
) -> Placed:
    """Place each new item of the plan that this poll stored, in order: in the story of
    the best-scoring candidate that is the same story (any other story it is the same as
    merges into that one: single linkage), else in a new one. A story takes members for
    ``window`` after it began, so chains of similar items cannot keep one alive for ever."""
    c = s.connection()  # Core statements: the ORM's per-statement cost is most of theirs
    if c.dialect.name == "postgresql":
        c.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": STORY_LOCK})
    since = now - plan.policy.window
    placed = Placed(stories={}, steps={})
    for planned in plan.items:
        key, features = planned.key, planned.features
        item_id = ids.get(key)
        if item_id is None:  # stored by a concurrent poll: placed there
            continue
        story, others = _find_stories(c, features, since)
        if story is None:
            story = story_id(plan.feed_url, key)
            row = {
                "id": story,
                "title": planned.title[:TITLE_MAX],
                "created_at": now,
                "last_at": now,
            }
            counts = {"size": 0, "sources": 0, "announced": 0}
            c.execute(insert(StoryRow).values(**row, **counts).on_conflict_do_nothing())
        elif others:
            _merge(c, story, others, placed)
        carried = (
            select(StoryMemberRow.item_id)
            .where(StoryMemberRow.story_id == story, StoryMemberRow.feed_id == feed_id)
            .exists()
        )
        grown = c.execute(
            update(StoryRow)
            .where(StoryRow.id == story)
            .values(
                size=StoryRow.size + 1,
                sources=StoryRow.sources + case((carried, 0), else_=1),
                last_at=now,
            )
            .returning(StoryRow.sources, StoryRow.announced)
        ).one()
        member = {"item_id": item_id, "story_id": story, "feed_id": feed_id, "seen_at": now}
        c.execute(insert(StoryMemberRow).values(**member, features=planned.dumped))
        keys = [{"key": k, "item_id": item_id, "seen_at": now} for k in set(features.keys)]
        if keys:
            c.execute(insert(StoryKeyRow).on_conflict_do_nothing(), keys)
        placed.stories[item_id] = story
        step = step_reached(plan.policy.steps, grown.sources, grown.announced)
        if step is not None:
            c.execute(update(StoryRow).where(StoryRow.id == story).values(announced=step))
            placed.steps[story] = (step, item_id)
    return placed


def _find_stories(
    c: Connection, features: StoryFeatures, since: datetime
) -> tuple[str | None, set[str]]:
    """The story of the best-scoring candidate at or above the threshold, and the other
    stories with a candidate there (the new item bridges them). Candidates are the
    members of the window sharing the most keys with the item (its likeliest matches),
    in stories begun within the window."""
    if not features.keys:
        return None, set()
    scorer = Scorer(features)  # the item's side of the rule, worked out once
    best: dict[str, float] = {}
    later: list[tuple[str, str]] = []
    for story, stored in _candidates(c, list(set(features.keys)), since):
        if story in best:  # the story passes: its other members matter only to rank it
            later.append((story, stored))
            continue
        score = scorer.score_stored(stored)
        if score >= THRESHOLD:
            best[story] = score
    if not best:
        return None, set()
    if len(best) > 1:  # several stories pass: the item joins the one with the best member
        for story, stored in later:
            if best[story] < 1.0:
                best[story] = max(best[story], scorer.score_stored(stored))
    chosen = max(best, key=best.__getitem__)
    return chosen, set(best) - {chosen}


# The members sharing the most keys with the new item, newest first. Each key counts its
# newest PER_KEY members only: a key the window holds thousands of times (a feed that runs
# the same headline daily) costs no more than a rare one, and the story the item reports
# shares rarer keys with it too. The index alone answers it (no table row read per match:
# rows of the window are what the join below keeps, as a story begun within the window has
# only members seen since; the hourly prune drops the older rows). One round trip:
# PostgreSQL is a network hop away. The statement's text is the same for every item, so that
# each database prepares it once: the keys go as one array on PostgreSQL and as one JSON
# array on SQLite (``IN`` would list one parameter per key), and the caps are written into
# the text. On PostgreSQL that also lets psycopg's prepared statement run on a generic plan:
# with the cap a parameter, the server's estimate of a generic plan stayed above its custom
# plans' with a window of 100,000 items, and it planned each item afresh.
def _candidates_query(dialect: str) -> Select[tuple[str, Any]]:
    if dialect == "postgresql":
        array = bindparam("keys", type_=ARRAY(BigInteger))
        listed = func.unnest(array).table_valued("value").render_derived(name="wanted")
    else:  # json_each's rows have a column "value"
        listed = func.json_each(bindparam("keys", type_=String)).table_valued("value")
        listed = listed.alias("wanted")
    wanted = listed.c.value
    other = aliased(StoryKeyRow)
    oldest_counted = (  # the key's PER_KEY-th newest member, if it has that many
        select(other.item_id)
        .where(other.key == wanted)
        .order_by(other.item_id.desc())
        .limit(literal_column("1"))
        .offset(literal_column(str(PER_KEY - 1)))
        .scalar_subquery()
    )
    at_least = func.coalesce(oldest_counted, literal_column("0"))
    sharing = (
        select(StoryKeyRow.item_id)
        .join_from(
            listed,
            StoryKeyRow,
            and_(StoryKeyRow.key == wanted, StoryKeyRow.item_id >= at_least),
        )
        .group_by(StoryKeyRow.item_id)
        .order_by(func.count().desc(), StoryKeyRow.item_id.desc())
        .limit(literal_column(str(CANDIDATES)))
    )
    return (
        select(StoryMemberRow.story_id, StoryMemberRow.features)
        .join(StoryRow, StoryRow.id == StoryMemberRow.story_id)
        .where(
            StoryMemberRow.item_id.in_(sharing.scalar_subquery()),
            StoryRow.created_at >= bindparam("since", type_=UTCDateTime()),
        )
    )


@frozen
class _Lookup:
    """The candidate lookup compiled for one database: its text, its parameters' names in
    order (for a driver that takes them by position) and their fixed values, and how the
    window's start is written."""

    sql: str
    names: tuple[str, ...]
    fixed: dict[str, Any]
    since: Callable[[datetime], Any]


_LOOKUPS: dict[str, _Lookup] = {}


def _candidates(c: Connection, keys: list[int], since: datetime) -> list[tuple[str, str]]:
    """(story, stored features) of the candidates. The statement is compiled by SQLAlchemy
    once and run on the driver's cursor: SQLAlchemy's execution of a statement (its
    context, result and rows) took 0.2-0.3 ms of a decision of 1.2-1.5 ms on PostgreSQL
    in the window benchmark, as much as scoring the candidates. A driver's error is turned
    into SQLAlchemy's, as an execution through it would have been."""
    dialect = c.dialect
    lookup = _LOOKUPS.get(dialect.name)
    if lookup is None:
        compiled = _candidates_query(dialect.name).compile(dialect=dialect)
        date = UTCDateTime().bind_processor(dialect)
        lookup = _LOOKUPS[dialect.name] = _Lookup(
            sql=str(compiled),
            names=tuple(compiled.positiontup or ()) if compiled.positional else (),
            fixed=compiled.construct_params({"keys": None, "since": None}),
            since=date if date is not None else lambda value: value,
        )
    listed = keys if dialect.name == "postgresql" else json.dumps(keys)
    values = {**lookup.fixed, "keys": listed, "since": lookup.since(since)}
    params = tuple(values[name] for name in lookup.names) if lookup.names else values
    error = dialect.loaded_dbapi.Error
    cursor = c.connection.cursor()
    try:
        cursor.execute(lookup.sql, params)
        return cursor.fetchall()
    except error as exc:
        raise DBAPIError.instance(lookup.sql, params, exc, error) from exc
    finally:
        cursor.close()


def _merge(c: Connection, into: str, others: set[str], placed: Placed) -> None:
    """Fold ``others`` into ``into``: members and alerts move, the counts are taken again
    from the members, the highest step announced stays announced, the earliest start
    stays the start. Alerts already sent stay sent: each story's first alert remains one."""
    both = [into, *others]
    announced, began = c.execute(
        select(func.max(StoryRow.announced), func.min(StoryRow.created_at)).where(
            StoryRow.id.in_(both)
        )
    ).one()
    c.execute(
        update(StoryMemberRow).where(StoryMemberRow.story_id.in_(others)).values(story_id=into)
    )
    c.execute(update(AlertRow).where(AlertRow.story_id.in_(others)).values(story_id=into))
    c.execute(delete(StoryRow).where(StoryRow.id.in_(others)))
    size, sources = c.execute(
        select(func.count(), func.count(func.distinct(StoryMemberRow.feed_id))).where(
            StoryMemberRow.story_id == into
        )
    ).one()
    c.execute(
        update(StoryRow)
        .where(StoryRow.id == into)
        .values(size=size, sources=sources, announced=announced, created_at=began)
    )
    for item_id, story in placed.stories.items():
        if story in others:
            placed.stories[item_id] = into
    for story in others & placed.steps.keys():
        placed.steps.setdefault(into, placed.steps.pop(story))


def alert_role(s: Session, story: str, watchlist: str, item_id: int, placed: Placed) -> StoryRole:
    """The story's first alert for the watchlist leads; a later one is a member, or the
    spread update when its item brought the story to a step."""
    lead = s.scalar(
        select(AlertRow.id)
        .where(
            AlertRow.story_id == story,
            AlertRow.watchlist == watchlist,
            AlertRow.story_role == StoryRole.LEAD,
        )
        .limit(1)
    )
    if lead is None:
        return StoryRole.LEAD
    step = placed.steps.get(story)
    return StoryRole.UPDATE if step is not None and step[1] == item_id else StoryRole.MEMBER


def leads_to_update(
    s: Session, story: str, item_id: int
) -> list[tuple[str, str, list[dict[str, str]]]]:
    """The story's first alerts (id, watchlist, matches) whose watchlist has no alert on
    the item that brought the story to a step: each gets an update of its own."""
    taken = select(AlertRow.watchlist).where(AlertRow.item_id == item_id)
    rows = s.execute(
        select(AlertRow.id, AlertRow.watchlist, AlertRow.matches).where(
            AlertRow.story_id == story,
            AlertRow.story_role == StoryRole.LEAD,
            AlertRow.watchlist.not_in(taken),
        )
    )
    return [(a, w, m) for a, w, m in rows]


def alert_stories(s: Session, ids: Iterable[str | None]) -> dict[str, AlertStory]:
    """Stories as alerts show them: size, the count of sources, and the first sources
    (each feed once, by its first item of the story), in the order they carried it."""
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    stories = {r.id: r for r in s.scalars(select(StoryRow).where(StoryRow.id.in_(wanted)))}
    firsts = (
        select(func.min(StoryMemberRow.item_id))
        .where(StoryMemberRow.story_id.in_(wanted))
        .group_by(StoryMemberRow.story_id, StoryMemberRow.feed_id)
    )
    listed: dict[str, list[StorySource]] = {}
    rows = s.execute(  # the columns shown, not the items' whole text
        select(
            StoryMemberRow.story_id,
            ItemRow.title,
            ItemRow.link,
            func.coalesce(ItemRow.published, ItemRow.updated),
            FeedRow.name,
            FeedRow.title,
            FeedRow.url,
        )
        .join(ItemRow, ItemRow.id == StoryMemberRow.item_id)
        .join(FeedRow, FeedRow.id == ItemRow.feed_id)
        .where(StoryMemberRow.item_id.in_(firsts))
        .order_by(StoryMemberRow.item_id)
    )
    for story, title, link, published, name, feed_title, url in rows:
        sources = listed.setdefault(story, [])
        if len(sources) < SOURCES_LISTED:
            feed = feed_display_name(name, feed_title, redact_url(url))
            sources.append(StorySource(feed=feed, title=title, link=link, published=published))
    return {
        id_: AlertStory(
            id=id_,
            title=r.title,
            size=r.size,
            source_count=r.sources,
            sources=tuple(listed.get(id_, ())),
        )
        for id_, r in stories.items()
    }


def prune_story_keys(s: Session, before: datetime, limit: int) -> int:
    """Drop the index rows of up to ``limit`` members seen before ``before`` (they are
    never candidates again), and the stories left without members (their items were
    pruned) and older than that. Members and stories otherwise stay while their items
    do, for the alerts that show them."""
    old = select(StoryKeyRow.item_id).where(StoryKeyRow.seen_at < before).distinct().limit(limit)
    items = list(s.scalars(old))
    for start in range(0, len(items), IN_SLICE):
        chunk = items[start : start + IN_SLICE]
        # By age too: the index on it finds the rows (none leads from an item to its own).
        s.execute(
            delete(StoryKeyRow).where(StoryKeyRow.seen_at < before, StoryKeyRow.item_id.in_(chunk))
        )
    empty = ~select(StoryMemberRow.item_id).where(StoryMemberRow.story_id == StoryRow.id).exists()
    gone = select(StoryRow.id).where(StoryRow.last_at < before, empty).limit(limit)
    s.execute(delete(StoryRow).where(StoryRow.id.in_(gone.scalar_subquery())))
    return len(items)
