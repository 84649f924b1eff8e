"""Trying watchlists without storing or sending: the core that ``monitor match``,
``monitor backtest``, ``POST /api/match`` and ``POST /api/backtest`` share.

Input: watchlists, an item (or a window of stored items) and the feed it comes from, as the
live pipeline would see it. Output: the watchlists that match, each with its terms, fields
and snippets (:class:`~monitor.types.WatchlistMatch`), and for a backtest what would have
alerted. It does not print, read feed files or answer HTTP (the CLI and the API do), and it
reads the store but never writes to it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache

from monitor.config import Settings
from monitor.match import Matcher
from monitor.store import FeedStatus, Store, StoredItem
from monitor.types import (
    FeedSource,
    Item,
    MatchContext,
    Watchlist,
    WatchlistMatch,
    feed_display_name,
    frozen,
)


@frozen
class BacktestHit:
    """A stored item that would have alerted, and the watchlists it matches."""

    stored: StoredItem
    found: tuple[WatchlistMatch, ...]


@frozen
class Backtest:
    """What a backtest found. ``truncated``: the window held more than ``scanned`` items,
    and the oldest of them were not looked at (the work of one backtest is bounded)."""

    scanned: int
    truncated: bool
    hits: tuple[BacktestHit, ...]

    def per_watchlist(self) -> dict[str, int]:
        """How many items each watchlist would have alerted on, by name."""
        counts: dict[str, int] = {}
        for hit in self.hits:
            for found in hit.found:
                counts[found.watchlist] = counts.get(found.watchlist, 0) + 1
        return dict(sorted(counts.items()))


def text_item(title: str, summary: str) -> Item:
    """An item made of a text, identified like a feed item without guid or link."""
    digest = hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()
    return Item(
        key=f"hash:{digest}",
        guid=None,
        link=None,
        title=title,
        summary=summary,
        content="",
        author="",
        categories=(),
        published=None,
        updated=None,
        content_hash=digest,
    )


@lru_cache(maxsize=2)
def trial_matcher(watchlists: tuple[Watchlist, ...], scoped: bool) -> Matcher:
    """The matcher of a trial. Unscoped: a watchlist limited to some feeds or tags still
    shows whether its query matches (a trial that names a feed is scoped, as live).

    Cached: compiling every watchlist costs far more than matching one text, and the API
    answers many trials over the same configuration."""
    if not scoped:
        watchlists = tuple(
            dataclasses.replace(w, feeds=frozenset(), tags=frozenset()) for w in watchlists
        )
    return Matcher(watchlists)


def feed_context(
    settings: Settings, feed: str | None, stored: Callable[[], Sequence[FeedStatus]]
) -> MatchContext:
    """The feed named by ``feed`` (its name or URL) as the live pipeline sees it: an unnamed
    feed goes by the title it gave itself when last polled, so ``feed:`` queries see the same
    name; a feed kept in the database has its own tags. ``stored`` reads the feeds table,
    only when needed. A feed nobody knows is taken at its word, as name and URL."""
    if feed is None:
        return MatchContext(feed_name="", feed_url="")
    config = next((f for f in settings.feeds if feed in {f.name, f.url}), None)
    if config is not None and config.name is not None:
        return MatchContext(feed_name=config.name, feed_url=config.url, feed_tags=config.tags)
    if config is not None:
        row = next((r for r in stored() if r.configured_url == config.url), None)
        return MatchContext(
            feed_name=feed_display_name(None, row and row.title, config.url),
            feed_url=row.url if row else config.url,
            feed_tags=config.tags,
        )
    row = next((r for r in stored() if feed in {r.configured_url, r.url, r.name}), None)
    if row is not None:
        return MatchContext(feed_name=row.name, feed_url=row.url, feed_tags=row.tags)
    return MatchContext(feed_name=feed, feed_url=feed)


def feed_tags(settings: Settings, feed: FeedStatus) -> frozenset[str]:
    """A feed's tags, by the pipeline's rule: the file's for the feeds it declares, their
    own for the feeds kept in the database."""
    if feed.source != FeedSource.CONFIG:
        return feed.tags
    return next((f.tags for f in settings.feeds if f.url == feed.configured_url), frozenset())


def tags_by_url(settings: Settings, stored: Sequence[FeedStatus]) -> dict[str, frozenset[str]]:
    """Every feed's tags (:func:`feed_tags`) by its configured URL, for a backtest."""
    return {f.configured_url: feed_tags(settings, f) for f in stored}


def run_backtest(
    store: Store,
    matcher: Matcher,
    tags: dict[str, frozenset[str]],
    since: datetime,
    max_items: int,
) -> Backtest:
    """Match the items first seen since ``since``, newest first, at most ``max_items``."""
    rows = store.items_since(since, limit=max_items + 1)
    truncated = len(rows) > max_items
    rows = rows[:max_items]
    hits = []
    for row in rows:
        context = MatchContext(
            feed_name=row.feed_name,
            feed_url=row.feed_url,
            feed_tags=tags.get(row.feed_configured_url, frozenset()),
        )
        found = matcher.match_item(row.item, context)
        if found:
            hits.append(BacktestHit(stored=row, found=tuple(found)))
    return Backtest(scanned=len(rows), truncated=truncated, hits=tuple(hits))
