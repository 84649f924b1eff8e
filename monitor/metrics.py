"""What the service did, counted for Prometheus: polls, fetch latency, items, matches,
deliveries, parse worker restarts; and, read at scrape time, the feeds and deliveries by
state in the database and how late the scheduler's tick is.

Input: one call per poll, per send and per worker restart, with that event's totals (the
pipeline, the outbox and the parse workers call it; nothing is counted per item). Output:
:attr:`Metrics.registry`, which ``monitor.web`` renders as ``/metrics``. Each ``Metrics``
has a registry of its own, not prometheus-client's global one, so that two apps in one
process (tests) never share a counter; the app keeps one ``Metrics`` across reloads, so
counters only reset with the process, as Prometheus expects.

Labels stay bounded: outcomes and states are fixed sets; watchlist and channel names
come from the configuration. Nothing is labelled by feed URL. It does not serve HTTP and
does not query the database itself (it is handed a function that does).
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import disable_created_metrics
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from monitor.errors import MonitorError
from monitor.fulltext import ArticleReport
from monitor.store.stats import PAUSED, WAITING, StateCounts
from monitor.types import DeliveryState, FeedState

log = logging.getLogger("monitor.metrics")

POLL_OUTCOMES = ("ok", "not_modified", "error", "gone")
FEED_STATES = (*(s.value for s in FeedState), PAUSED)
# Fetch latency in seconds: a quick origin answers in tens of milliseconds, a slow one in
# seconds; the top bucket sits at the default fetch deadline (30s).
FETCH_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ARTICLE_OUTCOMES = ("fetched", "failed", "late", "skipped")
# Main-text extraction of one article page: tens of milliseconds for most, seconds for a few.
EXTRACT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 20.0)


class Metrics:
    """The service's counters over a registry of their own."""

    def __init__(self) -> None:
        # ``_created`` series would double every counter's series for a timestamp that
        # Prometheus does not need here (process-wide setting of prometheus-client).
        disable_created_metrics()
        self.registry = CollectorRegistry()
        r = self.registry
        polls = Counter("monitor_polls", "Feed polls, by outcome.", ["outcome"], registry=r)
        # Bound once: a poll increments a child, it never looks a label up.
        self._polls = {outcome: polls.labels(outcome) for outcome in POLL_OUTCOMES}
        self._fetch = Histogram(
            "monitor_fetch_seconds",
            "Time to fetch a feed (request to body, or to the failure).",
            buckets=FETCH_BUCKETS,
            registry=r,
        )
        self._items = Counter("monitor_items_stored", "New items stored.", registry=r)
        self._matches = Counter(
            "monitor_matches",
            "Alerts raised (matched new items), by watchlist.",
            ["watchlist"],
            registry=r,
        )
        self._deliveries = Counter(
            "monitor_deliveries",
            "Delivery attempts, by channel and outcome (sent, failed: retried later, "
            "dead: given up). A digest counts once per alert it carries.",
            ["channel", "outcome"],
            registry=r,
        )
        self._restarts = Counter(
            "monitor_parse_worker_restarts",
            "Parse workers killed and replaced (over their time budget, or crashed).",
            registry=r,
        )
        articles = Counter(
            "monitor_articles",
            "Article pages of full-text feeds, by outcome (fetched: text used; failed; "
            "late: not there within fulltext_wait; skipped: over the per-poll cap).",
            ["outcome"],
            registry=r,
        )
        self._articles = {outcome: articles.labels(outcome) for outcome in ARTICLE_OUTCOMES}
        self._extract = Histogram(
            "monitor_article_extract_seconds",
            "Time to extract the main text of one article page.",
            buckets=EXTRACT_BUCKETS,
            registry=r,
        )
        self._lag = Gauge(
            "monitor_tick_lag_seconds",
            "How late the scheduler's poll tick is (0 while it keeps time).",
            registry=r,
        )

    def record_poll(self, state: FeedState, status: int | None, new_items: int) -> None:
        """One poll's outcome and the new items it stored."""
        if state == FeedState.OK:
            outcome = "not_modified" if status == 304 else "ok"
        elif state == FeedState.GONE:
            outcome = "gone"
        else:
            outcome = "error"
        self._polls[outcome].inc()
        if new_items:
            self._items.inc(new_items)

    def record_fetch(self, seconds: float) -> None:
        self._fetch.observe(seconds)

    def record_matches(self, watchlists: Sequence[str]) -> None:
        """The watchlist of each alert one poll raised: one increment per watchlist."""
        if not watchlists:
            return
        for watchlist, count in Tally(watchlists).items():
            self._matches.labels(watchlist).inc(count)

    def record_delivery(self, channel: str, state: DeliveryState, deliveries: int) -> None:
        """One send's outcome for the deliveries it settled."""
        self._deliveries.labels(channel, state.value).inc(deliveries)

    def record_articles(self, report: ArticleReport) -> None:
        """One poll's article pages (full-text feeds)."""
        for outcome in ARTICLE_OUTCOMES:
            count = getattr(report, outcome)
            if count:
                self._articles[outcome].inc(count)
        for seconds in report.extract_seconds:
            self._extract.observe(seconds)

    def record_parse_restart(self) -> None:
        self._restarts.inc()

    def watch_ticks(self, lag: Callable[[], float]) -> None:
        """Read the tick lag from ``lag`` (seconds) at each scrape."""
        self._lag.set_function(lag)

    def watch_database(self, read: Callable[[], StateCounts]) -> None:
        """Count feeds and deliveries by state with ``read`` at each scrape (it queries
        the database: render the registry in a worker thread)."""
        self.registry.register(_DatabaseCollector(read))


class _DatabaseCollector:
    """``monitor_feeds`` and ``monitor_outbox_deliveries``, read when scraped. With the
    database unreachable they are left out (and the failure logged): the counters of the
    process are still worth a scrape.

    The deliveries gauge is not named ``monitor_deliveries``: that is the family of the
    ``monitor_deliveries_total`` counter, and a family name means one metric (OpenMetrics;
    the registry refuses the clash too)."""

    def __init__(self, read: Callable[[], StateCounts]) -> None:
        self._read = read

    def describe(self) -> list[Metric]:
        # Names for the registry's clash check; without this it would call collect(),
        # querying the database while the app is being built.
        return [
            GaugeMetricFamily("monitor_feeds", "", labels=["state"]),
            GaugeMetricFamily("monitor_outbox_deliveries", "", labels=["state"]),
        ]

    def collect(self) -> Iterator[Metric]:
        try:
            counts = self._read()
        except MonitorError as exc:
            log.warning("metrics: feed and delivery counts left out: %s", exc)
            return
        feeds = GaugeMetricFamily(
            "monitor_feeds", "Active feeds, by state (paused ones as paused).", labels=["state"]
        )
        for state in FEED_STATES:
            feeds.add_metric([state], counts.feeds.get(state, 0))
        deliveries = GaugeMetricFamily(
            "monitor_outbox_deliveries",
            "Deliveries in the outbox, by state: pending (due or waiting for their digest), "
            "failed (to be retried), dead (given up; `monitor alerts retry` sends them).",
            labels=["state"],
        )
        for waiting in WAITING:
            deliveries.add_metric([waiting.value], counts.deliveries.get(waiting.value, 0))
        yield feeds
        yield deliveries
