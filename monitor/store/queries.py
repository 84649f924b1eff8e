"""The HTTP API's reads: one feed, pages of alerts and of items, alerts per watchlist.

Pages are keyset pages, newest first: a read takes the position of the last row the client
has seen (an alert's ``(created_at, id)``, an item's ``(first_seen_at, id)``) and returns
the rows after it. A page therefore never shifts when new rows arrive (they sort before the
first page), and reading page N costs the same as reading page 1. It does not encode
cursors, and does not search text: the API matches items with the matcher's folding
(SQL ``LIKE`` folds ASCII only), over the rows read here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select

from monitor.store.base import StoreBase, storage_errors
from monitor.store.deliveries import AlertRecord, alert_records
from monitor.store.feeds import FeedStatus, feed_status
from monitor.store.items import StoredItem, stored_item
from monitor.store.schema import AlertRow, DeliveryRow, FeedRow, ItemRow
from monitor.types import DeliveryState, frozen


@frozen
class AlertPosition:
    """Where a page of alerts ended: the last alert's creation time and id."""

    created_at: datetime
    id: str


@frozen
class ItemPosition:
    """Where a page of items ended: the last item's first-seen time and id."""

    first_seen_at: datetime
    id: int


@frozen
class ListedAlert:
    """An alert with its deliveries and its feed's row id (for links to the feed)."""

    feed_id: int
    record: AlertRecord


@frozen
class ListedItem:
    """A stored item with its row id and its feed's (for positions and links)."""

    id: int
    feed_id: int
    stored: StoredItem


class QueryStore(StoreBase):
    def find_feed(self, *, feed_id: int | None = None, url: str | None = None) -> FeedStatus | None:
        """One feed by id, or by URL: the configured one, else the one it moved to."""
        items = select(func.count()).where(ItemRow.feed_id == FeedRow.id).scalar_subquery()
        query = select(FeedRow, items).limit(1)
        if feed_id is not None:
            query = query.where(FeedRow.id == feed_id)
        elif url is not None:
            # the configured URL first: a feed may have moved to another one's URL
            wanted = or_(FeedRow.url == url, FeedRow.current_url == url)
            query = query.where(wanted).order_by(FeedRow.url != url)
        else:
            return None
        with storage_errors("look up feed"), self._session() as s:
            row = s.execute(query).first()
            return feed_status(row[0], row[1]) if row else None

    def page_alerts(
        self,
        *,
        after: AlertPosition | None,
        limit: int,
        watchlist: str | None = None,
        state: DeliveryState | None = None,
        since: datetime | None = None,
    ) -> list[AlertRecord]:
        """Alerts newest first, after ``after``; ``state``: those with a delivery in it."""
        query = _alert_page(after, limit, watchlist, state, since)
        with storage_errors("list alerts"), self._session() as s:
            return alert_records(s, list(s.execute(query)))

    def page_listed_alerts(
        self,
        *,
        after: AlertPosition | None,
        limit: int,
        watchlist: str | None = None,
        state: DeliveryState | None = None,
    ) -> list[ListedAlert]:
        """:meth:`page_alerts` with each alert's feed id (the dashboard links to it)."""
        query = _alert_page(after, limit, watchlist, state, None)
        with storage_errors("list alerts"), self._session() as s:
            rows = list(s.execute(query))
            feed_ids = [f.id for _, _, f in rows]
            records = alert_records(s, rows)
        return [ListedAlert(feed_id=i, record=r) for i, r in zip(feed_ids, records, strict=True)]

    def page_items(
        self,
        *,
        after: ItemPosition | None,
        limit: int,
        since: datetime | None = None,
        feed_id: int | None = None,
    ) -> list[ListedItem]:
        """Stored items newest first (by when they were first seen), after ``after``."""
        query = (
            select(ItemRow, FeedRow)
            .join(FeedRow, FeedRow.id == ItemRow.feed_id)
            .order_by(ItemRow.first_seen_at.desc(), ItemRow.id.desc())
            .limit(limit)
        )
        if after is not None:
            query = query.where(
                _older(ItemRow.first_seen_at, ItemRow.id, after.first_seen_at, after.id)
            )
        if since is not None:
            query = query.where(ItemRow.first_seen_at >= since)
        if feed_id is not None:
            query = query.where(ItemRow.feed_id == feed_id)
        with storage_errors("list items"), self._session() as s:
            return [
                ListedItem(id=i.id, feed_id=f.id, stored=stored_item(i, f))
                for i, f in s.execute(query)
            ]

    def count_alerts_by_watchlist(self, since: datetime) -> dict[str, int]:
        """How many alerts each watchlist raised since ``since`` (absent: none)."""
        query = (
            select(AlertRow.watchlist, func.count())
            .where(AlertRow.created_at >= since)
            .group_by(AlertRow.watchlist)
        )
        with storage_errors("count alerts"), self._session() as s:
            return {name: n for name, n in s.execute(query)}


def _alert_page(
    after: AlertPosition | None,
    limit: int,
    watchlist: str | None,
    state: DeliveryState | None,
    since: datetime | None,
) -> Select[tuple[AlertRow, ItemRow, FeedRow]]:
    """One keyset page of alerts, for the API's listing and the dashboard's alike."""
    query = (
        select(AlertRow, ItemRow, FeedRow)
        .join(ItemRow, ItemRow.id == AlertRow.item_id)
        .join(FeedRow, FeedRow.id == ItemRow.feed_id)
        .order_by(AlertRow.created_at.desc(), AlertRow.id.desc())
        .limit(limit)
    )
    if after is not None:
        query = query.where(_older(AlertRow.created_at, AlertRow.id, after.created_at, after.id))
    if watchlist is not None:
        query = query.where(AlertRow.watchlist == watchlist)
    if state is not None:
        with_state = select(DeliveryRow.alert_id).where(DeliveryRow.state == state)
        query = query.where(AlertRow.id.in_(with_state))
    if since is not None:
        query = query.where(AlertRow.created_at >= since)
    return query


def _older(when: Any, key: Any, after_when: datetime, after_key: object) -> Any:
    """Rows after a page's last one, newest first: older, or as old with a smaller key
    (the keyset condition of both pagings)."""
    return or_(when < after_when, and_(when == after_when, key < after_key))
