"""Builds the running parts from the settings and closes them again.

Opening an ``App`` connects to the database and brings its schema up to date (Alembic),
makes the feeds table follow the configuration, and builds the HTTP client, the matcher,
the channels and the parse workers. It does not poll or send anything by itself.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from types import TracebackType

from alerts.base import Alert, AlertFeed, AlertItem, AlertMatch, Channel
from alerts.errors import DeliveryError
from alerts.registry import build_channel
from alerts.retry import RetryPolicy
from monitor import PROJECT_URL
from monitor.config import Settings
from monitor.db import DatabaseClock, create_db_engine, migrate
from monitor.fetch import Fetcher, FetchSettings
from monitor.match import Matcher
from monitor.outbox import Outbox
from monitor.pipeline import Pipeline, PollReport, utcnow
from monitor.store import FeedSpec, Store
from monitor.workers import ParseWorkers


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
    )


class App:
    """The store, the HTTP client, the channels and the pipeline over them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_db_engine(settings.database)
        migrate(self.engine)
        self.store = Store(self.engine)
        if self.engine.dialect.name == "sqlite":
            # SQLite is single-instance by design: leases left by a killed process can only
            # be our own, so pending work resumes at once instead of after the lease.
            self.store.release_leases()
        self.clock = DatabaseClock(self.engine)
        self.store.sync_feeds(
            [FeedSpec(url=f.url, name=f.name) for f in settings.feeds], self.clock()
        )
        self.channels: dict[str, Channel] = {c.name: build_channel(c) for c in settings.channels}
        self.retry = {c.name: RetryPolicy.from_retries(c.retry) for c in settings.channels}
        self.fetcher = Fetcher(fetch_settings(settings))
        self.parser = ParseWorkers(settings.polling.parse_workers)
        self.pipeline = Pipeline(
            settings=settings,
            store=self.store,
            fetcher=self.fetcher,
            matcher=Matcher(settings.watchlists_for()),
            parser=self.parser,
            clock=self.clock,
        )
        self.outbox = Outbox(
            store=self.store,
            channels=self.channels,
            configs={c.name: c for c in settings.channels},
            retry=self.retry,
            lease=settings.service.lease,
            clock=self.clock,
            rng=random.Random(),
        )

    async def aclose(self) -> None:
        await self.fetcher.aclose()
        await asyncio.gather(*(c.aclose() for c in self.channels.values()))
        self.parser.close()
        self.engine.dispose()

    async def __aenter__(self) -> App:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def poll_once(settings: Settings, *, only_due: bool = False) -> tuple[list[PollReport], int]:
    """One pass: poll the feeds (all, or the due ones), then send what is due.

    Returns the poll reports and the number of delivery attempts."""
    async with await asyncio.to_thread(App, settings) as app:
        feeds = await app.pipeline.claim_feeds(only_due=only_due)
        reports = await app.pipeline.poll_feeds(feeds)
        sent = await app.outbox.deliver_due()
        return reports, sent


@dataclass(frozen=True, slots=True, kw_only=True)
class TestOutcome:
    channel: str
    ok: bool
    detail: str
    retryable: bool = False
    ms: float = 0.0

    def describe(self) -> str:
        if self.ok:
            return f"{self.channel}: sample alert delivered in {self.ms:.0f} ms ({self.detail})"
        verdict = "would be retried" if self.retryable else "permanent: would not be retried"
        return f"{self.channel}: FAILED after {self.ms:.0f} ms: {self.detail} ({verdict})"


async def send_test_alert(settings: Settings, name: str) -> TestOutcome:
    """Send a sample alert through one channel, outside the outbox (nothing is stored)."""
    config = next(c for c in settings.channels if c.name == name)
    now = utcnow()
    alert = Alert(
        id=f"test-{uuid.uuid4()}",
        watchlist="test",
        item=AlertItem(
            title="Test alert from feed-monitor: CSTO / ОДКБ",
            link=PROJECT_URL,
            published=now,
            summary="If you can read this, the channel works.",
            guid=None,
        ),
        feed=AlertFeed(name="feed-monitor", url=PROJECT_URL),
        matches=(AlertMatch(term="CSTO", field="title", snippet="Test alert: CSTO / ОДКБ"),),
        created_at=now,
    )
    channel = build_channel(config)
    started = time.monotonic()
    try:
        result = await channel.send(alert)
        ok, detail, retryable = True, result.detail, False
    except DeliveryError as exc:
        ok, detail, retryable = False, exc.message, exc.retryable
    finally:
        await channel.aclose()
    ms = (time.monotonic() - started) * 1000
    return TestOutcome(channel=name, ok=ok, detail=detail, retryable=retryable, ms=ms)
