"""The feeds table: following the configuration, claiming due feeds, recording polls.

Due feeds are claimed with a lease (and ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so a feed
is never polled by two pollers at once, whichever instance they run in. Each poll's outcome
is written with an UPDATE, which also releases the lease. It does not store items
(:mod:`monitor.store.items` does, recording the poll in the same transaction).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Update, bindparam, func, literal, or_, select, update
from sqlalchemy.orm import Session

from monitor.store.base import StoreBase, storage_errors
from monitor.store.polls import remember_polls
from monitor.store.schema import FeedRow, ItemRow
from monitor.types import (
    ClaimedFeed,
    FeedSource,
    FeedState,
    PollUpdate,
    feed_display_name,
    frozen,
)


@frozen
class FeedSpec:
    """A configured feed as the store needs it."""

    url: str
    name: str | None
    tags: frozenset[str] = frozenset()  # kept only for feeds the database owns


@frozen
class FeedStatus:
    """One row of ``monitor feeds``."""

    id: int
    url: str
    configured_url: str
    name: str
    title: str | None
    state: FeedState
    active: bool
    last_polled_at: datetime | None
    last_status: int | None
    last_error: str | None
    warning: str | None
    error_count: int
    items: int
    next_poll_at: datetime | None
    source: FeedSource = FeedSource.CONFIG
    tags: frozenset[str] = frozenset()  # a database feed's own
    paused_at: datetime | None = None
    configured_name: str | None = None  # as declared (``name`` falls back to the title)


class FeedStore(StoreBase):
    def sync_feeds(self, feeds: Sequence[FeedSpec], now: datetime) -> None:
        """Make the file's feeds follow the file: add new ones (due now), update names,
        deactivate those no longer listed (their items stay). A URL the file lists becomes
        the file's, even if it was imported. Feeds kept in the database (imported, added by
        the API) are left alone.

        Safe when several instances start together on one database: rows are inserted with
        ``ON CONFLICT DO NOTHING`` and updated in URL order (no deadlock between two)."""
        wanted = sorted({f.url: f for f in feeds}.values(), key=lambda f: f.url)
        urls = {f.url for f in wanted}
        t = FeedRow.__table__
        with storage_errors("sync feeds"), self.engine.begin() as conn:
            if wanted:
                conn.execute(
                    self._insert(t).on_conflict_do_nothing(index_elements=["url"]),
                    [_new_feed(f.url, f.name, FeedSource.CONFIG, now) for f in wanted],
                )
            rows = conn.execute(select(t.c.url, t.c.name, t.c.active, t.c.source)).all()
            current = {url: (name, active, source) for url, name, active, source in rows}
            stale = [
                {"u": f.url, "n": f.name}
                for f in wanted
                if current[f.url] != (f.name, True, FeedSource.CONFIG)
            ]
            dropped = sorted(
                url
                for url, (_, active, source) in current.items()
                if active and source == FeedSource.CONFIG and url not in urls
            )
            by_url = t.c.url == bindparam("u")
            if stale:
                conn.execute(
                    update(t)
                    .where(by_url)
                    .values(name=bindparam("n"), active=True, source=FeedSource.CONFIG),
                    stale,
                )
            if dropped:
                conn.execute(
                    update(t).where(by_url).values(active=False), [{"u": u} for u in dropped]
                )

    def add_feeds(self, feeds: Sequence[FeedSpec], source: FeedSource, now: datetime) -> list[str]:
        """Keep feeds in the database (imported, added by the API); returns the URLs that
        were new or brought back. A URL already active (from the file or an earlier
        import) is left as it is: the file's declaration wins, and an import never renames
        or retags. A URL no longer polled (removed, or taken out of the file) comes back
        as the database's, with the new name and tags, unpaused and due now."""
        if not feeds:
            return []
        t = FeedRow.__table__
        rows = [
            _new_feed(f.url, f.name, source, now) | {"tags": sorted(f.tags) or None}
            for f in sorted({f.url: f for f in feeds}.values(), key=lambda f: f.url)
        ]
        stmt = self._insert(t).on_conflict_do_nothing(index_elements=["url"]).returning(t.c.url)
        revive = (
            update(t)
            .where(t.c.url == bindparam("u"), t.c.active.is_(False))
            .values(active=True, source=source, paused_at=None, next_poll_at=now)
            .values(name=bindparam("n"), tags=bindparam("g"))
        )
        added: list[str] = []
        with storage_errors("add feeds"), self.engine.begin() as conn:
            for row in rows:
                back = {"u": row["url"], "n": row["name"], "g": row["tags"]}
                if conn.execute(stmt, row).first() or conn.execute(revive, back).rowcount:
                    added.append(str(row["url"]))
        return added

    def remove_feed(self, url: str) -> bool:
        """Stop polling a feed the database owns (its items and alerts stay, as for a feed
        taken out of the file). A feed the file declares is the file's to remove: False."""
        t = FeedRow.__table__
        query = (
            update(t)
            .where(t.c.url == url, t.c.source != FeedSource.CONFIG, t.c.active.is_(True))
            .values(active=False)
        )
        with storage_errors("remove feed"), self.engine.begin() as conn:
            return conn.execute(query).rowcount > 0

    def pause_feed(self, feed_id: int, paused_at: datetime | None) -> bool:
        """Pause polling of a feed (resume it with None); False if there is no such feed.
        A poll under way finishes; the next claims skip the feed. Pausing a paused feed
        keeps the time it was first paused."""
        t = FeedRow.__table__
        # literal() with the column's type: the time is stored as UTC on both databases
        value = (
            func.coalesce(t.c.paused_at, literal(paused_at, t.c.paused_at.type))
            if paused_at is not None
            else None
        )
        query = update(t).where(t.c.id == feed_id).values(paused_at=value)
        with storage_errors("pause feed"), self.engine.begin() as conn:
            return conn.execute(query).rowcount > 0

    def claim_due_feeds(
        self, now: datetime, lease: float, *, only_due: bool = True, limit: int | None = None
    ) -> list[ClaimedFeed]:
        """Lease the feeds that may be polled now. Without ``only_due`` every active feed is
        taken, except one that is gone, leased by another poller, or under Retry-After."""
        cond = [
            FeedRow.active.is_(True),
            FeedRow.state != FeedState.GONE,
            FeedRow.paused_at.is_(None),
            or_(FeedRow.lease_until.is_(None), FeedRow.lease_until < now),
            or_(FeedRow.retry_after.is_(None), FeedRow.retry_after <= now),
        ]
        if only_due:
            cond.append(FeedRow.next_poll_at <= now)
        query = (
            select(*_CLAIMED)
            .where(*cond)
            .order_by(FeedRow.next_poll_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        feeds = FeedRow.__table__
        # Core, not the ORM: its per-object bookkeeping was most of a claim's cost.
        with storage_errors("claim feeds"), self.engine.begin() as conn:
            rows = conn.execute(query).all()
            if rows:
                # One statement run for each claimed row: an IN list of every id would
                # outgrow SQLite's limit on parameters when all feeds are claimed at once.
                lease_until = now + timedelta(seconds=lease)
                claim = update(feeds).where(feeds.c.id == bindparam("claimed"))
                conn.execute(
                    claim.values(lease_until=lease_until), [{"claimed": r.id} for r in rows]
                )
            return [_claimed(r) for r in rows]

    def record_poll(self, feed_id: int, update_: PollUpdate) -> None:
        """Write a poll's outcome without items (304, errors, gone)."""
        self.record_polls([(feed_id, update_)])

    def record_polls(self, polls: Sequence[tuple[int, PollUpdate]]) -> None:
        """Write the outcomes of several polls in one transaction: a transaction's own
        cost (the write lock, the commit) was most of a 304's."""
        with storage_errors("record poll"), self.engine.begin() as conn:
            apply_polls(conn, polls)

    def list_feeds(self, *, count_items: bool = True) -> list[FeedStatus]:
        """Every feed; ``count_items=False`` leaves ``items`` at 0 and skips counting the
        items table, the costly part once it holds many."""
        if count_items:
            counts = (
                select(ItemRow.feed_id, func.count().label("n"))
                .group_by(ItemRow.feed_id)
                .subquery()
            )
            query = select(FeedRow, func.coalesce(counts.c.n, 0)).outerjoin(
                counts, counts.c.feed_id == FeedRow.id
            )
        else:
            query = select(FeedRow, literal(0))
        query = query.order_by(FeedRow.active.desc(), FeedRow.id)
        with storage_errors("list feeds"), self._session() as s:
            return [feed_status(row, n) for row, n in s.execute(query)]


def apply_polls(s: Session | Connection, polls: Sequence[tuple[int, PollUpdate]]) -> None:
    """Core UPDATEs on the table (the ORM's per-call bookkeeping doubled the cost of the
    most frequent write, a 304), each counting its poll; then the polls' history, numbered
    by those counts (:mod:`monitor.store.polls`). Outcomes of one shape (the columns they
    set) go as one statement run for all their feeds: the driver's ``executemany``, one
    round trip on PostgreSQL for what took two per poll."""
    shapes: dict[tuple[tuple[str, ...], bool], list[dict[str, object]]] = {}
    for feed_id, p in polls:
        values = _poll_values(p)
        parameters = {f"set_{name}": value for name, value in values.items()}
        shape = (tuple(values), p.state != FeedState.OK)
        shapes.setdefault(shape, []).append({"poll_feed": feed_id, **parameters})
    for (columns, failed), rows in shapes.items():
        s.execute(_poll_update(columns, failed=failed), rows)
    remember_polls(s, polls)


def _poll_values(p: PollUpdate) -> dict[str, object]:
    values: dict[str, object] = {
        "state": p.state,
        "last_polled_at": p.polled_at,
        "last_status": p.status,
        "last_error": p.error,
        "warning": p.warning,
        "error_count": p.error_count,
        "next_poll_at": p.next_poll_at,
        "retry_after": p.retry_after,
        "lease_until": None,
    }
    if p.state == FeedState.OK:
        values.update(last_success_at=p.polled_at, etag=p.etag, last_modified=p.last_modified)
    if p.current_url:
        values["current_url"] = p.current_url
    if p.title:
        values["title"] = p.title
    if p.state == FeedState.OK and p.status != 304:
        values["ttl_seconds"] = p.ttl_seconds
    return values


@functools.cache
def _poll_update(columns: tuple[str, ...], *, failed: bool) -> Update:
    """The UPDATE of a poll's outcome for one set of columns, built once: SQLAlchemy keys its
    compiled statements by a statement's structure, which it works out again for every new
    statement object and remembers on a reused one (a handful of shapes ever occur)."""
    feeds = FeedRow.__table__
    values: dict[str, object] = {
        name: bindparam(f"set_{name}", type_=feeds.c[name].type) for name in columns
    }
    values["poll_count"] = feeds.c.poll_count + 1
    if failed:
        values["poll_failures"] = feeds.c.poll_failures + 1
    return update(feeds).where(feeds.c.id == bindparam("poll_feed")).values(**values)


_CLAIMED = (
    FeedRow.id,
    FeedRow.url,
    FeedRow.current_url,
    FeedRow.name,
    FeedRow.title,
    FeedRow.etag,
    FeedRow.last_modified,
    FeedRow.error_count,
    FeedRow.ttl_seconds,
    FeedRow.last_success_at,
    FeedRow.tags,
)


def _claimed(r: Row[Any]) -> ClaimedFeed:
    return ClaimedFeed(
        id=r.id,
        url=r.url,
        current_url=r.current_url,
        name=r.name,
        title=r.title,
        etag=r.etag,
        last_modified=r.last_modified,
        error_count=r.error_count,
        ttl_seconds=r.ttl_seconds,
        first_poll=r.last_success_at is None,
        tags=frozenset(r.tags or ()),
    )


def feed_status(r: FeedRow, items: int) -> FeedStatus:
    """A feed row and its item count as the value callers get."""
    state = FeedState(r.state)
    return FeedStatus(
        id=r.id,
        url=r.current_url,
        configured_url=r.url,
        name=feed_display_name(r.name, r.title, r.url),
        title=r.title,
        state=state,
        active=r.active,
        last_polled_at=r.last_polled_at,
        last_status=r.last_status,
        last_error=r.last_error,
        warning=r.warning,
        error_count=r.error_count,
        items=items,
        next_poll_at=None if state == FeedState.GONE else r.next_poll_at,
        source=FeedSource(r.source),
        tags=frozenset(r.tags or ()),
        paused_at=r.paused_at,
        configured_name=r.name,
    )


def _new_feed(url: str, name: str | None, source: FeedSource, now: datetime) -> dict[str, object]:
    """The values of a feed row that has never been polled: due now."""
    return {
        "url": url,
        "current_url": url,
        "name": name,
        "active": True,
        "state": FeedState.NEW,
        "error_count": 0,
        "next_poll_at": now,
        "created_at": now,
        "source": source,
    }
