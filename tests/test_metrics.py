"""/metrics: scraped over HTTP from the running service, parsed with prometheus-client's
own parser, and checked against what the loopback servers saw happen.

The expected numbers are counted from the servers' side (each feed response the feed
server sent, each request a webhook receiver answered) and from the documents served, so
the test checks the counting, not numbers written down beforehand.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from feedserver import FeedServer, Request, Response
from prometheus_client.parser import text_string_to_metric_families
from receivers import WebhookReceiver
from test_service import rss
from test_workers import result, slow_feed

from monitor.app import App
from monitor.config import Settings, load_settings
from monitor.errors import ParseError
from monitor.metrics import Metrics
from monitor.schedule import Service
from monitor.types import DeliveryState, FeedState
from monitor.web.server import serve_http

NOW = datetime.now(UTC)
DEADLINE = 30.0
Item = tuple[str, str, str, datetime]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]  # by name and labels


class ServedFeed:
    """A feed with conditional GET that records the status of each response it sends."""

    def __init__(self, *items: Item) -> None:
        self._lock = threading.Lock()
        self.statuses: list[int] = []
        self.items: list[Item] = []
        self.set(*items)

    def set(self, *items: Item) -> None:
        with self._lock:
            self.items = list(items)
            self._etag = f'"v{len(self.statuses)}-{len(items)}"'

    def __call__(self, request: Request) -> Response:
        with self._lock:
            if request.headers.get("if-none-match") == self._etag:
                self.statuses.append(304)
                return Response(status=304, headers={"ETag": self._etag})
            self.statuses.append(200)
            headers = {"ETag": self._etag, "Content-Type": "application/rss+xml"}
            return Response(body=rss(*self.items), headers=headers)


class Scraper:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def __call__(self) -> Samples:
        """Every sample, by name and labels."""
        response = await self.client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def until(check: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await _true(check()):
        assert time.monotonic() < deadline, f"not within {DEADLINE}s: {what}"
        await asyncio.sleep(0.05)


async def _true(outcome: bool | Awaitable[bool]) -> bool:
    return await outcome if inspect.isawaitable(outcome) else outcome


def matching(items: list[Item], word: str) -> int:
    return sum(word in title for _, title, _, _ in items)


@pytest.fixture
def receivers() -> dict[str, WebhookReceiver]:
    """One receiver per channel: one that takes alerts, one that refuses them for good
    (400: dead), one that is down for now (503, with the next retry an hour away)."""
    started = {name: WebhookReceiver() for name in ("hook", "refused", "later")}
    for receiver in started.values():
        receiver.start()
    started["refused"].script(*[400] * 10)
    started["later"].script(*[503] * 10)
    yield started
    for receiver in started.values():
        receiver.stop()


def write_config(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    receivers: dict[str, WebhookReceiver],
    *,
    extra_watchlist: str = "",
) -> Settings:
    feeds = "".join(
        f"  - url: {feed_server.url(path)}\n"
        for path in ("/a.xml", "/b.xml", "/broken.xml", "/gone.xml")
    )
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"""
database: {db_url}
defaults: {{interval: 1s, backlog: 24h}}
service: {{tick: 0.1s}}
polling: {{parse_workers: 0, jitter: 0}}
http: {{listen: "127.0.0.1:0"}}
feeds:
{feeds}
watchlists:
  - {{name: csto, terms: [CSTO], notify: [hook]}}
  - {{name: weather, terms: [Weather], notify: [refused, later]}}
{extra_watchlist}
channels:
  - {{name: hook, type: webhook, url: "{receivers["hook"].url}"}}
  - {{name: refused, type: webhook, url: "{receivers["refused"].url}", retry: [0s]}}
  - {{name: later, type: webhook, url: "{receivers["later"].url}", retry: [1h]}}
""",
        encoding="utf-8",
    )
    return load_settings(path, {})


async def test_metrics_scraped_over_http_match_what_happened_across_a_reload(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    receivers: dict[str, WebhookReceiver],
) -> None:
    a = ServedFeed(
        ("a1", "CSTO summit opens in Astana", "Leaders met.", NOW),
        ("a2", "Weather in Bishkek", "Sunny.", NOW),
    )
    b = ServedFeed(
        ("b1", "CSTO drills in Tajikistan", "Exercises.", NOW),
        ("b2", "Markets close higher", "Stocks.", NOW),
    )
    feed_server.set_handler("/a.xml", a)
    feed_server.set_handler("/b.xml", b)
    feed_server.set_response("/broken.xml", 500, b"oops")
    feed_server.set_response("/gone.xml", 410)
    settings = write_config(tmp_path, db_url, feed_server, receivers)
    hook = receivers["hook"]

    async with await asyncio.to_thread(App, settings) as app:
        service = Service(app)
        stop = asyncio.Event()
        async with serve_http(service, settings.http) as web:
            assert web is not None
            running = asyncio.create_task(service.run(stop))
            async with httpx.AsyncClient(base_url=f"http://{web.address}") as client:
                scrape = Scraper(client)
                # Both feeds stored and alerted, then polled again unchanged (304).
                await until(lambda: len(hook.requests) == 2, "two CSTO alerts sent")
                await until(lambda: len(receivers["later"].requests) == 1, "a failed send")
                before: Samples = {}

                async def unchanged_polls_counted() -> bool:
                    # Scraped, not read from the feed server: it answers before the poll ends.
                    before.update(await scrape())
                    return value(before, "monitor_polls_total", outcome="not_modified") >= 2

                await until(unchanged_polls_counted, "304s counted as not_modified")

                changes = await service.reload(
                    write_config(
                        tmp_path,
                        db_url,
                        feed_server,
                        receivers,
                        extra_watchlist="  - {name: tokayev, terms: [Tokayev]}",
                    )
                )
                assert changes == ["watchlists: added tokayev"]
                after = await scrape()
                for key, counted in before.items():
                    if key[0].endswith("_total"):
                        assert after.get(key, 0.0) >= counted, key  # nothing reset

                a.set(*a.items, ("a3", "CSTO ministers meet Tokayev", "Talks.", NOW))
                await until(lambda: len(hook.requests) == 3, "the new item's alert sent")
                stop.set()
                await running  # no poll or send after this: the servers' counts are final
                samples = await scrape()

    statuses = a.statuses + b.statuses
    broken = len(feed_server.requests_for("/broken.xml"))
    gone = len(feed_server.requests_for("/gone.xml"))
    assert gone == 1  # a 410 stops polling
    polls = {"ok": statuses.count(200), "not_modified": statuses.count(304)}
    polls |= {"error": broken, "gone": gone}
    for outcome, count in polls.items():
        assert value(samples, "monitor_polls_total", outcome=outcome) == count, outcome
    assert value(samples, "monitor_fetch_seconds_count") == sum(polls.values())
    assert value(samples, "monitor_fetch_seconds_sum") > 0

    items = a.items + b.items
    assert value(samples, "monitor_items_stored_total") == len(items)
    for watchlist, word in (("csto", "CSTO"), ("weather", "Weather"), ("tokayev", "Tokayev")):
        assert value(samples, "monitor_matches_total", watchlist=watchlist) == matching(
            items, word
        ), watchlist

    sent = [r for r in hook.requests if r.status == 200]
    assert value(samples, "monitor_deliveries_total", channel="hook", outcome="sent") == len(sent)
    refused, later = receivers["refused"].requests, receivers["later"].requests
    assert len(refused) == len(later) == 1
    assert value(samples, "monitor_deliveries_total", channel="refused", outcome="dead") == 1
    assert value(samples, "monitor_deliveries_total", channel="later", outcome="failed") == 1

    # Read from the database at scrape time.
    outbox = {
        s: value(samples, "monitor_outbox_deliveries", state=s)
        for s in ("pending", "failed", "dead")
    }
    assert outbox == {"pending": 0, "failed": 1, "dead": 1}
    feeds = {s.value: value(samples, "monitor_feeds", state=s.value) for s in FeedState}
    assert feeds == {"new": 0, "ok": 2, "error": 1, "gone": 1}
    assert ("monitor_tick_lag_seconds", frozenset()) in samples
    assert not any("http://" in labels for _, labels in samples)  # no label holds a URL


async def test_parse_worker_restarts_are_counted_and_survive_new_workers(
    tmp_path: Path, sqlite_url: str
) -> None:
    """A worker over its budget is replaced and counted; a reload that replaces the
    workers keeps counting into the same counter."""
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"database: {sqlite_url}\nhttp: null\npolling: {{parse_workers: 1, parse_budget: 0.2s}}\n",
        encoding="utf-8",
    )
    settings = load_settings(path, {})
    async with await asyncio.to_thread(App, settings) as app:
        restarts = "monitor_parse_worker_restarts_total"
        assert app.metrics.registry.get_sample_value(restarts) == 0
        with pytest.raises(ParseError, match="parsing took longer"):
            await app.parser.parse(result(slow_feed()))
        assert app.metrics.registry.get_sample_value(restarts) == 1

        polling = settings.polling.model_copy(update={"parse_budget": 0.25})
        await app.reload(settings.model_copy(update={"polling": polling}))
        with pytest.raises(ParseError, match="parsing took longer"):
            await app.parser.parse(result(slow_feed()))
        assert app.metrics.registry.get_sample_value(restarts) == 2
        assert len((await app.parser.parse(result())).items) == 10  # parsing goes on


def test_each_metrics_object_counts_on_its_own() -> None:
    """Two apps in one process (tests, tools) never share a counter."""
    first, second = Metrics(), Metrics()
    first.record_poll(FeedState.OK, 200, 3)
    first.record_delivery("hook", DeliveryState.SENT, 2)
    assert first.registry.get_sample_value("monitor_items_stored_total") == 3
    assert second.registry.get_sample_value("monitor_items_stored_total") == 0
    assert (
        second.registry.get_sample_value(
            "monitor_deliveries_total", {"channel": "hook", "outcome": "sent"}
        )
        is None
    )
