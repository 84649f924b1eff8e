"""Values handed between the stages: fetch -> parse -> store -> match -> alerts.

Frozen, slotted, keyword-only dataclasses: a stage can neither mutate what it received nor
confuse two fields of the same type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from datetime import UTC, datetime
from enum import StrEnum

# The one decorator for values handed between stages, defined on the lowest floor.
from alerts.base import frozen as frozen
from httpfields import redact_url


def utcnow() -> datetime:
    """The one clock of this host: aware UTC. Code that needs time takes a clock argument
    defaulting to this, so tests pass their own."""
    return datetime.now(UTC)


def feed_display_name(name: str | None, title: str | None, url: str) -> str:
    """The one rule for a feed's name wherever it is shown or matched (``feed:`` queries,
    alerts, listings): the configured name, else the title the feed gives itself, else its
    configured URL, without the credentials it may carry."""
    return name or title or redact_url(url)


class FeedState(StrEnum):
    """A feed's polling state, as stored. ``new``: never polled successfully nor failed."""

    NEW = "new"
    OK = "ok"
    ERROR = "error"
    GONE = "gone"  # HTTP 410: polling stopped until the feed is configured anew


class FeedSource(StrEnum):
    """Where a feed is declared. The file owns the feeds it lists; the others live in the
    database until removed there (``monitor feeds remove``)."""

    CONFIG = "config"
    OPML = "opml"  # monitor feeds import
    API = "api"  # POST /api/feeds


class DeliveryState(StrEnum):
    """A delivery's state, as stored. Pending and failed ones are claimed when due."""

    PENDING = "pending"
    FAILED = "failed"  # retryable failure: tried again at ``next_attempt_at``
    DEAD = "dead"  # retries exhausted or a permanent failure: only a manual retry sends it
    SENT = "sent"


class DeliveryMode(StrEnum):
    NOW = "now"  # sent on its own
    DIGEST = "digest"  # collected and sent with the others of its channel


@frozen
class FetchRequest:
    """What the fetcher needs to poll one feed: the URL in use and the stored validators.

    ``headers`` (the feed's configured ones, credentials among them) go only to the origin
    of ``configured_url`` (else of ``url``) and to its move from http to https.
    """

    url: str
    etag: str | None = None
    last_modified: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    configured_url: str | None = None


@frozen
class FetchResult:
    """A completed HTTP exchange. "Not modified" and "gone" are results, not errors.

    ``permanent_url`` is set only when every redirect hop was permanent (301/308) and the
    chain stayed where the feed's configured headers may go: the caller then uses that URL
    from now on (RFC 9110 section 15.4). A permanent redirect elsewhere leaves the URL as it
    is and says so in ``warning``, for the feed's record.
    """

    url: str
    final_url: str
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    permanent_url: str | None = None
    max_age_seconds: float | None = None  # from Cache-Control max-age or Expires
    elapsed_ms: float = 0.0
    warning: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def gone(self) -> bool:
        return self.status == 410


@frozen
class Item:
    """One feed entry, normalised. Text fields are plain text: HTML stripped, entities decoded.

    ``key`` is the item's identity within its feed: the guid, else the link, else a hash of
    title and content. ``content_hash`` changes when the item is edited.
    """

    key: str
    guid: str | None
    link: str | None
    title: str
    summary: str
    content: str
    author: str
    categories: tuple[str, ...]
    published: datetime | None
    updated: datetime | None
    content_hash: str

    @property
    def date(self) -> datetime | None:
        """The date used for the backlog window: published, else updated."""
        return self.published or self.updated


@frozen
class ParsedFeed:
    """A parsed feed document. ``warning`` is set for malformed XML that still yielded items."""

    title: str
    link: str | None
    items: tuple[Item, ...]
    ttl_seconds: float | None = None  # RSS <ttl> or sy:updatePeriod/updateFrequency
    warning: str | None = None
    # What the next parse of this feed may skip (monitor.parse.unchanged); None when the
    # document's items could not be told apart.
    fingerprint: bytes | None = None


@frozen
class MatchDetail:
    """Why an item matched: the term as written in the query, the field, and a snippet."""

    term: str
    field: str
    snippet: str


@frozen
class WatchlistMatch:
    """An item matched one watchlist."""

    watchlist: str
    matches: tuple[MatchDetail, ...]


@frozen
class MatchContext:
    """What the matcher knows about where an item comes from (for ``feed:`` and scoping)."""

    feed_name: str
    feed_url: str
    feed_tags: frozenset[str] = frozenset()


@frozen
class Watchlist:
    name: str
    query: str
    feeds: frozenset[str] = frozenset()  # only items of these feeds (empty: all)
    tags: frozenset[str] = frozenset()  # only feeds with one of these tags (empty: all)
    language: str | None = None  # "ru", "en", "none" (no inflection); None: by script

    def admits(self, context: MatchContext) -> bool:
        """Whether items from this feed are considered at all."""
        if self.feeds and context.feed_name not in self.feeds:
            return False
        return not self.tags or not self.tags.isdisjoint(context.feed_tags)


@frozen
class ClaimedFeed:
    """A claimed feed, as the pipeline needs it to poll once."""

    id: int
    url: str  # the configured URL: the feed's identity
    current_url: str  # after permanent redirects
    name: str | None
    title: str | None
    etag: str | None
    last_modified: str | None
    error_count: int
    ttl_seconds: float | None = None  # the feed's refresh hint from its last full response
    first_poll: bool  # no successful poll yet: the backlog window applies
    tags: frozenset[str] = frozenset()  # a database feed's own (the file's feeds: the file's)

    @property
    def label(self) -> str:
        return feed_display_name(self.name, self.title, self.url)


@frozen
class PollUpdate:
    """The outcome of one poll, written to the feed's row (and its lease released)."""

    polled_at: datetime
    state: FeedState
    status: int | None
    error: str | None = None
    warning: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    current_url: str | None = None
    title: str | None = None
    ttl_seconds: float | None = None  # set after a full parse; a 304 keeps the stored one
    next_poll_at: datetime
    retry_after: datetime | None = None
    error_count: int = 0
    # for the feed's poll history: how long the poll took, and the new items it brought
    ms: int | None = None
    new_items: int = 0


@frozen
class Route:
    """Where an alert goes: a channel, now or in the digest due at ``digest_at``."""

    channel: str
    digest_at: datetime | None = None
    separate: bool = False  # every item of a story, not one alert per story


@frozen
class NewAlert:
    """An alert to write with its item (the outbox): one per (item, watchlist)."""

    id: str
    item_key: str
    watchlist: str
    matches: tuple[MatchDetail, ...]
    routes: tuple[Route, ...]


@frozen
class StoredItems:
    """What ``add_items`` did: the items that were new and the ones edited in place."""

    new: int
    changed: int
    alerts: int
