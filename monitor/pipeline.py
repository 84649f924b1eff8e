"""The only module that knows the order: fetch -> parse -> store -> match -> alerts.

``poll_feed`` takes one claimed feed through the stages and records the outcome on the
feed, whatever happens: an error in one feed is a value written to that feed's row, never
an exception that stops the others. New items' alerts are handed to the store with their
routes (channel, now or at a digest time); sending them is the outbox's job (``outbox.py``).

It does not schedule anything (``schedule.py`` does) and does not build its collaborators
(``app.py`` does).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from monitor.cadence import next_poll_after_failure, next_poll_after_success
from monitor.config import FeedConfig, Settings
from monitor.errors import FetchError, MonitorError, ParseError
from monitor.fetch import Fetcher
from monitor.match import Matcher
from monitor.store import Store
from monitor.types import (
    FeedState,
    FetchRequest,
    FetchResult,
    Item,
    MatchContext,
    NewAlert,
    ParsedFeed,
    PollUpdate,
    Route,
)
from monitor.workers import ParseWorkers

log = logging.getLogger("monitor.poll")
ALERT_NAMESPACE = uuid.UUID("6f1f8a4e-3c0b-4b8e-9d7a-2a7f5d9f1c11")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class PollReport:
    """One poll, for logs and the ``poll`` command."""

    feed: str
    url: str
    state: str
    status: int | None
    new: int = 0
    matched: int = 0
    error: str | None = None
    warning: str | None = None
    ms: float = 0.0


def alert_id(feed_url: str, item_key: str, watchlist: str) -> str:
    """Stable across retries, restarts and even a rebuilt database: receivers can use it
    as an idempotency key."""
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{feed_url}\x1f{item_key}\x1f{watchlist}"))


class Pipeline:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        fetcher: Fetcher,
        matcher: Matcher,
        parser: ParseWorkers,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.fetcher = fetcher
        self.matcher = matcher
        self.parser = parser
        self.clock = clock
        self.rng = rng or random.Random()
        self.feeds: dict[str, FeedConfig] = {f.url: f for f in settings.feeds}
        self.routes = {w.name: tuple(w.notify) for w in settings.watchlists}
        self.channel_digests = {c.name: c.digest for c in settings.channels}

    # -- polling ---------------------------------------------------------------------------

    async def claim_feeds(self, *, only_due: bool, limit: int | None = None) -> list[FeedState]:
        return await asyncio.to_thread(
            self.store.claim_due_feeds,
            self.clock(),
            self.settings.service.lease,
            only_due=only_due,
            limit=limit,
        )

    async def poll_feeds(self, feeds: Sequence[FeedState]) -> list[PollReport]:
        """Poll many feeds concurrently, at most as many at once as the service would:
        fetching outruns parsing, and unbounded, hundreds of bodies would wait in memory."""
        room = asyncio.Semaphore(self.settings.polling.max_concurrency * 2)

        async def bounded(feed: FeedState) -> PollReport:
            async with room:
                return await self.poll_feed(feed)

        return list(await asyncio.gather(*(bounded(f) for f in feeds)))

    async def poll_feed(self, feed: FeedState) -> PollReport:
        """Poll one feed; never raises for a problem of the feed or the database."""
        started = time.monotonic()
        try:
            report = await self._poll(feed)
        except MonitorError as exc:
            report = PollReport(
                feed=feed.label, url=feed.current_url, state="error", status=None, error=str(exc)
            )
        except Exception as exc:  # a bug must not take the other feeds down
            log.exception("feed=%s unexpected error", feed.current_url)
            report = PollReport(
                feed=feed.label,
                url=feed.current_url,
                state="error",
                status=None,
                error=f"internal error: {exc!r}",
            )
        report = replace(report, ms=(time.monotonic() - started) * 1000)
        _log_poll(report)
        return report

    async def _poll(self, feed: FeedState) -> PollReport:
        config = self.feeds.get(feed.url) or FeedConfig(url=feed.url)
        request = FetchRequest(
            url=feed.current_url,
            etag=feed.etag,
            last_modified=feed.last_modified,
            headers=config.headers,
        )
        try:
            result = await self.fetcher.fetch(request)
        except FetchError as exc:
            return await self._failed(feed, config, exc.status, exc.message, exc.retry_after)
        if result.gone:
            return await self._gone(feed, result)
        if result.not_modified:
            return await self._unchanged(feed, config, result)
        try:
            parsed = await self.parser.parse(result)
        except ParseError as exc:
            return await self._failed(feed, config, result.status, exc.message, None)
        return await self._store(feed, config, result, parsed)

    async def _store(
        self, feed: FeedState, config: FeedConfig, result: FetchResult, parsed: ParsedFeed
    ) -> PollReport:
        now = self.clock()
        keys = [item.key for item in parsed.items]
        existing = await asyncio.to_thread(self.store.existing_items, feed.id, keys)
        new = [i for i in parsed.items if i.key not in existing]
        changed = [
            i for i in parsed.items if i.key in existing and existing[i.key] != i.content_hash
        ]
        alerts = self._match(feed, config, new, now)
        poll = PollUpdate(
            polled_at=now,
            state="ok",
            status=result.status,
            warning=parsed.warning,
            etag=result.etag,
            last_modified=result.last_modified,
            current_url=result.permanent_url,
            title=parsed.title or None,
            ttl_seconds=parsed.ttl_seconds,
            next_poll_at=self._next_poll(now, config, result.max_age_seconds, parsed.ttl_seconds),
        )
        stored = await asyncio.to_thread(
            self.store.add_items, feed.id, new=new, changed=changed, alerts=alerts, poll=poll
        )
        return PollReport(
            feed=feed.label,
            url=result.permanent_url or feed.current_url,
            state="ok",
            status=result.status,
            new=stored.new,
            matched=stored.alerts,
            warning=parsed.warning,
        )

    def _match(
        self, feed: FeedState, config: FeedConfig, items: Sequence[Item], now: datetime
    ) -> list[NewAlert]:
        """Alerts for new items. On a feed's first poll only items dated within the backlog
        window count (an undated item counts as old); later, every new item does."""
        backlog = self.settings.feed_backlog(config)
        if feed.first_poll and backlog is not None:
            cutoff = now - timedelta(seconds=backlog)
            items = [i for i in items if i.date is not None and i.date >= cutoff]
        context = MatchContext(
            feed_name=feed.label, feed_url=feed.current_url, feed_tags=config.tags
        )
        alerts = []
        for item in items:
            for found in self.matcher.match_item(item, context):
                alerts.append(
                    NewAlert(
                        id=alert_id(feed.url, item.key, found.watchlist),
                        item_key=item.key,
                        watchlist=found.watchlist,
                        matches=found.matches,
                        routes=self._routes(found.watchlist, now),
                    )
                )
        return alerts

    def _routes(self, watchlist: str, now: datetime) -> tuple[Route, ...]:
        """Each channel the watchlist notifies, now or at its digest's next send time."""
        routes = []
        for route in self.routes.get(watchlist, ()):
            digest = route.digest or self.channel_digests.get(route.channel)
            routes.append(
                Route(channel=route.channel, digest_at=digest.next_send(now) if digest else None)
            )
        return tuple(routes)

    def _next_poll(self, now: datetime, config: FeedConfig, *hints: float | None) -> datetime:
        return next_poll_after_success(
            now,
            self.settings.feed_interval(config),
            hints=hints,
            ceiling=self.settings.polling.max_interval,
            jitter=self.settings.polling.jitter,
            rng=self.rng,
        )

    async def _unchanged(
        self, feed: FeedState, config: FeedConfig, result: FetchResult
    ) -> PollReport:
        now = self.clock()
        poll = PollUpdate(
            polled_at=now,
            state="ok",
            status=304,
            etag=result.etag or feed.etag,
            last_modified=result.last_modified or feed.last_modified,
            current_url=result.permanent_url,
            # A 304 carries no body: the feed's own <ttl> from its last full response holds.
            next_poll_at=self._next_poll(now, config, result.max_age_seconds, feed.ttl_seconds),
        )
        await asyncio.to_thread(self.store.record_poll, feed.id, poll)
        return PollReport(feed=feed.label, url=feed.current_url, state="ok", status=304)

    async def _gone(self, feed: FeedState, result: FetchResult) -> PollReport:
        now = self.clock()
        message = "HTTP 410 Gone: the server says this feed was removed; polling stopped"
        poll = PollUpdate(
            polled_at=now,
            state="gone",
            status=result.status,
            error=message,
            next_poll_at=now,
            error_count=feed.error_count + 1,
        )
        await asyncio.to_thread(self.store.record_poll, feed.id, poll)
        return PollReport(
            feed=feed.label, url=feed.current_url, state="gone", status=410, error=message
        )

    async def _failed(
        self,
        feed: FeedState,
        config: FeedConfig,
        status: int | None,
        message: str,
        retry_after: datetime | None,
    ) -> PollReport:
        now = self.clock()
        failures = feed.error_count + 1
        poll = PollUpdate(
            polled_at=now,
            state="error",
            status=status,
            error=message,
            error_count=failures,
            retry_after=retry_after,
            next_poll_at=next_poll_after_failure(
                now,
                self.settings.feed_interval(config),
                failures=failures,
                max_backoff=self.settings.polling.max_backoff,
                retry_after=retry_after,
                jitter=self.settings.polling.jitter,
                rng=self.rng,
            ),
        )
        await asyncio.to_thread(self.store.record_poll, feed.id, poll)
        return PollReport(
            feed=feed.label, url=feed.current_url, state="error", status=status, error=message
        )


def _log_poll(r: PollReport) -> None:
    fields = f"feed={r.url} status={r.status or '-'} new={r.new} matched={r.matched} ms={r.ms:.0f}"
    if r.state == "ok":
        extra = f" warning={r.warning!r}" if r.warning else ""
        log.info("%s%s", fields, extra)
    else:
        log.warning("%s state=%s error=%r", fields, r.state, r.error)
