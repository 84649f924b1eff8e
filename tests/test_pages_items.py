"""The items page (``/items``) on SQLite and PostgreSQL: stored items newest first, the
watchlists' search with its folding, filters, paging, the bounded scan, and malformed
input shown as a page with the reason (never a server error).

The service runs in-process over a real socket (``test_api.running``), polling a loopback
feed server; a signed-in client reads the pages as a browser would.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from feedserver import FeedServer
from receivers import WebhookReceiver
from test_api import OTHER, WIRE, Running, running, stored_items
from test_pages_security import Tags, client, sign_in, write_config
from test_service import rss

from monitor.web.pages import items as items_page


@pytest.fixture
async def api(
    tmp_path: Path, db_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> AsyncIterator[Running]:
    """Six items in five scripts and spellings: five from ``Wire``, one from ``Other wire``."""
    feed_server.set_feed("/wire.xml", rss(*WIRE, title="Wire feed"))
    feed_server.set_feed("/hostile.xml", rss(*OTHER, title="Other wire"))
    settings = write_config(tmp_path, db_url, feed_server, webhook_receiver.url)
    async with running(settings) as api:
        await stored_items(api, len(WIRE) + len(OTHER))
        yield api


@pytest.fixture
async def browser(api: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with client(api) as signed_in:
        await sign_in(signed_in)
        yield signed_in


def text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def titles(page: str) -> list[str]:
    return [text_of(t) for t in re.findall(r'<h2 class="items-title[^"]*">(.*?)</h2>', page, re.S)]


def links(page: str, text: str) -> list[str]:
    """The targets of the page's links whose text contains ``text``."""
    found = re.findall(r'<a href="([^"]*)"[^>]*>(.*?)</a>', page, re.S)
    return [html.unescape(href) for href, inner in found if text in text_of(inner)]


def query_field(page: str) -> str:
    [value] = [a["value"] for a in Tags(page).named("input") if a.get("id") == "items-q"]
    return value


async def show(browser: httpx.AsyncClient, status: int = 200, **params: str) -> str:
    r = await browser.get("/items", params=params)
    assert r.status_code == status, (params, r.status_code, r.text[-500:])
    return r.text


async def test_items_are_listed_newest_first_with_feed_times_and_summary(
    api: Running, browser: httpx.AsyncClient
) -> None:
    page = await show(browser)
    listed = (await api.client.get("/api/items")).json()["items"]
    assert titles(page) == [i["title"] for i in listed]  # the API's order: newest first
    assert "6 items, newest first" in text_of(page)
    feeds = {f.name: f.id for f in api.app.store.list_feeds()}
    assert page.count(f'href="/feeds/{feeds["Wire"]}"') == 5
    assert page.count(f'href="/feeds/{feeds["Other wire"]}"') == 1
    assert "Sunny &amp; cold" in page  # the summary, escaped once
    assert "published" in page and "first seen" in page and "<time datetime=" in page
    item_links = [a for a in Tags(page).named("a") if a.get("href", "").startswith("http")]
    assert len(item_links) == 6
    assert all(a["rel"] == "noopener noreferrer nofollow" for a in item_links)


async def test_the_search_folds_as_matching_does_and_marks_what_matched(
    browser: httpx.AsyncClient,
) -> None:
    page = await show(browser, q="Токаев")
    assert sorted(titles(page)) == ["Встреча с Токаевым", "Тоқаев Астанада сөз сөйледі"]
    assert "<mark>Тоқаев</mark>" in page and "<mark>ТОКАЕВА</mark>" in page
    assert "2 matching items, of 6 looked at" in text_of(page)
    assert titles(await show(browser, q="istanbul")) == ["İstanbul talks resume"]
    assert titles(await show(browser, q="одкб")) == ["ОДКБ проведёт учения"]
    assert titles(await show(browser, q="title:Bishkek")) == ["Weather in Bishkek"]
    assert titles(await show(browser, q="Astana NOT CSTO")) == []
    assert "No item matches." in text_of(await show(browser, q="Samarkand"))
    assert query_field(page) == "Токаев"  # the form keeps the query


async def test_items_filter_by_feed_and_by_time(api: Running, browser: httpx.AsyncClient) -> None:
    feeds = {f.name: f.id for f in api.app.store.list_feeds()}
    other = str(feeds["Other wire"])
    assert titles(await show(browser, feed=other)) == ["ОДКБ проведёт учения"]
    assert titles(await show(browser, feed=other, q="CSTO")) == []
    assert len(titles(await show(browser, feed=str(feeds["Wire"])))) == 5
    assert len(titles(await show(browser, since="24h"))) == 6
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    page = await show(browser, since=future)
    assert titles(page) == [] and "No items are stored for these filters." in text_of(page)
    assert f'<option value="{html.escape(future)}" selected>' in page  # kept as typed


async def test_older_links_page_through_every_item_once(
    browser: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(items_page, "PAGE", 4)
    page = await show(browser, feed="", since="")
    seen = titles(page)
    assert not links(page, "Newest")
    [older] = links(page, "Older")
    r = await browser.get(older)
    assert r.status_code == 200
    seen += titles(r.text)
    assert links(r.text, "Newest") == ["/items"] and not links(r.text, "Older")
    assert len(seen) == len(set(seen)) == 6


async def test_a_search_stops_after_a_bounded_scan_and_offers_to_go_on(
    browser: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(items_page, "MAX_SCAN", 2)
    monkeypatch.setattr(items_page, "SCAN_BATCH", 1)
    found: list[str] = []
    page = await show(browser, q="Токаев OR ОДКБ")
    stops = 0
    for _ in range(10):
        found += titles(page)
        go_on = links(page, "Go on searching")
        if not go_on:
            assert not links(page, "Older")
            break
        stops += 1
        assert " of 2 looked at" in text_of(page)
        assert "The search stopped after looking at 2 items" in text_of(page)
        assert "q=" in go_on[0] and go_on[0] in links(page, "Older")
        r = await browser.get(go_on[0])
        assert r.status_code == 200
        page = r.text
    assert sorted(found) == [
        "Встреча с Токаевым",
        "ОДКБ проведёт учения",
        "Тоқаев Астанада сөз сөйледі",
    ]
    assert stops >= 2


@pytest.mark.parametrize(
    ("query", "position", "marked"),
    [('"unclosed', 0, '"'), ("Astana AND", 10, " "), ("(a OR b", 0, "(")],
)
async def test_a_malformed_query_says_why_and_where(
    browser: httpx.AsyncClient, query: str, position: int, marked: str
) -> None:
    page = await show(browser, 400, q=query)
    assert f"The query has an error at position {position}: " in text_of(page)
    fault = re.search(r'<pre class="items-query"><code>(.*?)</code>', page, re.S)
    assert fault and [html.unescape(m) for m in re.findall("<mark>(.*?)</mark>", fault[1])] == [
        marked
    ]
    assert text_of(fault[1]) == query
    assert query_field(page) == query  # the form keeps it, to correct
    assert not titles(page)


async def test_a_bad_cursor_feed_time_or_long_query_is_a_page_saying_so(
    browser: httpx.AsyncClient,
) -> None:
    cases = {
        "cursor": ({"cursor": "bm90IGEgY3Vyc29y"}, "not a cursor"),
        "feed": ({"feed": "999999"}, "no such feed"),
        "feed name": ({"feed": "<b>x</b>"}, "no such feed"),
        "since": ({"since": "2026-13-45"}, "since: expected"),
        "query": ({"q": "x" * 1001}, "longer than 1000"),
    }
    for what, (params, message) in cases.items():
        page = await show(browser, 400, **params)
        assert message in text_of(page), what
        assert 'class="error"' in page and not titles(page), what
    assert "<b>x</b>" not in await show(browser, 400, feed="<b>x</b>")
