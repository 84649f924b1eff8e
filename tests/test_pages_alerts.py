"""The dashboard's alerts page, in-process on SQLite and PostgreSQL, over a real socket.

The service runs as in tests/test_api.py (App, Service and the HTTP server on the test's
event loop, a loopback feed server and webhook receiver); a client signs in with the
configured token as its password, as a person would, and reads the page's HTML. The API
(with the same token) tells which alert is which.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from feedserver import FeedServer
from pages import csrf_in, sign_in, web_client
from receivers import Reply, WebhookReceiver
from test_api import (
    NOW,
    TOKEN,
    WIRE,
    Running,
    all_sent,
    running,
    stored_items,
    until,
    write_config,
)
from test_service import rss

from monitor.store import AlertRecord, ItemPosition
from monitor.types import DeliveryState
from monitor.web.api.paging import item_cursor
from monitor.web.pages import alerts as alerts_page

HOSTILE_FEED = "&lt;script&gt;alert(1)&lt;/script&gt; &lt;b&gt;Other&lt;/b&gt;"
OTHER = [
    ("o1", "ОДКБ проведёт учения", "Учения ОДКБ пройдут в Таджикистане", NOW),
    ("o2", "CSTO &amp;lt;b&amp;gt;drills&amp;lt;/b&amp;gt; begin", "", NOW),
]
ALERTS = {"k1", "k2", "k3", "k4", "o1", "o2"}  # k5 matches no watchlist
NOTIFIED = ALERTS - {"k4"}  # wire-only notifies no channel


@pytest.fixture
async def dash(
    tmp_path: Path, db_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> AsyncIterator[Running]:
    """The service with its feeds polled: 6 alerts, 5 deliveries (all sent)."""
    feed_server.set_feed("/wire.xml", rss(*WIRE, title="Wire feed"))
    feed_server.set_feed("/other.xml", rss(*OTHER, title=HOSTILE_FEED))
    feed_server.set_response("/missing.xml", 404)
    settings = write_config(tmp_path, db_url, feed_server, webhook_receiver.url)
    async with running(settings) as api:
        await stored_items(api, len(WIRE) + len(OTHER))
        await webhook_receiver.wait_for_async(len(NOTIFIED), timeout=20)
        await all_sent(api, len(NOTIFIED))
        yield api


@contextlib.asynccontextmanager
async def signed_in(api: Running) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client (cookies, no token) signed in with the form."""
    async with web_client(str(api.anon.base_url)) as client:
        await sign_in(client, TOKEN, next="/alerts")
        yield client


async def guid_of(api: Running) -> dict[str, str]:
    """Alert id -> its item's guid, from the API."""
    r = await api.client.get("/api/alerts", params={"limit": "500"})
    return {a["id"]: a["item"]["guid"] for a in r.json()["alerts"]}


def listed(page: str, ids: dict[str, str]) -> list[str]:
    """The guids of the alerts a page lists, in its order."""
    return [ids[i] for i in re.findall(r'data-alert="([^"]+)"', page)]


def next_link(page: str) -> str | None:
    found = re.search(r'<a href="([^"]+)" rel="next">', page)
    return html.unescape(found[1]) if found else None


async def test_alerts_filter_by_watchlist_state_and_folded_text(dash: Running) -> None:
    ids = await guid_of(dash)
    async with signed_in(dash) as client:

        async def shown(**params: str) -> list[str]:
            r = await client.get("/alerts", params=params)
            assert r.status_code == 200, r.text
            return listed(r.text, ids)

        everything = await shown()
        assert set(everything) == ALERTS and len(everything) == len(ALERTS)
        assert set(await shown(watchlist="tokayev")) == {"k1", "k2"}
        assert set(await shown(state="sent")) == NOTIFIED
        assert await shown(state="dead") == []
        # Токаев finds Тоқаев (Kazakh қ), Токаевым and ТОКАЕВА, as the watchlist does
        assert set(await shown(q="Токаев")) == {"k1", "k2"}
        assert set(await shown(q="одкб")) == {"o1"}
        assert set(await shown(q="drills", watchlist="csto")) == {"o2"}
        assert await shown(q="drills", watchlist="tokayev") == []
        page = (await client.get("/alerts", params={"watchlist": "tokayev"})).text
        assert '<option value="tokayev" selected>' in page
        assert "wire-only" in page and "asia-only" in page  # every configured watchlist


async def test_invalid_filters_are_said_on_the_page(dash: Running) -> None:
    async with signed_in(dash) as client:
        cases = [
            ({"state": "bogus"}, "no such delivery state"),
            ({"q": '"unclosed'}, "not valid at position"),
            ({"q": "x" * 1001}, "at most 1000 characters"),
            ({"cursor": "not-a-cursor"}, "start again from the first page"),
            ({"cursor": item_cursor(ItemPosition(first_seen_at=NOW, id=1))}, "first page"),
            ({"watchlist": "w" * 201}, "at most 200 characters"),
        ]
        for params, said in cases:
            r = await client.get("/alerts", params=params)
            assert r.status_code == 400, (params, r.text)
            assert r.headers["content-type"].startswith("text/html")
            assert said in r.text, params
            assert "data-alert=" not in r.text


async def test_paging_neither_repeats_nor_skips(
    dash: Running, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await guid_of(dash)
    newest_first = list(ids.values())  # the API's order
    monkeypatch.setattr(alerts_page, "PAGE", 2)
    async with signed_in(dash) as client:

        async def follow(link: str) -> tuple[list[str], list[str]]:
            seen: list[str] = []
            pages: list[str] = []
            url: str | None = link
            while url is not None and len(pages) < 20:
                r = await client.get(url)
                assert r.status_code == 200, r.text
                pages.append(r.text)
                seen += listed(r.text, ids)
                url = next_link(r.text)
            return seen, pages

        seen, pages = await follow("/alerts")
        assert seen == newest_first and len(pages) == 3
        assert 'href="/alerts">Newest</a>' in pages[1]

        # a new alert while paging sorts before the first page: the next pages do not shift
        first = await client.get("/alerts")
        feed_server.set_feed("/wire.xml", rss(*WIRE, ("n1", "CSTO news", "", NOW)))

        async def raised() -> bool:
            return len(await guid_of(dash)) == len(ALERTS) + 1

        await until(raised, "the new item's alert")
        later, _ = await follow(next_link(first.text) or "")
        assert later == newest_first[2:]

        # a text filter that stops looking early says so, and Next goes on from there
        ids = await guid_of(dash)
        monkeypatch.setattr(alerts_page, "MAX_SCAN", 3)
        monkeypatch.setattr(alerts_page, "SCAN_BATCH", 2)
        wanted = [g for g in ids.values() if g in {"n1", "k3", "o1", "o2"}]  # CSTO or ОДКБ
        seen, pages = await follow("/alerts?" + urlencode({"q": "CSTO OR ОДКБ"}))
        assert seen == wanted
        assert any("stopped early" in p for p in pages)


async def test_highlight_marks_the_match_and_escapes_the_rest(dash: Running) -> None:
    async with signed_in(dash) as client:
        page = (await client.get("/alerts", params={"q": "drills"})).text
    assert "<mark>CSTO</mark> &lt;b&gt;drills&lt;/b&gt; begin" in page
    assert "CSTO &lt;b&gt;drills&lt;/b&gt; begin</a>" in page  # the title, a link
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &lt;b&gt;Other&lt;/b&gt;" in page  # its feed
    assert "<script>alert" not in page and "<b>" not in page
    assert re.search(r'<a class="alerts-feed wrap" href="/feeds/\d+">&lt;script&gt;', page)
    assert page.count("<mark>") == page.count("</mark>") == 1


async def make_dead(api: Running, feed_server: FeedServer, receiver: WebhookReceiver) -> str:
    """A new CSTO item whose delivery the receiver refuses for good (hostile text in its
    answer); returns its alert's id once the delivery is dead."""
    receiver.script(Reply(status=400, body=b"<script>alert('err')</script> no"))
    feed_server.set_feed("/wire.xml", rss(*WIRE, ("d1", "CSTO statement", "", NOW)))

    async def dead() -> list[AlertRecord]:
        return await asyncio.to_thread(api.app.store.list_alerts, 50, DeliveryState.DEAD)

    async def one_dead() -> bool:
        return len(await dead()) == 1

    await until(one_dead, "a dead delivery")
    [record] = await dead()
    return record.alert.id


async def delivery_state(api: Running, alert_id: str) -> DeliveryState:
    records = await asyncio.to_thread(api.app.store.list_alerts, 50)
    [record] = [r for r in records if r.alert.id == alert_id]
    return record.deliveries[0].state


async def test_retry_needs_the_csrf_value_and_then_queues_the_delivery(
    dash: Running, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    alert_id = await make_dead(dash, feed_server, webhook_receiver)
    action = f"/alerts/{alert_id}/retry"
    async with signed_in(dash) as client:
        page = (await client.get("/alerts", params={"state": "dead"})).text
        assert f'action="{action}"' in page and page.count(">Retry</button>") == 1
        assert "&lt;script&gt;alert(&#39;err&#39;)&lt;/script&gt; no" in page  # its last error
        assert "<script>alert(" not in page
        csrf = csrf_in(page)
        for form in ({"back": "/alerts"}, {"csrf": "0" * 64, "back": "/alerts"}):
            r = await client.post(action, data=form)
            assert r.status_code == 403, r.text
            assert "did not come from this dashboard" in r.text
        assert await delivery_state(dash, alert_id) is DeliveryState.DEAD

        r = await client.post(action, data={"csrf": csrf, "back": "/alerts?state=dead&done=x"})
        assert r.status_code == 303
        assert r.headers["location"] == "/alerts?state=dead&done=retried&queued=1&busy=0"

        async def sent() -> bool:
            return await delivery_state(dash, alert_id) is DeliveryState.SENT

        await until(sent, "the retried delivery sent")
        answers = [q.status for q in webhook_receiver.requests if q.json()["id"] == alert_id]
        assert answers == [400, 200]
        page = (await client.get(r.headers["location"])).text
        assert "1 delivery queued to be sent again." in page

        # the way back is a path of this page, never another site
        for back in ("https://evil.example/alerts", "//evil.example/alerts", "/feeds"):
            r = await client.post(action, data={"csrf": csrf, "back": back})
            assert r.status_code == 303, back
            assert r.headers["location"] == "/alerts?done=retried&queued=0&busy=0", back
        r = await client.post(
            "/alerts/00000000-0000-0000-0000-000000000000/retry", data={"csrf": csrf}
        )
        assert r.status_code == 404 and "no such alert" in r.text
        r = await client.post(f"/alerts/{'x' * 37}/retry", data={"csrf": csrf})
        assert r.status_code == 404


async def test_a_stranger_is_sent_to_sign_in_and_cannot_retry(dash: Running) -> None:
    ids = await guid_of(dash)
    alert_id = next(iter(ids))
    r = await dash.anon.get("/alerts")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/alerts"
    r = await dash.anon.post(f"/alerts/{alert_id}/retry", data={"csrf": "x"})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_read_only_dashboard_shows_no_retry_and_refuses_it(
    tmp_path: Path, db_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    feed_server.set_feed("/wire.xml", rss(*WIRE))
    feed_server.set_feed("/other.xml", rss(*OTHER))
    feed_server.set_response("/missing.xml", 404)
    settings = write_config(tmp_path, db_url, feed_server, webhook_receiver.url, token=None)
    async with running(settings) as api:
        alert_id = await make_dead(api, feed_server, webhook_receiver)
        r = await api.anon.get("/alerts", params={"state": "dead"})
        assert r.status_code == 200
        assert f'data-alert="{alert_id}"' in r.text and "state-dead" in r.text
        assert "/retry" not in r.text and 'name="csrf"' not in r.text
        r = await api.anon.post(f"/alerts/{alert_id}/retry", data={"csrf": "", "back": "/"})
        assert r.status_code == 403 and "read-only" in r.text
        assert await delivery_state(api, alert_id) is DeliveryState.DEAD
