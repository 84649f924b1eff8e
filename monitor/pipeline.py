"""The only module that knows the order: fetch -> parse -> store -> match -> alerts.

``poll_feed`` takes one claimed feed through the stages and records the outcome on the
feed, whatever happens: an error in one feed is a value written to that feed's row, never
an exception that stops the others. What to store, what alerts and when to poll next are
decided by :mod:`monitor.decide` (pure); this module does the I/O around it. For a
full-text feed, the new items' article pages are fetched and extracted between parse and
match, within one bound (:mod:`monitor.fulltext`). Sending the alerts is the outbox's job
(``outbox.py``).

It does not schedule anything (``schedule.py`` does) and does not build its collaborators
(``app.py`` does).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from httpfields import redact_url
from monitor.config import FeedConfig, Settings
from monitor.decide import (
    FeedPolicy,
    Routing,
    alerting,
    decide_failure,
    decide_gone,
    decide_items,
    decide_unchanged,
)
from monitor.errors import FetchError, MonitorError, ParseError, where
from monitor.fetch import Fetcher
from monitor.fulltext import ArticleReport, fetch_articles, wants_fulltext, with_articles
from monitor.match import Matcher
from monitor.metrics import Metrics
from monitor.parse import ParseWorkers
from monitor.parse.unchanged import Fingerprints
from monitor.recording import PollRecorder
from monitor.store import Store
from monitor.stories.plan import StoryPolicy
from monitor.types import (
    ClaimedFeed,
    FeedState,
    FetchRequest,
    FetchResult,
    ParsedFeed,
    PollUpdate,
    frozen,
    utcnow,
)

log = logging.getLogger("monitor.poll")


@frozen
class PollReport:
    """One poll, for logs and the ``poll`` command."""

    feed: str
    url: str
    state: FeedState
    status: int | None
    new: int = 0
    matched: int = 0
    error: str | None = None
    warning: str | None = None
    ms: float = 0.0
    articles: ArticleReport | None = None  # a full-text feed's article pages


def feed_policy(settings: Settings, feed: FeedConfig) -> FeedPolicy:
    p = settings.polling
    return FeedPolicy(
        interval=settings.feed_interval(feed),
        backlog=settings.feed_backlog(feed),
        tags=feed.tags,
        max_interval=p.max_interval,
        max_backoff=p.max_backoff,
        jitter=p.jitter,
    )


def routing(settings: Settings) -> Routing:
    return Routing(
        routes={
            w.name: tuple((r.channel, r.digest, r.stories == "separate") for r in w.notify)
            for w in settings.watchlists
        },
        digests={c.name: c.digest for c in settings.channels},
    )


def story_policy(settings: Settings) -> StoryPolicy | None:
    """None without watchlists: a story only ever matters to an alert."""
    s = settings.stories
    if not s.enabled or not settings.watchlists:
        return None
    return StoryPolicy(window=timedelta(seconds=s.window), steps=tuple(s.updates))


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
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.fetcher = fetcher
        self.matcher = matcher
        self.parser = parser
        self.clock = clock
        self.rng = rng or random.Random()
        self.metrics = metrics or Metrics()
        self.feeds: dict[str, FeedConfig] = {f.url: f for f in settings.feeds}
        self.routing = routing(settings)
        self.stories = story_policy(settings)
        self.fingerprints = Fingerprints()
        self.recorder = PollRecorder(store.record_polls)

    async def claim_feeds(self, *, only_due: bool, limit: int | None = None) -> list[ClaimedFeed]:
        return await asyncio.to_thread(
            self.store.claim_due_feeds,
            self.clock(),
            self.settings.service.lease,
            only_due=only_due,
            limit=limit,
        )

    async def poll_feeds(self, feeds: Sequence[ClaimedFeed]) -> list[PollReport]:
        """Poll many feeds concurrently, at most as many at once as the service would."""
        room = asyncio.Semaphore(self.settings.polling.max_inflight)

        async def bounded(feed: ClaimedFeed) -> PollReport:
            async with room:
                return await self.poll_feed(feed)

        return list(await asyncio.gather(*(bounded(f) for f in feeds)))

    async def poll_feed(self, feed: ClaimedFeed) -> PollReport:
        """Poll one feed; never raises for a problem of the feed or the database."""
        started = time.monotonic()
        self.recorder.started()
        try:
            report = await self._poll(feed, started)
        except Exception as exc:  # a bug, or the database: recorded, never fatal to others
            report = await self._broken(feed, exc, started)
        finally:
            self.recorder.ended()
        report = replace(report, ms=(time.monotonic() - started) * 1000)
        _log_poll(report)
        self.metrics.record_poll(report.state, report.status, report.new)
        return report

    async def _broken(self, feed: ClaimedFeed, exc: Exception, started: float) -> PollReport:
        """Whatever failed between the claim and the write is the feed's error, with
        back-off, and the claim is released: no feed stays "new" with no error, claimed
        again every lease period. An unknown exception is named by its type only (its text
        may carry a secret or a feed's bytes); the traceback goes to the debug log."""
        if isinstance(exc, MonitorError):
            message = str(exc)
        else:
            message = f"internal error ({type(exc).__name__}); the log has the details"
            log.error("feed=%s internal error %s", redact_url(feed.current_url), where(exc))
            log.debug("feed=%s internal error", redact_url(feed.current_url), exc_info=exc)
        poll = decide_failure(
            feed,
            self._policy(feed)[1],
            self.clock(),
            self.rng,
            status=None,
            message=message,
        )
        try:
            await self._record(feed, poll, started)
        except Exception as again:
            log.error(
                "feed=%s cannot record its failure (%s); its claim ends with the lease",
                redact_url(feed.current_url),
                type(again).__name__,
            )
        return _report(feed, FeedState.ERROR, None, error=message)

    def _policy(self, feed: ClaimedFeed) -> tuple[FeedConfig, FeedPolicy]:
        # A feed kept in the database (imported, added by the API) has the defaults and
        # its own tags.
        config = self.feeds.get(feed.url) or FeedConfig(url=feed.url, tags=feed.tags)
        return config, feed_policy(self.settings, config)

    async def _poll(self, feed: ClaimedFeed, started: float) -> PollReport:
        config, policy = self._policy(feed)
        request = FetchRequest(
            url=feed.current_url,
            etag=feed.etag,
            last_modified=feed.last_modified,
            headers=config.headers,
            configured_url=feed.url,
        )
        fetching = time.monotonic()
        try:
            result = await self.fetcher.fetch(request)
        except FetchError as exc:
            return await self._failed(feed, policy, exc, exc.status, exc.retry_after, started)
        finally:
            self.metrics.record_fetch(time.monotonic() - fetching)
        if result.gone:
            poll = decide_gone(feed, result, self.clock())
            await self._record(feed, poll, started)
            return _report(feed, FeedState.GONE, result.status, error=poll.error)
        if result.not_modified:
            unchanged = decide_unchanged(feed, policy, result, self.clock(), self.rng)
            await self._record(feed, unchanged, started)
            return _report(feed, FeedState.OK, 304, warning=result.warning)
        # Relative links are resolved against the feed's URL: without its credentials, or
        # every item link would carry them to the store, the alerts and their receivers.
        public = replace(result, final_url=redact_url(result.final_url))
        # Items whose bytes the last parse saw are stored already: not parsed again,
        # unless "auto" full text must judge the feed by all of its items.
        known = self.fingerprints.get(feed.id) if config.fulltext != "auto" else None
        try:
            parsed = await self.parser.parse(public, known=known)
        except ParseError as exc:
            return await self._failed(feed, policy, exc, result.status, None, started)
        report = await self._store(feed, config, policy, result, parsed, started)
        self.fingerprints.put(feed.id, parsed.fingerprint, whole=known is None)
        return report

    async def _store(
        self,
        feed: ClaimedFeed,
        config: FeedConfig,
        policy: FeedPolicy,
        result: FetchResult,
        parsed: ParsedFeed,
        started: float,
    ) -> PollReport:
        keys = [item.key for item in parsed.items]
        # Served now: keeps the tombstones of pruned items the feed still serves (retention).
        existing = await asyncio.to_thread(self.store.existing_items, feed.id, keys, self.clock())
        articles = None
        if wants_fulltext(config.fulltext, parsed.items):
            parsed, articles = await self._articles(feed, policy, parsed, existing)
        # Matching runs on text a feed controls: in a thread, never long on the event loop.
        decision = await asyncio.to_thread(
            decide_items,
            feed,
            policy,
            result,
            parsed,
            existing,
            self.clock(),
            matcher=self.matcher,
            routing=self.routing,
            rng=self.rng,
            stories=self.stories,
        )
        if decision.unmatched:
            log.error(
                "feed=%s %d item(s) could not be matched",
                redact_url(feed.current_url),
                decision.unmatched,
            )
        stored = await asyncio.to_thread(
            self.store.add_items,
            feed.id,
            new=decision.new,
            changed=decision.changed,
            alerts=decision.alerts,
            stories=decision.stories,
            poll=_timed(decision.poll, started, new=len(decision.new)),
        )
        if stored.alerts == len(decision.alerts):
            # Else a concurrent poll stored some of these items, and counts their alerts.
            self.metrics.record_matches([a.watchlist for a in decision.alerts])
        return PollReport(
            feed=feed.label,
            url=redact_url(result.permanent_url or feed.current_url),
            state=FeedState.OK,
            status=result.status,
            new=stored.new,
            matched=stored.alerts,
            warning=decision.poll.warning,
            articles=articles,
        )

    async def _articles(
        self,
        feed: ClaimedFeed,
        policy: FeedPolicy,
        parsed: ParsedFeed,
        existing: Mapping[str, str | None],
    ) -> tuple[ParsedFeed, ArticleReport]:
        """The feed with the article text of its new items that may alert, as far as it
        arrived within ``fulltext_wait`` (:mod:`monitor.fulltext`): pages of items that
        will not alert (old ones on a first poll) are not worth a request."""
        new = [i for i in parsed.items if i.key not in existing]
        wanted = alerting(new, first_poll=feed.first_poll, backlog=policy.backlog, now=self.clock())
        texts, report = await fetch_articles(
            wanted,
            fetcher=self.fetcher,
            parser=self.parser,
            wait=self.settings.polling.fulltext_wait,
        )
        self.metrics.record_articles(report)
        return with_articles(parsed, texts), report

    async def _failed(
        self,
        feed: ClaimedFeed,
        policy: FeedPolicy,
        exc: FetchError | ParseError,
        status: int | None,
        retry_after: datetime | None,
        started: float,
    ) -> PollReport:
        poll = decide_failure(
            feed,
            policy,
            self.clock(),
            self.rng,
            status=status,
            message=exc.message,
            retry_after=retry_after,
            permanent=not exc.retryable,
        )
        await self._record(feed, poll, started)
        return _report(feed, FeedState.ERROR, status, error=exc.message)

    async def _record(self, feed: ClaimedFeed, poll: PollUpdate, started: float) -> None:
        await self.recorder.record(feed.id, _timed(poll, started))


def _timed(poll: PollUpdate, started: float, *, new: int = 0) -> PollUpdate:
    """The poll as its history keeps it: how long it took until written (from the claim
    to the decision: fetch, parse, match), and the new items it brought."""
    return replace(poll, ms=round((time.monotonic() - started) * 1000), new_items=new)


def _report(
    feed: ClaimedFeed,
    state: FeedState,
    status: int | None,
    *,
    error: str | None = None,
    warning: str | None = None,
) -> PollReport:
    return PollReport(
        feed=feed.label,
        url=redact_url(feed.current_url),
        state=state,
        status=status,
        error=error,
        warning=warning,
    )


def _log_poll(r: PollReport) -> None:
    fields = f"feed={r.url} status={r.status or '-'} new={r.new} matched={r.matched} ms={r.ms:.0f}"
    if r.articles is not None:
        fields += f" {r.articles.log_fields()}"
    if r.state == FeedState.OK:
        extra = f" warning={r.warning!r}" if r.warning else ""
        log.info("%s%s", fields, extra)
    else:
        log.warning("%s state=%s error=%r", fields, r.state, r.error)
