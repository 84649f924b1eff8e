"""The watchlists pages and the query tester, on SQLite and PostgreSQL, over a real socket.

The service runs in-process (as in tests/test_api.py), polling two loopback feeds; one
stored item is moved 10 days back (inside a 30-day window, outside a 7-day one) and one
alert 3 days back, so the windows and the days of the charts can be told apart.
"""

from __future__ import annotations

import html as htmlmod
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from feedserver import FeedServer
from receivers import WebhookReceiver
from sqlalchemy import select, update
from test_api import TOKEN, Running, all_sent, running, stored_items
from test_pages_overview import signed_in
from test_service import rss

from monitor.config import load_settings
from monitor.store.schema import AlertRow, ItemRow
from monitor.web.pages import watchlists as page

NOW = datetime.now(UTC)
WIRE = [
    ("w1", "CSTO summit opens in Astana", "Leaders of the CSTO met.", NOW),
    ("w2", "Встреча с Токаевым", "ТОКАЕВА встретили в Москве", NOW),
    ("w3", "ОДКБ проведёт учения", "Учения ОДКБ пройдут в Казахстане", NOW),
    ("w4", "Weather in Bishkek", "Sunny &amp; cold", NOW),
    (
        "w5",
        "&lt;script&gt;alert(1)&lt;/script&gt; CSTO drill",
        "&amp;lt;img src=x onerror=alert(2)&amp;gt; the CSTO drill",
        NOW,
    ),
]
OTHER = [
    ("o1", "ОДКБ заседание в Минске", "Совет ОДКБ", NOW),
    ("o2", "CSTO anniversary archive", "From the archive", NOW),
]
ODD = "odd / name <b>"


def write_config(tmp_path: Path, db_url: str, feed_server: FeedServer, hook: str) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"""
database: {db_url}
service: {{tick: 0.1s}}
defaults: {{interval: 1s, backlog: all}}
polling: {{parse_workers: 0, jitter: 0}}
http: {{listen: "127.0.0.1:0", token: "{TOKEN}"}}
feeds:
  - url: {feed_server.url("/wire.xml")}
    name: Wire
  - url: {feed_server.url("/other.xml")}
    name: Other
watchlists:
  - name: csto
    terms: [CSTO, ОДКБ]
    notify: [hook]
  - name: tokayev
    query: Токаев
    notify: [hook]
  - name: wire-only
    query: Bishkek OR ОДКБ
    feeds: [Wire]
    language: none
  - name: "{ODD}"
    query: Astana
channels:
  - name: hook
    type: webhook
    url: {hook}
    retry: [0s]
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
async def api(
    tmp_path: Path, db_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> AsyncIterator[Running]:
    """The service with both feeds polled, o2 stored 10 days ago, its csto alert 3 days
    ago; every delivery sent."""
    feed_server.set_feed("/wire.xml", rss(*WIRE, title="Wire feed"))
    feed_server.set_feed("/other.xml", rss(*OTHER, title="Other feed"))
    settings = load_settings(write_config(tmp_path, db_url, feed_server, webhook_receiver.url), {})
    async with running(settings) as api:
        await stored_items(api, len(WIRE) + len(OTHER))
        # csto: w1 w3 w5 o1 o2; tokayev: w2; wire-only: w3 w4; ODD: w1 (no route)
        await all_sent(api, 6)
        with api.app.engine.begin() as conn:
            item = conn.execute(select(ItemRow.id).where(ItemRow.guid == "o2")).scalar_one()
            moved = NOW - timedelta(days=10)
            conn.execute(update(ItemRow).where(ItemRow.id == item).values(first_seen_at=moved))
            conn.execute(
                update(AlertRow)
                .where(AlertRow.item_id == item)
                .values(created_at=NOW - timedelta(days=3))
            )
        yield api


def section(html: str, id_: str) -> str:
    """The HTML of the element with this id, up to its section's end."""
    start = html.index(f'id="{id_}"')
    return html[start : html.index("</section>", start)]


def titles(part: str) -> set[str]:
    return {htmlmod.unescape(t) for t in re.findall(r'target="_blank">([^<]*)</a>', part)}


def count_of(part: str) -> int:
    found = re.search(r'data-count="(\d+)"', part)
    assert found, part[:300]
    return int(found[1])


async def test_the_list_shows_each_watchlist_with_its_query_and_alerts_per_day(
    api: Running,
) -> None:
    client = await signed_in(api)
    html = (await client.get("/watchlists")).text
    rows = {
        htmlmod.unescape(m[1]): m[2]
        for m in re.finditer(r'<tr data-watchlist="([^"]*)">(.*?)</tr>', html, re.S)
    }
    assert list(rows) == ["csto", "tokayev", "wire-only", ODD]
    csto = rows["csto"]
    assert re.search(r'terms:</span>\s*<code class="wl-term">CSTO</code>', csto)
    assert '<code class="wl-term">ОДКБ</code>' in csto
    assert "<code>Токаев</code>" in rows["tokayev"]
    assert "feeds: Wire" in rows["wire-only"] and ">none<" in rows["wire-only"]
    assert "hook" in csto and "nobody" in rows[ODD]
    today = datetime.now(UTC).date()
    back = (NOW - timedelta(days=3)).date()
    assert f"<title>{today.isoformat()}: 4</title>" in csto
    assert f"<title>{back.isoformat()}: 1</title>" in csto
    assert re.search(r'class="num wl-total">5<', csto)
    assert re.search(r'class="num wl-total">1<', rows[ODD])
    # the name is escaped, and its link reaches its page
    assert "odd / name &lt;b&gt;" in html and "<b>" not in html
    odd = f"/watchlists/{quote(ODD, safe='')}"
    assert (await client.get(odd)).status_code == 200
    tested = (await client.get(f"{odd}/test", params={"q": "Astana OR Bishkek"})).text
    assert re.search(r'data-matched="2" data-new="1" data-lost="0"', tested)


async def test_a_broken_query_shows_its_message_and_position(api: Running) -> None:
    client = await signed_in(api)
    for path in ("/watchlists/csto", "/watchlists/csto/test"):
        r = await client.get(path, params={"q": "CSTO AND ("})
        assert r.status_code == 200
        assert 'data-position="10"' in r.text
        assert "expected a term before end of query (at position 10, the end)" in r.text
        assert re.search(r'CSTO AND \(<mark class="wl-at wl-at-end"> </mark>', r.text)
        assert f'<span class="wl-caret" aria-hidden="true">{" " * 10}^</span>' in r.text
        assert 'id="wl-matched"' not in r.text
    r = await client.get("/watchlists/csto/test", params={"q": 'Bishkek OR "unclosed'})
    assert 'data-position="11"' in r.text
    assert "unterminated quoted phrase" in r.text
    assert 'Bishkek OR <mark class="wl-at">&#34;</mark>unclosed' in r.text
    r = await client.get("/watchlists/csto/test", params={"q": "x" * 1001})
    assert 'data-position="1000"' in r.text and "longer than 1000" in r.text
    assert "wl-caret" not in r.text and 'class="wl-where wl-wrapped"' in r.text


async def test_a_good_query_lists_its_matches_and_the_difference_from_the_current(
    api: Running,
) -> None:
    client = await signed_in(api)
    html = (await client.get("/watchlists/csto", params={"q": "CSTO OR Bishkek"})).text
    matched = section(html, "wl-matched")
    assert titles(matched) == {
        "CSTO summit opens in Astana",
        "Weather in Bishkek",
        "<script>alert(1)</script> CSTO drill",
    }
    assert count_of(matched) == 3
    assert "<mark>CSTO</mark>" in matched and "<mark>Bishkek</mark>" in matched
    assert titles(section(html, "wl-new")) == {"Weather in Bishkek"}
    lost = section(html, "wl-lost")
    assert titles(lost) == {"ОДКБ проведёт учения", "ОДКБ заседание в Минске"}
    assert "<mark>ОДКБ</mark>" in lost  # the current query's snippets
    assert re.search(r'data-matched="3" data-new="1" data-lost="2"', html)
    assert "of 6 items first seen since" in html  # o2 is older than 7 days
    # matches per day: this query 3 today, the current one 4
    today = datetime.now(UTC).date().isoformat()
    assert 'aria-label="this query: 3 matches' in html
    assert 'aria-label="current query: 4 matches' in html
    assert f"<title>{today}: 3</title>" in html
    # the page opens with the watchlist's own query, which differs from nothing
    html = (await client.get("/watchlists/csto")).text
    shown = re.search(r'<textarea id="wl-q"[^>]*>\n(.*?)</textarea>', html, re.S)
    assert shown and htmlmod.unescape(shown[1]) == '"CSTO" OR "ОДКБ"'
    assert re.search(r'data-matched="4" data-new="0" data-lost="0"', html)


async def test_the_window_is_the_last_7_or_30_days(api: Running) -> None:
    client = await signed_in(api)
    week = (await client.get("/watchlists/csto/test", params={"q": "archive"})).text
    assert re.search(r'data-matched="0" data-new="0" data-lost="4"', week)
    month = (await client.get("/watchlists/csto/test", params={"q": "archive", "days": "30"})).text
    assert re.search(r'data-matched="1" data-new="0" data-lost="4"', month)
    assert titles(section(month, "wl-matched")) == {"CSTO anniversary archive"}
    assert "of 7 items first seen since" in month and "(last 30 days)" in month
    page = (await client.get("/watchlists/csto", params={"q": "archive", "days": "30"})).text
    assert '<option value="30" selected>' in page
    assert re.search(r'data-matched="1" data-new="0" data-lost="4"', page)


async def test_the_tester_keeps_the_watchlists_scope(api: Running) -> None:
    client = await signed_in(api)
    html = (await client.get("/watchlists/wire-only/test", params={"q": "ОДКБ"})).text
    # o1 says ОДКБ too, but comes from Other: outside the watchlist's feeds
    assert titles(section(html, "wl-matched")) == {"ОДКБ проведёт учения"}
    assert titles(section(html, "wl-lost")) == {"Weather in Bishkek"}


async def test_the_yaml_shown_reads_back_as_the_tested_query(api: Running) -> None:
    client = await signed_in(api)
    query = '"CSTO summit" OR title:Bishkek #1 OR "a: b" OR \'x\' OR "say \\"hi\\""'
    html = (await client.get("/watchlists/wire-only", params={"q": query})).text
    shown = re.search(r'<pre id="wl-yaml">(.*?)</pre>', html, re.S)
    assert shown
    entry = yaml.safe_load(htmlmod.unescape(shown[1]))
    assert entry == [{"name": "wire-only", "query": query, "feeds": ["Wire"], "language": "none"}]
    html = (await client.get("/watchlists/csto/test", params={"q": "\u202eCSTO"})).text
    shown = re.search(r'<pre id="wl-yaml">(.*?)</pre>', html, re.S)
    assert shown and "\u202e" not in shown[1]  # escaped in the YAML, not shown raw
    assert yaml.safe_load(htmlmod.unescape(shown[1]))[0]["query"] == "\u202eCSTO"


async def test_hostile_text_is_escaped(api: Running) -> None:
    client = await signed_in(api)
    html = (await client.get("/watchlists/csto", params={"q": "drill"})).text
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; CSTO" in html
    assert "&lt;img src=x onerror=alert(2)&gt; the CSTO <mark>drill</mark>" in html
    query = '"</textarea><script>alert(3)</script>'
    for path in ("/watchlists/csto", "/watchlists/csto/test"):
        text = (await client.get(path, params={"q": query})).text
        assert "<script>alert(3)" not in text and "</textarea><script>" not in text
        assert "&lt;/textarea&gt;&lt;script&gt;alert(3)" in text


async def test_a_new_query_is_tested_over_every_feed_without_a_difference(
    api: Running,
) -> None:
    client = await signed_in(api)
    html = (await client.get("/watchlists/new", params={"q": "ОДКБ OR Bishkek"})).text
    assert titles(section(html, "wl-matched")) == {
        "ОДКБ проведёт учения",
        "ОДКБ заседание в Минске",
        "Weather in Bishkek",
    }
    assert 'id="wl-new"' not in html and 'id="wl-lost"' not in html
    shown = re.search(r'<pre id="wl-yaml">(.*?)</pre>', html, re.S)
    assert shown
    assert yaml.safe_load(htmlmod.unescape(shown[1])) == [
        {"name": "new-watchlist", "query": "ОДКБ OR Bishkek"}
    ]
    blank = (await client.get("/watchlists/new")).text
    assert "Type a query" in blank


async def test_the_work_and_the_lists_are_bounded_and_say_so(
    api: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(page, "MAX_ITEMS", 2)
    monkeypatch.setattr(page, "LISTED", 1)
    client = await signed_in(api)
    every = "CSTO OR ОДКБ OR Bishkek OR Токаев"  # each item of the window
    html = (await client.get("/watchlists/csto/test", params={"q": every})).text
    assert "only the newest 2 were tested" in html
    assert "of 2 items first seen since" in html
    matched = section(html, "wl-matched")
    assert count_of(matched) == 2 and len(titles(matched)) == 1
    assert "(the newest 1 are listed)" in matched


async def test_unknown_watchlists_are_404_and_strangers_sign_in_first(api: Running) -> None:
    for path in ("/watchlists", "/watchlists/csto", "/watchlists/csto/test?q=CSTO"):
        r = await api.anon.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    client = await signed_in(api)
    for path in ("/watchlists/nope", "/watchlists/nope/test?q=CSTO"):
        r = await client.get(path)
        assert r.status_code == 404
        assert "No watchlist has this name" in r.text
