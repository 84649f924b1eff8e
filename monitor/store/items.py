"""The items table: each item stored once by identity, with its alerts and their deliveries.

New items, edits of stored ones, the alerts of the new ones with a pending delivery per
route (the outbox), and the poll's outcome are written in one transaction: a crash loses
nothing half-done, and an alert exists exactly when its item was stored by this poll. It
does not decide which items are new or alert (:mod:`monitor.decide` does) and does not send.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from monitor.store.base import StoreBase, key_hash, storage_errors
from monitor.store.feeds import apply_polls
from monitor.store.health import remember_arrival
from monitor.store.schema import AlertRow, DeliveryRow, FeedRow, ItemRow, PrunedItemRow
from monitor.store.stories import Placed, alert_role, leads_to_update, place_items
from monitor.stories.plan import StoryPlan, StoryRole, routes_for, update_id
from monitor.types import (
    DeliveryMode,
    DeliveryState,
    Item,
    NewAlert,
    PollUpdate,
    Route,
    StoredItems,
    feed_display_name,
    frozen,
)

# A tombstone's last_seen_at may lag by this much: refreshing it is then a write per hour.
TOMBSTONE_TOUCH = timedelta(hours=1)


@frozen
class StoredItem:
    """An item as stored, with its feed (for ``monitor backtest``)."""

    item: Item
    feed_url: str
    feed_configured_url: str
    feed_name: str
    first_seen_at: datetime


class ItemStore(StoreBase):
    def existing_items(
        self, feed_id: int, keys: Iterable[str], seen_at: datetime | None = None
    ) -> dict[str, str | None]:
        """Content hashes of the stored items among ``keys``, and ``None`` for those that
        retention pruned (their identity is kept, their content is not): indexed queries,
        one transaction per poll. With ``seen_at``, the pruned ones the feed still serves
        are marked as served then, so their tombstones last while the feed serves them."""
        by_hash = {key_hash(k): k for k in keys}
        if not by_hash:
            return {}
        hashes = list(by_hash)
        query = select(ItemRow.key_hash, ItemRow.content_hash).where(
            ItemRow.feed_id == feed_id, ItemRow.key_hash.in_(hashes)
        )
        here = (PrunedItemRow.feed_id == feed_id, PrunedItemRow.key_hash.in_(hashes))
        with storage_errors("look up items"), self._session() as s, s.begin():
            found: dict[str, str | None] = {by_hash[h]: c for h, c in s.execute(query)}
            pruned = list(s.scalars(select(PrunedItemRow.key_hash).where(*here)))
            found.update((by_hash[h], None) for h in pruned if by_hash[h] not in found)
            if pruned and seen_at is not None:
                # A tombstone is rewritten at most hourly; a day is the shortest retention.
                stale = PrunedItemRow.last_seen_at < seen_at - TOMBSTONE_TOUCH
                s.execute(update(PrunedItemRow).where(*here, stale).values(last_seen_at=seen_at))
            return found

    def add_items(
        self,
        feed_id: int,
        *,
        new: Sequence[Item],
        changed: Sequence[Item],
        alerts: Sequence[NewAlert],
        poll: PollUpdate,
        stories: StoryPlan | None = None,
    ) -> StoredItems:
        """Store new items, update edited ones, place the new ones in stories, write
        alerts (each with its part in its story) and their pending deliveries, and record
        the poll: all in one transaction."""
        now = poll.polled_at
        with storage_errors("store items"), self._session() as s, s.begin():
            ids: dict[str, int] = {}
            if new:
                items = ItemRow.__table__  # Core insert: the ORM bulk path costs more per row
                stmt = (
                    self._insert(items)
                    .on_conflict_do_nothing(index_elements=["feed_id", "key_hash"])
                    .returning(items.c.id, items.c.key)
                )
                rows = [_item_values(feed_id, item, now) for item in new]
                ids = {key: id_ for id_, key in s.execute(stmt, rows)}
            for item in changed:
                values = _item_values(feed_id, item, now)
                del values["first_seen_at"]
                s.execute(
                    update(ItemRow)
                    .where(ItemRow.feed_id == feed_id, ItemRow.key_hash == values["key_hash"])
                    .values(**values)
                )
            placed = Placed(stories={}, steps={})
            if stories is not None and ids:
                placed = place_items(
                    s, self._insert, feed_id=feed_id, ids=ids, plan=stories, now=now
                )
            written = 0
            for alert in alerts:
                if alert.item_key not in ids:  # stored by a concurrent poll: not ours to alert
                    continue
                written += self._add_alert(s, ids[alert.item_key], alert, now, placed)
            if stories is not None:
                self._announce(s, placed, stories, now)
            if ids:  # the feed's health learns its usual gap between new items
                remember_arrival(s, feed_id, now)
            apply_polls(s, [(feed_id, poll)])
            return StoredItems(new=len(ids), changed=len(changed), alerts=written)

    def _add_alert(
        self, s: Session, item_id: int, alert: NewAlert, now: datetime, placed: Placed
    ) -> int:
        matches = [{"term": m.term, "field": m.field, "snippet": m.snippet} for m in alert.matches]
        story = placed.stories.get(item_id)
        role = alert_role(s, story, alert.watchlist, item_id, placed) if story else None
        step = placed.steps[story][0] if story and role == StoryRole.UPDATE else None
        row = {"id": alert.id, "item_id": item_id, "watchlist": alert.watchlist}
        story_values = {"story_id": story, "story_role": role, "story_step": step}
        return self._write_alert(
            s, {**row, **story_values, "matches": matches}, routes_for(role, alert.routes), now
        )

    def _announce(self, s: Session, placed: Placed, plan: StoryPlan, now: datetime) -> None:
        """A spread update for each watchlist with an alert on a story that just reached a
        step, unless the item that brought it there alerted that watchlist itself (that
        alert is the update)."""
        for story, (step, item_id) in placed.steps.items():
            for lead, watchlist, matches in leads_to_update(s, story, item_id):
                values = {
                    "id": update_id(lead, step),
                    "item_id": item_id,
                    "watchlist": watchlist,
                    "matches": matches,
                    "story_id": story,
                    "story_role": StoryRole.UPDATE,
                    "story_step": step,
                }
                self._write_alert(s, values, plan.update_routes.get(watchlist, ()), now)

    def _write_alert(
        self, s: Session, values: dict[str, object], routes: Sequence[Route], now: datetime
    ) -> int:
        """An alert row and a pending delivery per route; 0 when it was written before."""
        stmt = self._insert(AlertRow).values(**values, created_at=now).on_conflict_do_nothing()
        if s.execute(stmt).rowcount == 0:
            return 0
        for route in routes:
            s.add(
                DeliveryRow(
                    alert_id=values["id"],
                    channel=route.channel,
                    mode=DeliveryMode.DIGEST if route.digest_at else DeliveryMode.NOW,
                    state=DeliveryState.PENDING,
                    attempts=0,
                    next_attempt_at=route.digest_at or now,
                )
            )
        return 1

    def items_since(self, since: datetime, limit: int = 100_000) -> list[StoredItem]:
        """Items first seen since ``since``, newest first."""
        query = (
            select(ItemRow, FeedRow)
            .join(FeedRow, FeedRow.id == ItemRow.feed_id)
            .where(ItemRow.first_seen_at >= since)
            .order_by(ItemRow.first_seen_at.desc(), ItemRow.id.desc())
            .limit(limit)
        )
        with storage_errors("read items"), self._session() as s:
            return [stored_item(i, f) for i, f in s.execute(query)]


def stored_item(i: ItemRow, f: FeedRow) -> StoredItem:
    """An item row and its feed's as the value callers get (the API's listings too)."""
    return StoredItem(
        item=_item(i),
        feed_url=f.current_url,
        feed_configured_url=f.url,
        feed_name=feed_display_name(f.name, f.title, f.url),
        first_seen_at=i.first_seen_at,
    )


def _item(i: ItemRow) -> Item:
    return Item(
        key=i.key,
        guid=i.guid,
        link=i.link,
        title=i.title,
        summary=i.summary,
        content=i.content,
        author=i.author,
        categories=tuple(i.categories),
        published=i.published,
        updated=i.updated,
        content_hash=i.content_hash,
    )


def _item_values(feed_id: int, item: Item, now: datetime) -> dict[str, object]:
    return {
        "feed_id": feed_id,
        "key": item.key,
        "key_hash": key_hash(item.key),
        "guid": item.guid,
        "link": item.link,
        "title": item.title,
        "summary": item.summary,
        "content": item.content,
        "author": item.author,
        "categories": list(item.categories),
        "published": item.published,
        "updated": item.updated,
        "content_hash": item.content_hash,
        "first_seen_at": now,
        "changed_at": now,
    }
