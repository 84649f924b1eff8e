"""The JSON API under /api, on SQLite and PostgreSQL, over a real socket.

The service runs in-process as ``monitor run`` runs it (App, Service and the HTTP server
on the test's event loop), polling a loopback feed server and delivering to a loopback
webhook receiver; every request goes through httpx to the server on 127.0.0.1. The data
the API shows is what the service stored from those feeds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from feedserver import FeedServer
from pages import web_client
from receivers import WebhookReceiver
from sqlalchemy.engine import make_url
from test_service import rss
from test_web_health import TcpProxy

from monitor.app import App
from monitor.config import Settings, load_settings
from monitor.schedule import Service
from monitor.web.api import items as items_api
from monitor.web.api import trial as trial_api
from monitor.web.server import serve_http

TOKEN = "api-test-token-0123456789abcdef"
DEADLINE = 20.0
NOW = datetime.now(UTC)

WIRE = [
    ("k1", "Тоқаев Астанада сөз сөйледі", "Қазақстан Президенті сөз сөйледі", NOW),
    ("k2", "Встреча с Токаевым", "ТОКАЕВА встретили в Москве", NOW),
    ("k3", "CSTO summit opens in Astana", "Leaders of the CSTO met.", NOW),
    ("k4", "Weather in Bishkek", "Sunny &amp; cold", NOW),
    ("k5", "İstanbul talks resume", "Delegations met in the city", NOW),
]
OTHER = [("o1", "ОДКБ проведёт учения", "Учения ОДКБ пройдут в Таджикистане", NOW)]


@dataclass
class Running:
    """The service and its HTTP server; ``client`` sends the token, ``anon`` does not."""

    service: Service
    client: httpx.AsyncClient
    anon: httpx.AsyncClient

    @property
    def app(self) -> App:
        return self.service.app


def write_config(
    tmp_path: Path, db_url: str, feed_server: FeedServer, hook: str, token: str | None = TOKEN
) -> Settings:
    http_token = f', token: "{token}"' if token else ""
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"""
database: {db_url}
service: {{tick: 0.1s}}
defaults: {{interval: 1s, backlog: all}}
polling: {{parse_workers: 0, jitter: 0}}
http: {{listen: "127.0.0.1:0"{http_token}}}
feeds:
  - url: {feed_server.url("/wire.xml")}
    name: Wire
    tags: [asia]
  - url: {feed_server.url("/other.xml")}
  - url: {feed_server.url("/missing.xml")}
    name: Missing
watchlists:
  - name: csto
    terms: [CSTO, ОДКБ]
    notify: [hook]
  - name: tokayev
    query: Токаев
    notify: [hook]
  - name: wire-only
    query: Bishkek
    feeds: [Wire]
  - name: asia-only
    query: Samarkand
    tags: [asia]
channels:
  - name: hook
    type: webhook
    url: {hook}
    retry: [0s]
""",
        encoding="utf-8",
    )
    return load_settings(path, {})


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Running]:
    app = await asyncio.to_thread(App, settings)
    try:
        service = Service(app)
        stop = asyncio.Event()
        async with serve_http(service, settings.http) as server:
            assert server is not None
            task = asyncio.create_task(service.run(stop))
            base = f"http://{server.address}"
            auth = {"Authorization": f"Bearer {TOKEN}"}
            try:
                async with (
                    web_client(base, headers=auth) as client,
                    web_client(base) as anon,
                ):
                    yield Running(service=service, client=client, anon=anon)
            finally:
                stop.set()
                await task
    finally:
        await app.aclose()


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await check():
        assert time.monotonic() < deadline, f"not within {DEADLINE}s: {what}"
        await asyncio.sleep(0.05)


async def polled(feed_server: FeedServer, path: str, count: int) -> None:
    """Wait, off the event loop the service runs on, for ``count`` polls of ``path``."""
    await asyncio.to_thread(feed_server.wait_for_requests, path, count, DEADLINE)


async def stored_items(api: Running, count: int) -> None:
    async def enough() -> bool:
        feeds = (await api.client.get("/api/feeds")).json()["feeds"]
        return sum(f["items"] for f in feeds) >= count

    await until(enough, f"{count} items stored")


async def all_sent(api: Running, count: int) -> None:
    async def recorded() -> bool:
        r = await api.client.get("/api/alerts", params={"state": "sent", "limit": "500"})
        return len(r.json()["alerts"]) >= count

    await until(recorded, f"{count} deliveries recorded as sent")


async def every_feed_polled(api: Running) -> None:
    async def polled_all() -> bool:
        feeds = await asyncio.to_thread(api.app.store.list_feeds, count_items=False)
        return all(f.last_polled_at is not None for f in feeds)

    await until(polled_all, "every feed's poll recorded")


@pytest.fixture
async def api(
    tmp_path: Path, db_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> AsyncIterator[Running]:
    """The service with its feeds polled: 6 items, 5 alerts, 4 deliveries (all sent)."""
    feed_server.set_feed("/wire.xml", rss(*WIRE, title="Wire feed"))
    feed_server.set_feed("/other.xml", rss(*OTHER, title="Other wire"))
    feed_server.set_response("/missing.xml", 404)
    settings = write_config(tmp_path, db_url, feed_server, webhook_receiver.url)
    async with running(settings) as api:
        await stored_items(api, len(WIRE) + len(OTHER))
        await webhook_receiver.wait_for_async(4, timeout=DEADLINE)
        await all_sent(api, 4)  # the receiver answers before the outcome is written
        await every_feed_polled(api)  # the 404's outcome is written apart from items
        yield api


def error_of(response: httpx.Response, status: int, field: str | None) -> str:
    """The error message, after checking the status and the field it names."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body.get("field") == field, body
    assert isinstance(body["error"], str) and body["error"]
    return str(body["error"])


def is_utc_z(value: str) -> bool:
    return value.endswith("Z") and datetime.fromisoformat(value).utcoffset() == timedelta(0)


# Every route, with a body it would accept.
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/feeds", None),
    ("POST", "/api/feeds", {"url": "http://127.0.0.1:9/x.xml"}),
    ("DELETE", "/api/feeds?id=1", None),
    ("POST", "/api/feeds/pause", {"id": 1}),
    ("POST", "/api/feeds/resume", {"id": 1}),
    ("GET", "/api/alerts", None),
    ("POST", "/api/alerts/00000000-0000-0000-0000-000000000000/retry", None),
    ("GET", "/api/watchlists", None),
    ("GET", "/api/items?q=CSTO", None),
    ("POST", "/api/match", {"text": "CSTO"}),
    ("POST", "/api/backtest", {"query": "CSTO"}),
]


async def test_every_route_needs_the_token(api: Running) -> None:
    for method, path, body in ROUTES:
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token-wrong-token-0000"},
            {"Authorization": f"Bearer {TOKEN}x"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": "Bearer"},
        ):
            r = await api.anon.request(method, path, json=body, headers=headers)
            assert r.status_code == 401, (method, path, headers, r.text)
            assert r.headers["www-authenticate"] == "Bearer"
            assert "bearer token" in r.json()["error"]
        # the token is checked before the body is read: bad JSON without it is a 401 too
        r = await api.anon.request(
            method, path, content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 401, (method, path)
        r = await api.client.request(method, path, json=body)
        assert r.status_code < 500 and r.status_code != 401, (method, path, r.text)


async def test_without_a_token_configured_the_api_is_off_and_says_so(
    tmp_path: Path, db_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    settings = write_config(tmp_path, db_url, feed_server, webhook_receiver.url, token=None)
    async with running(settings) as api:
        for method, path, body in ROUTES:
            for client in (api.anon, api.client):
                r = await client.request(method, path, json=body)
                assert r.status_code == 503, (method, path, r.text)
                assert "http.token" in r.json()["error"]
        assert (await api.anon.get("/healthz")).status_code == 200  # the server itself runs


async def test_openapi_lists_every_route_with_the_bearer_scheme(api: Running) -> None:
    doc = (await api.anon.get("/api/openapi.json")).json()
    scheme = doc["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    operations = {
        (method.upper(), path): op
        for path, item in doc["paths"].items()
        if path.startswith("/api/")
        for method, op in item.items()
    }
    wanted = {
        (m, p.split("?")[0].replace("00000000-0000-0000-0000-000000000000", "{alert_id}"))
        for m, p, _ in ROUTES
    }
    assert set(operations) == wanted
    for key, op in operations.items():
        assert op["security"] == [{"bearer": []}], key
        assert "401" in op["responses"] and "503" in op["responses"], key
        success = next(v for k, v in op["responses"].items() if k.startswith("2"))
        assert "$ref" in json.dumps(success), f"{key}: no response model"
    schemas = doc["components"]["schemas"]
    assert {"FeedList", "AlertPage", "ItemPage", "MatchResult", "ErrorBody"} <= set(schemas)


async def test_feeds_show_their_health_source_and_tags(
    api: Running, feed_server: FeedServer
) -> None:
    async def missing_failed() -> bool:
        feeds = (await api.client.get("/api/feeds")).json()["feeds"]
        return any(f["name"] == "Missing" and f["state"] == "error" for f in feeds)

    await until(missing_failed, "the 404 feed is in error")
    feeds = {f["name"]: f for f in (await api.client.get("/api/feeds")).json()["feeds"]}
    wire, other, missing = feeds["Wire"], feeds["Other wire"], feeds["Missing"]
    assert (wire["state"], wire["items"], wire["last_status"]) == ("ok", len(WIRE), 200)
    assert (wire["source"], wire["tags"], wire["paused"]) == ("config", ["asia"], False)
    assert other["title"] == "Other wire" and other["url"] == feed_server.url("/other.xml")
    assert missing["last_status"] == 404 and missing["error_count"] >= 1
    assert "404" in missing["last_error"] and missing["items"] == 0
    assert is_utc_z(wire["last_polled_at"]) and is_utc_z(wire["next_poll_at"])


async def test_a_feed_added_by_the_api_is_polled_then_removed(
    api: Running, feed_server: FeedServer
) -> None:
    feed_server.set_feed("/added.xml", rss(("n1", "CSTO drills", "", NOW), title="Added"))
    url = feed_server.url("/added.xml")
    r = await api.client.post("/api/feeds", json={"url": url, "tags": ["extra"]})
    assert r.status_code == 201, r.text
    added = r.json()
    assert (added["source"], added["tags"], added["active"]) == ("api", ["extra"], True)
    await polled(feed_server, "/added.xml", 1)
    assert "url: " in error_of(await api.client.post("/api/feeds", json={"url": url}), 409, "url")

    wire_url = feed_server.url("/wire.xml")
    message = error_of(await api.client.delete("/api/feeds", params={"url": wire_url}), 409, "url")
    assert "monitor.yaml" in message  # the file to edit

    r = await api.client.request("DELETE", "/api/feeds", json={"id": added["id"]})
    assert r.status_code == 200 and r.json()["active"] is False
    error_of(await api.client.delete("/api/feeds", params={"id": added["id"]}), 404, "url")
    r = await api.client.post("/api/feeds", json={"url": url, "name": "Added again"})
    assert r.status_code == 201 and r.json()["active"] is True  # a removed feed comes back
    assert r.json()["name"] == "Added again"


async def test_feed_urls_go_out_without_their_credentials(
    api: Running, feed_server: FeedServer
) -> None:
    secret = feed_server.base_url.replace("http://", "http://reader:s3cr3t-pw@") + "/private.xml"
    r = await api.client.post("/api/feeds", json={"url": secret, "name": "Private"})
    assert r.status_code == 201
    listing = (await api.client.get("/api/feeds")).text
    assert "s3cr3t-pw" not in r.text and "s3cr3t-pw" not in listing
    assert r.json()["url"] == feed_server.url("/private.xml")


async def test_adding_a_feed_refuses_bad_input_naming_the_field(api: Running) -> None:
    cases: list[tuple[object, str]] = [
        ({"url": 12}, "url"),
        ({"url": "ftp://example.org/feed"}, "url"),
        ({"url": "http://example.org/" + "a" * 3000}, "url"),
        ({"url": "http://example.org/f", "name": "a\nb"}, "name"),
        ({"url": "http://example.org/f", "tags": ["x"] * 51}, "tags"),
        ({"url": "http://example.org/f", "tags": "asia"}, "tags"),
        ({"url": "http://example.org/f", "colour": "red"}, "colour"),
        ({"url": "http://example.org/f", "name": "Wire"}, "name"),
        ({}, "url"),
        ([1, 2], "body"),
    ]
    for body, field in cases:
        r = await api.client.post("/api/feeds", json=body)
        assert 400 <= r.status_code < 500, (body, r.text)
        assert r.json()["field"] == field, (body, r.text)


async def test_bodies_that_are_not_json_or_too_large_are_refused(api: Running) -> None:
    json_type = {"Content-Type": "application/json"}
    for path in ("/api/feeds", "/api/match", "/api/backtest", "/api/feeds/pause"):
        r = await api.client.post(path, content=b'{"url": ', headers=json_type)
        error_of(r, 400, "body")
        r = await api.client.post(path, content=b"[" * 200_000, headers=json_type)
        assert r.status_code == 400, r.text
        r = await api.client.post(path, content=b'"' + b"x" * 2_000_000 + b'"', headers=json_type)
        assert r.status_code == 413, r.text


async def test_pausing_a_feed_stops_its_polls_until_resumed(
    api: Running, feed_server: FeedServer
) -> None:
    wire = feed_server.url("/wire.xml")
    r = await api.client.post("/api/feeds/pause", json={"url": wire})
    assert r.status_code == 200 and r.json()["paused"] is True
    assert is_utc_z(r.json()["paused_at"])
    seen = len(feed_server.requests_for("/other.xml"))
    await polled(feed_server, "/other.xml", seen + 2)  # any poll under way ends
    paused = len(feed_server.requests_for("/wire.xml"))
    await polled(feed_server, "/other.xml", seen + 5)
    assert len(feed_server.requests_for("/wire.xml")) == paused

    r = await api.client.post("/api/feeds/resume", json={"id": r.json()["id"]})
    assert r.status_code == 200 and r.json()["paused"] is False and r.json()["paused_at"] is None
    await polled(feed_server, "/wire.xml", paused + 1)
    error_of(await api.client.post("/api/feeds/pause", json={"id": 99999}), 404, "id")
    error_of(await api.client.post("/api/feeds/pause", json={"url": "http://nowhere/"}), 404, "url")
    for bad in ({}, {"id": 1, "url": wire}, {"id": "one"}, {"id": 2**70}, {"id": 0}):
        r = await api.client.post("/api/feeds/pause", json=bad)
        assert 400 <= r.status_code < 500 and "field" in r.json(), (bad, r.text)


async def all_alerts(api: Running, **params: str) -> list[dict[str, Any]]:
    r = await api.client.get("/api/alerts", params={"limit": "500", **params})
    assert r.status_code == 200, r.text
    assert r.json()["next"] is None
    alerts: list[dict[str, Any]] = r.json()["alerts"]
    return alerts


async def test_alerts_come_with_their_item_feed_matches_and_deliveries(api: Running) -> None:
    alerts = await all_alerts(api)
    assert len(alerts) == 5
    keys = [(a["created_at"], a["id"]) for a in alerts]
    assert keys == sorted(keys, reverse=True)  # newest first
    [csto] = [a for a in alerts if a["item"]["title"] == "CSTO summit opens in Astana"]
    assert csto["watchlist"] == "csto" and is_utc_z(csto["created_at"])
    assert csto["feed"]["name"] == "Wire" and csto["item"]["link"].endswith("/news/k3")
    [match, *_] = csto["matches"]
    assert (match["term"], match["field"]) == ("CSTO", "title")
    start, end = match["highlights"][0]
    assert match["snippet"][start:end] == "CSTO" and "\ue000" not in match["snippet"]
    [delivery] = csto["deliveries"]
    assert (delivery["channel"], delivery["state"], delivery["attempts"]) == ("hook", "sent", 1)
    assert is_utc_z(delivery["sent_at"])

    tokayev = await all_alerts(api, watchlist="tokayev")
    assert {a["item"]["guid"] for a in tokayev} == {"k1", "k2"}
    assert len(await all_alerts(api, state="sent")) == 4  # wire-only has no route
    assert await all_alerts(api, state="dead") == []
    assert len(await all_alerts(api, since="1h")) == 5
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert await all_alerts(api, since=future) == []
    assert len(await all_alerts(api, since="2020-01-01")) == 5  # no offset: UTC


async def test_alert_pages_neither_repeat_nor_skip_while_alerts_arrive(
    api: Running, feed_server: FeedServer
) -> None:
    served = list(WIRE) + [(f"p{i}", f"CSTO briefing {i}", "", NOW) for i in range(9)]
    feed_server.set_feed("/wire.xml", rss(*served, title="Wire feed"))

    async def alerts_reach(count: int) -> None:
        async def enough() -> bool:
            return len(await all_alerts(api)) >= count

        await until(enough, f"{count} alerts")

    await alerts_reach(14)
    before = [a["id"] for a in await all_alerts(api)]
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "4"} | ({"cursor": cursor} if cursor else {})
        r = await api.client.get("/api/alerts", params=params)
        assert r.status_code == 200, r.text
        pages.append(r.json()["alerts"])
        cursor = r.json()["next"]
        if cursor is None:
            break
        # new alerts arrive between two pages
        n = len(pages)
        served += [(f"q{n}-{i}", f"CSTO update {n}.{i}", "", NOW) for i in range(2)]
        feed_server.set_feed("/wire.xml", rss(*served, title="Wire feed"))
        await alerts_reach(14 + 2 * n)
    seen = [a["id"] for page in pages for a in page]
    assert len(seen) == len(set(seen))  # no repeats
    assert seen == before  # no gaps, in order, and none of the newer ones
    assert [len(p) for p in pages] == [4, 4, 4, 2]
    newest = [a["id"] for a in await all_alerts(api)]
    assert newest[6:] == before  # the 6 that arrived while paging sort before the first page


async def test_retry_sends_a_dead_delivery_again(
    api: Running, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.script(400)  # permanent: the next delivery is dead at once
    served = [*WIRE, ("d1", "CSTO statement", "", NOW)]
    feed_server.set_feed("/wire.xml", rss(*served, title="Wire feed"))

    async def one_dead() -> bool:
        return len(await all_alerts(api, state="dead")) == 1

    await until(one_dead, "a dead delivery")
    [dead] = await all_alerts(api, state="dead")
    assert dead["deliveries"][0]["attempts"] == 1 and dead["deliveries"][0]["last_error"]
    r = await api.client.post(f"/api/alerts/{dead['id']}/retry")
    assert r.status_code == 200, r.text
    assert r.json() == {"alert_id": dead["id"], "queued": 1, "being_sent": 0}
    [again] = [a for a in await all_alerts(api) if a["id"] == dead["id"]]
    assert again["deliveries"][0]["state"] in {"pending", "sent"}  # no longer dead

    async def sent() -> bool:
        [alert] = [a for a in await all_alerts(api) if a["id"] == dead["id"]]
        return alert["deliveries"][0]["state"] == "sent"

    await until(sent, "the retried delivery sent")
    deliveries = [r for r in webhook_receiver.requests if r.json()["id"] == dead["id"]]
    assert [d.status for d in deliveries] == [400, 200]
    missing = "/api/alerts/00000000-0000-0000-0000-000000000000/retry"
    error_of(await api.client.post(missing), 404, "alert_id")
    r = await api.client.post(f"/api/alerts/{'x' * 37}/retry")
    assert r.status_code == 400 and r.json()["field"] == "alert_id"


async def test_watchlists_show_their_configuration_and_recent_alerts(api: Running) -> None:
    r = await api.client.get("/api/watchlists")
    assert r.status_code == 200
    found = {w["name"]: w for w in r.json()["watchlists"]}
    assert list(found) == ["csto", "tokayev", "wire-only", "asia-only"]
    csto, tokayev, wire = found["csto"], found["tokayev"], found["wire-only"]
    assert (csto["terms"], csto["query"], csto["alerts_7d"]) == (["CSTO", "ОДКБ"], None, 2)
    assert csto["routes"] == [{"channel": "hook", "digest": None}]
    assert (tokayev["query"], tokayev["alerts_7d"], tokayev["language"]) == ("Токаев", 2, "auto")
    assert (wire["feeds"], wire["routes"], wire["alerts_7d"]) == (["Wire"], [], 1)


async def search(api: Running, **params: str) -> dict[str, Any]:
    r = await api.client.get("/api/items", params=params)
    assert r.status_code == 200, r.text
    page: dict[str, Any] = r.json()
    return page


async def guids(api: Running, **params: str) -> set[str]:
    return {item["guid"] for item in (await search(api, **params))["items"]}


async def test_item_search_folds_case_scripts_and_inflections_as_matching_does(
    api: Running,
) -> None:
    """SQLite's LIKE folds ASCII only: none of these would be found with it."""
    assert await guids(api, q="Токаев") == {"k1", "k2"}  # Тоқаев, Токаевым, ТОКАЕВА
    assert await guids(api, q="одкб") == {"o1"}
    assert await guids(api, q="istanbul") == {"k5"}  # İstanbul
    assert await guids(api, q="csto") == {"k3"}
    assert await guids(api, q="title:Bishkek") == {"k4"}
    assert await guids(api, q='feed:"Other wire" AND (ОДКБ OR CSTO)') == {"o1"}
    assert await guids(api, q="Astana NOT CSTO") == set()
    page = await search(api, q="Токаев")
    [kazakh] = [i for i in page["items"] if i["guid"] == "k1"]
    assert kazakh["matches"][0]["snippet"].startswith("Тоқаев")
    assert kazakh["feed"]["name"] == "Wire" and is_utc_z(kazakh["first_seen_at"])
    assert (page["scanned"], page["next"]) == (6, None)


async def test_items_filter_by_feed_and_time_and_page_without_gaps(api: Running) -> None:
    assert await guids(api, feed="Wire") == {"k1", "k2", "k3", "k4", "k5"}
    assert await guids(api, feed="Other wire", q="ОДКБ") == {"o1"}
    assert await guids(api, since="2020-01-01T00:00:00+03:00") == {
        "k1",
        "k2",
        "k3",
        "k4",
        "k5",
        "o1",
    }
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await guids(api, since=future) == set()
    seen: list[str] = []
    cursor = None
    while True:
        page = await search(api, limit="4", **({"cursor": cursor} if cursor else {}))
        seen += [i["guid"] for i in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert sorted(seen) == ["k1", "k2", "k3", "k4", "k5", "o1"]
    error_of(await api.client.get("/api/items", params={"feed": "Nowhere"}), 400, "feed")


async def test_a_search_looks_at_a_bounded_number_of_items_per_request(
    api: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(items_api, "MAX_SCAN", 2)
    monkeypatch.setattr(items_api, "SCAN_BATCH", 1)
    found: list[str] = []
    pages = 0
    cursor = None
    while True:
        page = await search(api, q="Токаев OR ОДКБ", **({"cursor": cursor} if cursor else {}))
        assert page["scanned"] <= 2
        found += [i["guid"] for i in page["items"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert sorted(found) == ["k1", "k2", "o1"]  # every hit once, though each page saw 2
    assert pages >= 3


async def test_a_malformed_search_says_why_and_where(api: Running) -> None:
    for q, position in (('"unclosed', 0), ("Astana AND", 10), ("-football", 0), ("(a OR b", 0)):
        r = await api.client.get("/api/items", params={"q": q})
        message = error_of(r, 400, "q")
        assert r.json()["position"] == position, (q, message)
        assert message.startswith(f"q: at position {position}: ")


async def test_match_says_which_watchlists_match_and_why(api: Running) -> None:
    async def matched(**body: str) -> dict[str, list[dict[str, Any]]]:
        r = await api.client.post("/api/match", json=body)
        assert r.status_code == 200, r.text
        return {w["watchlist"]: w["matches"] for w in r.json()["watchlists"]}

    found = await matched(text="Учения ОДКБ <b>и</b> CSTO\u0007")
    assert list(found) == ["csto"]
    assert {(m["term"], m["field"]) for m in found["csto"]} == {
        ("ОДКБ", "title"),
        ("ОДКБ", "summary"),
        ("CSTO", "title"),
        ("CSTO", "summary"),
    }
    snippet = found["csto"][0]["snippet"]
    assert "\ue000" not in snippet and "\ue001" not in snippet
    assert list(await matched(title="Weather in Bishkek")) == ["wire-only"]  # unscoped
    assert list(await matched(title="Weather in Bishkek", feed="Wire")) == ["wire-only"]
    assert await matched(title="Weather in Bishkek", feed="Other wire") == {}  # scoped
    assert list(await matched(summary="Встреча с Тоқаевым")) == ["tokayev"]
    for body, field in (
        ({}, "body"),
        ({"text": "a", "title": "b"}, "body"),
        ({"text": 5}, "text"),
        ({"text": "x" * 100_001}, "text"),
        ({"text": "a", "colour": "red"}, "colour"),
        ({"text": None}, "body"),
        ({"text": "a", "feed": ["Wire"]}, "feed"),
    ):
        error_of(await api.client.post("/api/match", json=body), 400, field)


async def test_backtest_says_what_would_have_alerted(
    api: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def backtest(**body: object) -> dict[str, Any]:
        r = await api.client.post("/api/backtest", json=body)
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    result = await backtest(query="Токаев")
    assert (result["scanned"], result["truncated"], result["alerts"]) == (6, False, {"query": 2})
    assert {h["item"]["guid"] for h in result["hits"]} == {"k1", "k2"}
    assert result["hits"][0]["watchlists"][0]["matches"][0]["term"] == "Токаев"
    assert (await backtest(watchlist="csto", window="1h"))["alerts"] == {"csto": 2}
    assert (await backtest(watchlist="wire-only"))["alerts"] == {"wire-only": 1}
    limited = await backtest(query="Токаев OR CSTO", limit=1)
    assert len(limited["hits"]) == 1 and limited["alerts"] == {"query": 3}
    monkeypatch.setattr(trial_api, "MAX_ITEMS", 3)
    capped = await backtest(query="Токаев OR CSTO OR ОДКБ OR Bishkek OR istanbul")
    assert (capped["scanned"], capped["truncated"], capped["alerts"]) == (3, True, {"query": 3})

    for body, field in (
        ({"query": "CSTO", "window": "1000d"}, "window"),
        ({"query": "CSTO", "window": "soon"}, "window"),
        ({"query": "CSTO", "window": 7}, "window"),
        ({"watchlist": "nope"}, "watchlist"),
        ({"query": "(CSTO"}, "query"),
        ({"query": "CSTO", "watchlist": "csto"}, "body"),
        ({"query": "CSTO", "limit": 0}, "limit"),
        ({"query": "CSTO", "limit": 10**30}, "limit"),
        ({"query": "x" * 1001}, "query"),
    ):
        error_of(await api.client.post("/api/backtest", json=body), 400, field)


async def test_malformed_parameters_are_refused_naming_the_field(api: Running) -> None:
    items_cursor = (await search(api, limit="1"))["next"]
    alerts_page = (await api.client.get("/api/alerts", params={"limit": 1})).json()
    forged = base64.urlsafe_b64encode(b'["alert","not a time","x"]').decode()
    early = base64.urlsafe_b64encode(b'["alert","0001-01-01T00:00:00+01:00","x"]').decode()
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/api/alerts", {"cursor": "!!!"}, "cursor"),
        ("/api/alerts", {"cursor": items_cursor}, "cursor"),
        ("/api/alerts", {"cursor": forged}, "cursor"),
        ("/api/alerts", {"cursor": base64.urlsafe_b64encode(b"[[[[").decode()}, "cursor"),
        ("/api/alerts", {"cursor": "x" * 201}, "cursor"),
        ("/api/alerts", {"since": "yesterday"}, "since"),
        ("/api/alerts", {"since": "9" * 40}, "since"),
        ("/api/alerts", {"since": "0001-01-01T00:00:00+01:00"}, "since"),
        ("/api/alerts", {"cursor": early}, "cursor"),
        ("/api/alerts", {"state": "lost"}, "state"),
        ("/api/alerts", {"limit": 0}, "limit"),
        ("/api/alerts", {"limit": 501}, "limit"),
        ("/api/alerts", {"limit": "ten"}, "limit"),
        ("/api/alerts", {"limit": 10**30}, "limit"),
        ("/api/alerts", {"watchlist": "x" * 201}, "watchlist"),
        ("/api/items", {"cursor": alerts_page["next"]}, "cursor"),
        ("/api/items", {"q": ""}, "q"),
        ("/api/items", {"q": "x" * 1001}, "q"),
        ("/api/items", {"since": "2026-13-45"}, "since"),
        ("/api/feeds", {"id": "x"}, "id"),
    ]
    for path, params, field in cases:
        method = "DELETE" if path == "/api/feeds" else "GET"
        r = await api.client.request(method, path, params=params)
        error_of(r, 400, field)


async def test_an_unreachable_database_is_a_503_that_quotes_no_sql(
    tmp_path: Path,
    postgres_url: str,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = make_url(postgres_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432)).start()
    proxied = url.set(port=proxy.port).render_as_string(hide_password=False)
    feed_server.set_feed("/wire.xml", rss(*WIRE))
    settings = write_config(tmp_path, proxied, feed_server, webhook_receiver.url)
    try:
        async with running(settings) as api:
            assert (await api.client.get("/api/feeds")).status_code == 200
            proxy.cut()
            r = await api.client.get("/api/feeds")
            assert r.status_code == 503
            assert r.json() == {"error": "the database is unavailable; try again later"}
            logged = [r.getMessage() for r in caplog.records if r.name == "monitor.web.api"]
            assert logged == ["api: database unavailable (OperationalError)"]
            proxy.restore()

            async def back() -> bool:
                return (await api.client.get("/api/feeds")).status_code == 200

            await until(back, "the API answers again once PostgreSQL is reachable")
    finally:
        proxy.cut()


async def test_trials_give_a_feed_kept_in_the_database_its_own_tags(
    api: Running, feed_server: FeedServer
) -> None:
    """As live: a watchlist scoped to a tag sees the items of an API feed with that tag."""
    feed_server.set_feed("/silk.xml", rss(("s1", "Samarkand forum opens", "", NOW)))
    body = {"url": feed_server.url("/silk.xml"), "name": "Silk", "tags": ["asia"]}
    assert (await api.client.post("/api/feeds", json=body)).status_code == 201
    await stored_items(api, len(WIRE) + len(OTHER) + 1)
    r = await api.client.post("/api/backtest", json={"watchlist": "asia-only"})
    assert r.json()["alerts"] == {"asia-only": 1}
    r = await api.client.post("/api/match", json={"title": "Samarkand", "feed": "Silk"})
    assert [w["watchlist"] for w in r.json()["watchlists"]] == ["asia-only"]
    r = await api.client.post("/api/match", json={"title": "Samarkand", "feed": "Other wire"})
    assert r.json()["watchlists"] == []
    assert [a["feed"]["name"] for a in await all_alerts(api, watchlist="asia-only")] == ["Silk"]
