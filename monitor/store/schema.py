"""The database tables, as SQLAlchemy 2 typed ORM classes.

Migrations that create and change these tables live in ``monitor/migrations`` (Alembic) and
are applied at start; this module is what ``store.py`` queries against. Rows never leave
``store.py``: other stages get the dataclasses of ``monitor.types``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend.

    SQLite has no time zone type and hands back naive values; storing naive UTC and tagging
    it on the way out makes both backends compare and return the same thing.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware values")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite when a raw SQL expression produced the value
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), str: Text()}


class FeedRow(Base):
    """A feed and its polling state. ``url`` is the configured URL (its identity);
    ``current_url`` follows permanent redirects."""

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    current_url: Mapped[str]
    name: Mapped[str | None]
    title: Mapped[str | None]
    ttl_seconds: Mapped[float | None] = mapped_column(
        Float
    )  # the feed's own <ttl>/sy:updatePeriod, kept for 304s
    active: Mapped[bool] = mapped_column(default=True)
    state: Mapped[str] = mapped_column(String(16), default="new")
    etag: Mapped[str | None]
    last_modified: Mapped[str | None]
    last_polled_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_status: Mapped[int | None]
    last_error: Mapped[str | None]
    warning: Mapped[str | None]
    error_count: Mapped[int] = mapped_column(default=0)
    next_poll_at: Mapped[datetime] = mapped_column(index=True)
    retry_after: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    # where the feed is declared: "config" (the file), "opml" (imported) or "api"
    source: Mapped[str] = mapped_column(String(8), default="config", server_default="config")
    tags: Mapped[list[str] | None] = mapped_column(JSON)  # a database feed's own tags
    paused_at: Mapped[datetime | None]  # paused by the operator: not polled until resumed
    # Feed health (monitor.health): the last poll that brought new items and the gaps (s)
    # between the last such polls, kept here so that pruning items never erases them ...
    last_arrival_at: Mapped[datetime | None]
    arrival_gaps: Mapped[list[float] | None] = mapped_column(JSON)
    # ... and the health last announced, its start, the URL last announced (None: the
    # configured one) and a version that a transition must match to be written.
    health: Mapped[str] = mapped_column(String(16), default="ok", server_default="ok")
    health_since: Mapped[datetime | None]
    health_url: Mapped[str | None]
    health_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # Polls recorded and failed polls recorded: each numbers its poll's row in
    # poll_history (the slot is the number modulo the ring's size)
    poll_count: Mapped[int] = mapped_column(default=0, server_default="0")
    poll_failures: Mapped[int] = mapped_column(default=0, server_default="0")


class ItemRow(Base):
    """A stored feed item. ``key_hash`` (sha256 of the identity) keeps the unique index
    small whatever the length of a guid."""

    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("feed_id", "key_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    key: Mapped[str]
    key_hash: Mapped[str] = mapped_column(String(64))
    guid: Mapped[str | None]
    link: Mapped[str | None]
    title: Mapped[str]
    summary: Mapped[str]
    content: Mapped[str]
    author: Mapped[str]
    categories: Mapped[list[str]] = mapped_column(JSON)
    published: Mapped[datetime | None]
    updated: Mapped[datetime | None]
    content_hash: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(index=True)
    changed_at: Mapped[datetime]


class PrunedItemRow(Base):
    """The identity of an item that retention pruned: a feed that serves it again does
    not store it as new (nor alert). Refreshed each time the feed serves it; forgotten
    once the feed has stopped serving it for a retention period."""

    __tablename__ = "pruned_items"

    feed_id: Mapped[int] = mapped_column(
        ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True
    )
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seen_at: Mapped[datetime] = mapped_column(index=True)


class PollRow(Base):
    """One recent poll of a feed, in one of two rings per feed (``ring``): "poll" holds
    the last polls, "error" the last failed ones (so that good polls never push the
    errors out). A poll is written over the row of its slot (``seq`` modulo the ring's
    size): bounded by construction, never pruned."""

    __tablename__ = "poll_history"

    feed_id: Mapped[int] = mapped_column(
        ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True
    )
    ring: Mapped[str] = mapped_column(String(8), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int]  # the feed's poll (or failure) number
    polled_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))
    status: Mapped[int | None]
    ms: Mapped[int | None]
    new_items: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None]


class AlertRow(Base):
    """One alert per (item, watchlist): the outbox entry, written with the item."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("item_id", "watchlist"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    watchlist: Mapped[str] = mapped_column(String(200))
    matches: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(index=True)
    # The item's story, and the alert's part in it: "lead" (the story's first alert for
    # this watchlist), "member" (a later item, attached: delivered only on routes that keep
    # every item) or "update" (the story reached ``story_step`` sources). No foreign key:
    # adding one on SQLite would copy the table. Null: no story (stories off, or older).
    story_id: Mapped[str | None] = mapped_column(String(36), index=True)
    story_role: Mapped[str | None] = mapped_column(String(8))
    story_step: Mapped[int | None]


class StoryRow(Base):
    """The same news from several feeds: its size (items) and distinct sources (feeds),
    and the highest spread-update step announced."""

    __tablename__ = "stories"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[str]
    created_at: Mapped[datetime]
    last_at: Mapped[datetime] = mapped_column(index=True)
    size: Mapped[int]
    sources: Mapped[int]
    announced: Mapped[int] = mapped_column(default=0)


class StoryMemberRow(Base):
    """An item's place in its story, with the features the "same story" test compares."""

    __tablename__ = "story_members"
    __table_args__ = (Index("ix_story_members_story_id_feed_id", "story_id", "feed_id"),)

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    story_id: Mapped[str] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"))
    feed_id: Mapped[int]
    seen_at: Mapped[datetime]
    features: Mapped[str]


class StoryKeyRow(Base):
    """The candidate index: a member under each of its keys (link, title, similarity
    bands), so a new item finds its story's members without a scan of the window. Rows
    older than the window are pruned."""

    __tablename__ = "story_keys"
    # On SQLite the rows live in the primary key's b-tree alone: one copy of two million
    # small rows instead of a table and an index of them.
    __table_args__: ClassVar[dict[str, Any]] = {"sqlite_with_rowid": False}

    key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # No foreign key: a cascade from a pruned item would scan the table (no index leads
    # from an item to its rows). A row whose member is gone is never a candidate.
    item_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seen_at: Mapped[datetime] = mapped_column(index=True)


class DeliveryRow(Base):
    """An alert's delivery to one channel and its retry state."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("alert_id", "channel"),
        Index("ix_deliveries_due", "state", "next_attempt_at"),
        Index("ix_deliveries_channel_sent", "channel", "sent_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(200))
    # "now": sent on its own; "digest": collected and sent with others of its channel
    mode: Mapped[str] = mapped_column(String(8), default="now", server_default="now")
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None]
    next_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]


class ChannelRow(Base):
    """A channel's lasting state: a receiver that answered 410 Gone disables its channel
    until the operator enables it again (``monitor channels enable``)."""

    __tablename__ = "channels"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None]


class NoticeRow(Base):
    """A feed-health notice (failing, silent, gone, moved, recovered) as it was raised:
    the feed's name and URL of that moment, so a retry sends the same message."""

    __tablename__ = "notices"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    feed_name: Mapped[str]
    feed_url: Mapped[str]
    previous_url: Mapped[str | None]
    recovered_from: Mapped[str | None] = mapped_column(String(16))
    since: Mapped[datetime]
    detail: Mapped[str]
    created_at: Mapped[datetime]


class NoticeDeliveryRow(Base):
    """A notice's delivery to one channel and its retry state (as ``deliveries`` for
    alerts)."""

    __tablename__ = "notice_deliveries"
    __table_args__ = (
        UniqueConstraint("notice_id", "channel"),
        Index("ix_notice_deliveries_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_id: Mapped[str] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None]
    next_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
