"""Builds the running parts from the settings and closes them again.

Opening an ``App`` connects to the database and brings its schema up to date (Alembic),
makes the feeds table follow the configuration, and builds the HTTP client, the matcher,
the channels and the parse workers; :meth:`App.reload` rebuilds them for a new
configuration. It runs nothing by itself: the service (``schedule.py``) runs the parts on a
tick, and :func:`poll_once` runs them once for ``monitor poll``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from types import TracebackType

from alerts.base import Channel
from alerts.errors import ChannelConfigError
from alerts.registry import build_channel
from alerts.retry import RetryPolicy
from monitor.config import Settings
from monitor.errors import ConfigError
from monitor.fetch import Fetcher, FetchSettings
from monitor.match import Matcher
from monitor.memory import TRIM_EVERY, limit_arenas, release_free_memory
from monitor.metrics import Metrics
from monitor.notices import raise_notices
from monitor.outbox import Outbox
from monitor.parse import ParseWorkers
from monitor.pipeline import Pipeline, PollReport
from monitor.retention import prune_old_items
from monitor.store import FeedSpec, Store
from monitor.store.clock import DatabaseClock
from monitor.store.engine import create_db_engine, migrate, migrate_apart
from monitor.store.lock import lock_sqlite
from monitor.targets import delivery_settings
from monitor.types import frozen


@frozen
class Chore:
    """Upkeep the service runs on its own interval beside polling and delivery, with the
    same guarantees: one run at a time, none started while draining, finished on stop."""

    name: str
    every: float  # seconds; read when the service starts
    run: Callable[[], Awaitable[object]]


def fetch_settings(settings: Settings) -> FetchSettings:
    p = settings.polling
    return FetchSettings(
        timeout=p.timeout,
        deadline=p.deadline,
        max_bytes=p.max_body,
        max_redirects=p.max_redirects,
        per_host=p.per_host,
        max_concurrency=p.max_concurrency,
        allow_private_networks=p.allow_private_networks,
        max_retry_after=p.max_backoff,
    )


class App:
    """The store, the HTTP client, the channels and the pipeline over them."""

    def __init__(self, settings: Settings, *, long_running: bool = False) -> None:
        """``long_running``: the service (``monitor run``), which migrates the database
        in a child process so that it never keeps Alembic loaded, and caps the allocator's
        heaps before any of its threads starts (:mod:`monitor.memory`)."""
        if long_running:
            limit_arenas()
        self.settings = settings
        self.engine = create_db_engine(settings.database)
        self.lock = lock_sqlite(self.engine)
        try:
            (migrate_apart if long_running else migrate)(self.engine)
            self.store = Store(self.engine)
            if self.lock is not None:
                # No other process works on this database (the lock says so): leases found
                # now were left by a killed one, so its work resumes at once.
                self.store.release_leases()
            self.clock = DatabaseClock(self.engine)
            # One for the life of the process: reloads keep it, so counters never reset.
            self.metrics = Metrics()
            self.metrics.watch_database(self.store.count_states)
            self._configure(
                settings,
                Matcher(settings.watchlists_for()),
                self._parse_workers(settings),
            )
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        if self.lock is not None:
            self.lock.release()
        self.engine.dispose()

    def _configure(self, settings: Settings, matcher: Matcher, parser: ParseWorkers) -> None:
        """Build what follows the configuration file around a matcher and parse workers.
        Channels are built, then the feeds table synced, before anything is swapped: if a
        channel cannot be built or the database refuses, nothing has changed. Deliveries
        go to each channel's targets (an apprise channel's URLs): ``delivery``."""
        delivery = delivery_settings(settings)
        try:
            channels: dict[str, Channel] = {c.name: build_channel(c) for c in delivery.channels}
        except ChannelConfigError as exc:  # e.g. a ca_file that became unreadable
            raise ConfigError(settings.source, [f"channels: {exc}"]) from None
        specs = [FeedSpec(url=f.url, name=f.name) for f in settings.feeds]
        self.store.sync_feeds(specs, self.clock())
        self.settings, self.matcher, self.parser = settings, matcher, parser
        self.delivery, self.channels = delivery, channels
        self.retry = {c.name: RetryPolicy.from_retries(c.retry) for c in delivery.channels}
        self.fetcher = Fetcher(fetch_settings(settings))
        self.pipeline = Pipeline(
            settings=delivery,
            store=self.store,
            fetcher=self.fetcher,
            matcher=matcher,
            parser=parser,
            clock=self.clock,
            metrics=self.metrics,
        )
        self.outbox = Outbox(
            store=self.store,
            channels=self.channels,
            configs={c.name: c for c in delivery.channels},
            retry=self.retry,
            lease=settings.service.lease,
            clock=self.clock,
            rng=random.Random(),
            metrics=self.metrics,
        )

    def _parse_workers(self, settings: Settings) -> ParseWorkers:
        p = settings.polling
        return ParseWorkers(p.parse_workers, p.parse_budget, self.metrics.record_parse_restart)

    def chores(self) -> list[Chore]:
        """The upkeep this configuration asks for; each run reads the parts current then
        (a reload swaps them)."""
        return [
            # Always listed: a reload may turn retention on (its `every` needs a restart).
            Chore(
                name="retention",
                every=self.settings.retention.every,
                run=lambda: prune_old_items(
                    self.store,
                    self.settings.retention,
                    self.clock,
                    stories=self.settings.stories,
                ),
            ),
            # Always listed too: the health is tracked even with no channel to tell.
            Chore(
                name="health",
                every=self.settings.health.every,
                run=lambda: raise_notices(self.store, self.delivery.health, self.clock),
            ),
            Chore(
                name="memory",
                every=TRIM_EVERY,
                run=lambda: asyncio.to_thread(release_free_memory),
            ),
        ]

    async def reload(self, settings: Settings) -> list[str]:
        """Apply a new configuration; returns what changed, for the log.

        Call it while no poll or delivery runs (the service drains first). Feeds, watchlists,
        channels and polling settings follow the file; the automaton is rebuilt only when
        the watchlists changed. A new database, service tick or HTTP address needs a
        restart: :class:`ConfigError` then, and nothing changes. Counters go on.
        """
        old = self.settings
        restart = [
            f"{key}: changing it needs a restart"
            for key, before, after in (
                ("database", old.database, settings.database),
                ("service.tick", old.service.tick, settings.service.tick),
                ("http.listen", _listen(old), _listen(settings)),
            )
            if before != after
        ]
        if restart:
            raise ConfigError(settings.source, restart)
        changes = _changes(old, settings)
        matcher, parser = self.matcher, self.parser
        watchlists = settings.watchlists_for()
        if tuple(watchlists) != matcher.watchlists:
            matcher = await asyncio.to_thread(Matcher, watchlists)
        wanted = (settings.polling.parse_workers, settings.polling.parse_budget)
        if wanted != (old.polling.parse_workers, old.polling.parse_budget):
            parser = self._parse_workers(settings)
        fetcher, channels, workers = self.fetcher, self.channels, self.parser
        try:
            await asyncio.to_thread(self._configure, settings, matcher, parser)
        except BaseException:
            if parser is not workers:
                parser.close()
            raise
        if parser is not workers:
            workers.close()
        await fetcher.aclose()
        await asyncio.gather(*(c.aclose() for c in channels.values()))
        return changes

    async def aclose(self) -> None:
        await self.fetcher.aclose()
        await asyncio.gather(*(c.aclose() for c in self.channels.values()))
        self.parser.close()
        self._release()

    async def __aenter__(self) -> App:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _changes(old: Settings, new: Settings) -> list[str]:
    """What a reload changes, in a few words per section."""

    def diff(section: str, before: dict[str, object], after: dict[str, object]) -> str | None:
        added = sorted(after.keys() - before.keys())
        removed = sorted(before.keys() - after.keys())
        changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
        parts = [
            f"{label} {', '.join(names)}"
            for label, names in (("added", added), ("removed", removed), ("changed", changed))
            if names
        ]
        return f"{section}: {'; '.join(parts)}" if parts else None

    found = [
        diff("feeds", {f.url: f for f in old.feeds}, {f.url: f for f in new.feeds}),
        diff(
            "watchlists", {w.name: w for w in old.watchlists}, {w.name: w for w in new.watchlists}
        ),
        diff("channels", {c.name: c for c in old.channels}, {c.name: c for c in new.channels}),
        diff("settings", _general(old), _general(new)),
    ]
    return [f for f in found if f is not None]


def _listen(settings: Settings) -> str | None:
    """Where the HTTP server listens (None: off); the server is bound once, at start."""
    return settings.http.listen if settings.http else None


def _general(settings: Settings) -> dict[str, object]:
    return {
        "defaults": settings.defaults,
        "polling": settings.polling,
        "service": settings.service,
        "retention": settings.retention,
    }


async def poll_once(settings: Settings, *, only_due: bool = False) -> tuple[list[PollReport], int]:
    """One pass: poll the feeds (all, or the due ones), then send what is due.

    Returns the poll reports and the number of delivery attempts."""
    async with await asyncio.to_thread(App, settings) as app:
        feeds = await app.pipeline.claim_feeds(only_due=only_due)
        reports = await app.pipeline.poll_feeds(feeds)
        sent = await app.outbox.deliver_due()
        return reports, sent
