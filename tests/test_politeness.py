"""Polling as a good citizen, end to end on both databases: server hints stretch the
interval, failures back off and recover, and hostile servers cost only their own feed."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import pytest
from feedserver import FeedServer, Response, drip, sequence
from test_service import CSTO_ITEM, rss

from monitor.app import poll_once
from monitor.config import Settings, load_settings
from monitor.store import FeedStatus, Store
from monitor.store.engine import create_db_engine


def settings_for(tmp_path: Path, db_url: str, urls: list[str], extra: str = "") -> Settings:
    feeds = "".join(f"  - url: {u}\n" for u in urls)
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"""
database: {db_url}
defaults: {{interval: 1m}}
polling: {{parse_workers: 0, jitter: 0, deadline: 1.5s, max_body: 1MiB{extra}}}
feeds:
{feeds}""",
        encoding="utf-8",
    )
    return load_settings(path, {})


def feeds_by_path(settings: Settings) -> dict[str, FeedStatus]:
    store = Store(create_db_engine(settings.database))
    return {f.configured_url.rsplit("/", 1)[1]: f for f in store.list_feeds()}


def delay_of(feed: FeedStatus) -> float:
    assert feed.next_poll_at is not None and feed.last_polled_at is not None
    return (feed.next_poll_at - feed.last_polled_at).total_seconds()


async def test_ttl_and_max_age_raise_the_interval_up_to_the_ceiling(
    tmp_path: Path, db_url: str, feed_server: FeedServer
) -> None:
    urls = [feed_server.url(p) for p in ("/ttl.xml", "/maxage.xml", "/huge.xml")]
    settings = settings_for(tmp_path, db_url, urls, ", max_interval: 3h")
    with_ttl = rss(CSTO_ITEM).replace(b"<link>https://example.org/</link>", b"<ttl>30</ttl>", 1)
    feed_server.set_feed("/ttl.xml", with_ttl)
    feed_server.set_feed("/maxage.xml", rss(CSTO_ITEM), headers={"Cache-Control": "max-age=600"})
    feed_server.set_feed("/huge.xml", rss(CSTO_ITEM), headers={"Cache-Control": "max-age=86400"})
    await poll_once(settings)
    feeds = feeds_by_path(settings)
    assert delay_of(feeds["ttl.xml"]) == pytest.approx(30 * 60, abs=2)
    assert delay_of(feeds["maxage.xml"]) == pytest.approx(600, abs=2)
    assert delay_of(feeds["huge.xml"]) == pytest.approx(3 * 3600, abs=2)


async def test_feed_ttl_still_counts_when_the_server_answers_304(
    tmp_path: Path, db_url: str, feed_server: FeedServer
) -> None:
    settings = settings_for(tmp_path, db_url, [feed_server.url("/ttl.xml")])
    with_ttl = rss(CSTO_ITEM).replace(b"<link>https://example.org/</link>", b"<ttl>30</ttl>", 1)
    feed_server.set_feed("/ttl.xml", with_ttl, etag='"v1"')
    await poll_once(settings)
    reports, _ = await poll_once(settings)
    assert [r.status for r in reports] == [304]
    assert delay_of(feeds_by_path(settings)["ttl.xml"]) == pytest.approx(30 * 60, abs=2)


async def test_failures_back_off_and_the_first_success_recovers(
    tmp_path: Path, db_url: str, feed_server: FeedServer
) -> None:
    settings = settings_for(tmp_path, db_url, [feed_server.url("/flaky.xml")])
    feed_server.set_handler(
        "/flaky.xml",
        sequence(
            Response(status=500),
            Response(status=502),
            Response(body=rss(CSTO_ITEM), headers={"Content-Type": "application/rss+xml"}),
        ),
    )
    await poll_once(settings)
    first = feeds_by_path(settings)["flaky.xml"]
    await poll_once(settings)
    second = feeds_by_path(settings)["flaky.xml"]
    assert (first.state, first.error_count, second.error_count) == ("error", 1, 2)
    assert delay_of(second) == pytest.approx(2 * delay_of(first), abs=2)
    await poll_once(settings)
    healed = feeds_by_path(settings)["flaky.xml"]
    assert (healed.state, healed.error_count, healed.last_error) == ("ok", 0, None)
    assert delay_of(healed) == pytest.approx(60, abs=2)


async def test_permanent_failures_back_off_to_max_backoff_at_once(
    tmp_path: Path, db_url: str, feed_server: FeedServer
) -> None:
    """A 404 or a refused private address will not heal in a minute: the feed waits
    ``max_backoff`` at once instead of retrying on the short schedule; a 503 does not."""
    urls = [feed_server.url(p) for p in ("/missing.xml", "/busy.xml")]
    settings = settings_for(tmp_path, db_url, urls, ", max_backoff: 6h")
    feed_server.set_response("/missing.xml", 404, b"no such feed")
    feed_server.set_response("/busy.xml", 503, b"try later")
    await poll_once(settings)
    feeds = feeds_by_path(settings)
    assert feeds["missing.xml"].state == "error" and feeds["missing.xml"].error_count == 1
    assert delay_of(feeds["missing.xml"]) == pytest.approx(6 * 3600, abs=2)
    assert delay_of(feeds["busy.xml"]) == pytest.approx(60, abs=2)

    guarded = settings_for(
        tmp_path, db_url, [feed_server.url("/busy.xml")], ", allow_private_networks: false"
    )
    await poll_once(guarded)
    assert delay_of(feeds_by_path(guarded)["busy.xml"]) == pytest.approx(86400, abs=2)


async def test_hostile_servers_cost_only_their_own_feed(
    tmp_path: Path, db_url: str, feed_server: FeedServer
) -> None:
    paths = ["/drip.xml", "/bomb.xml", "/loop.xml", "/feed.xml"]
    urls = [feed_server.url(p) for p in paths] + ["http://nonexistent.invalid/feed"]
    settings = settings_for(tmp_path, db_url, urls)
    feed_server.set_handler("/drip.xml", lambda _r: Response(body=drip(b"<", 0.1)))
    bomb = gzip.compress(b"<rss>" + b" " * (20 * 1024 * 1024), compresslevel=9)
    feed_server.set_handler(
        "/bomb.xml", lambda _r: Response(body=bomb, headers={"Content-Encoding": "gzip"})
    )
    feed_server.set_handler("/loop.xml", lambda _r: Response.redirect("/loop.xml", 302))
    feed_server.set_feed("/feed.xml", rss(CSTO_ITEM))
    started = time.monotonic()
    reports, _ = await poll_once(settings)
    elapsed = time.monotonic() - started
    assert elapsed < 10  # bounded by the 1.5 s deadline, not by the drip
    feeds = feeds_by_path(settings)
    assert feeds["feed.xml"].state == "ok" and feeds["feed.xml"].items == 1
    errors = {name: f.last_error or "" for name, f in feeds.items() if f.state == "error"}
    assert "timed out" in errors["drip.xml"]
    assert "larger than" in errors["bomb.xml"]
    assert "redirect" in errors["loop.xml"]
    assert "nonexistent.invalid" in errors["feed"]
    assert len(reports) == 5


async def test_html_page_error_names_the_advertised_feed(
    tmp_path: Path, db_url: str, feed_server: FeedServer
) -> None:
    settings = settings_for(tmp_path, db_url, [feed_server.url("/page")])
    page = (
        b'<html><head><link rel="alternate" type="application/rss+xml" href="/rss.xml">'
        b"</head><body>news</body></html>"
    )
    feed_server.set_response("/page", 200, page, {"Content-Type": "text/html"})
    await poll_once(settings)
    error = feeds_by_path(settings)["page"].last_error or ""
    assert "not a feed" in error and feed_server.url("/rss.xml") in error


async def test_private_network_guard_refuses_loopback_feeds(
    tmp_path: Path, db_url: str, feed_server: FeedServer
) -> None:
    urls = [feed_server.url("/feed.xml")]
    settings = settings_for(tmp_path, db_url, urls, ", allow_private_networks: false")
    feed_server.set_feed("/feed.xml", rss(CSTO_ITEM))
    await poll_once(settings)
    feed = feeds_by_path(settings)["feed.xml"]
    assert feed.state == "error" and "allow_private_networks" in (feed.last_error or "")
    assert feed_server.requests_for("/feed.xml") == []
