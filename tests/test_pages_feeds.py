"""The dashboard's feeds pages, on SQLite and PostgreSQL, over a real socket.

The service runs in-process with the JSON API's test data (tests/test_api.py): Wire (5
items, tagged asia), an unnamed feed titled "Other wire" (1 item) and Missing (404), all
polled every second from the loopback feed server.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
from feedserver import FeedServer
from pages import CSRF
from test_api import DEADLINE, Running, api, polled, until  # noqa: F401
from test_pages_overview import signed_in
from test_service import rss

from monitor.store import FeedStatus
from monitor.types import FeedState, PollUpdate

ROW = re.compile(r'<tr data-feed="(\d+)"')


def feeds_by_name(api: Running) -> dict[str, FeedStatus]:  # noqa: F811
    return {f.name: f for f in api.app.store.list_feeds()}


async def order(client: httpx.AsyncClient, api: Running, query: str = "") -> list[str]:  # noqa: F811
    page = await client.get(f"/feeds{query}")
    assert page.status_code == 200, page.text
    names = {f.id: f.name for f in api.app.store.list_feeds()}
    return [names[int(i)] for i in ROW.findall(page.text)]


def section(html: str, start: str, end: str) -> str:
    return html[html.index(start) : html.index(end, html.index(start))]


async def test_the_list_shows_each_feeds_health_failing_first(api: Running) -> None:  # noqa: F811
    client = await signed_in(api)
    html = (await client.get("/feeds")).text
    assert await order(client, api) == ["Missing", "Other wire", "Wire"]
    feeds = feeds_by_name(api)
    wire = section(html, f'<tr data-feed="{feeds["Wire"].id}"', "</tr>")
    assert f'href="/feeds/{feeds["Wire"].id}">Wire</a>' in wire
    assert "/wire.xml" in wire and "asia" in wire and "config" in wire
    assert '<td class="num hide-narrow">5</td>' in wire  # items
    assert "state-ok" in wire and "<time " in wire
    missing = section(html, f'<tr data-feed="{feeds["Missing"].id}"', "</tr>")
    assert "state-error" in missing and "404" in missing and "feeds-error" in missing
    assert "1 failing" in html


async def test_sorting_by_a_column_changes_the_order_and_bad_values_fall_back(
    api: Running,  # noqa: F811
) -> None:
    client = await signed_in(api)
    default = await order(client, api)
    assert await order(client, api, "?sort=name&dir=asc") == ["Missing", "Other wire", "Wire"]
    assert await order(client, api, "?sort=name&dir=desc") == ["Wire", "Other wire", "Missing"]
    assert await order(client, api, "?sort=items&dir=desc") == ["Wire", "Other wire", "Missing"]
    assert await order(client, api, "?sort=items&dir=asc") == ["Missing", "Other wire", "Wire"]
    assert (await order(client, api, "?sort=errors&dir=desc"))[:1] == ["Missing"]
    for bad in ("?sort=bogus&dir=asc", "?sort=name';--&dir=x", "?dir=desc", "?sort=" + "x" * 5000):
        assert await order(client, api, bad) == default, bad
    # a column without a valid direction sorts in its own first direction
    assert await order(client, api, "?sort=items&dir=sideways") == ["Wire", "Other wire", "Missing"]
    html = (await client.get("/feeds?sort=name&dir=asc")).text
    heading = section(html, 'aria-sort="ascending"', "</th>")
    assert 'href="/feeds?sort=name&amp;dir=desc"' in heading and "▲" in heading
    assert html.count("aria-sort=") == 1
    assert 'href="/feeds?sort=items&amp;dir=desc"' in html  # another column: its first order


async def test_a_feeds_page_shows_its_polls_items_and_errors(
    api: Running,  # noqa: F811
    feed_server: FeedServer,
) -> None:
    client = await signed_in(api)
    feeds = feeds_by_name(api)
    wire_id = feeds["Wire"].id

    async def twice() -> bool:  # the first poll stored 5 items, the next none
        history = api.app.store.poll_history(wire_id)
        return history is not None and len(history.polls) >= 2

    await until(twice, "two polls of Wire recorded")
    html = (await client.get(f"/feeds/{feeds['Wire'].id}")).text
    polls = section(html, 'id="feed-polls"', "</table>")
    rows = re.findall(r'<tr data-seq="(\d+)" data-outcome="([a-z-]+)">(.*?)</tr>', polls, re.S)
    assert len(rows) >= 2
    seq, outcome, first = rows[-1]  # the oldest kept: the first poll
    assert (seq, outcome) == ("1", "ok")
    cells = re.findall(r'<td class="num">([^<]*)</td>', first)
    assert cells[0] == "200" and cells[1].isdigit() and cells[2] == "5"  # status, ms, new items
    assert [re.findall(r'<td class="num">([^<]*)</td>', r[2])[2] for r in rows[:-1]] == ["0"] * (
        len(rows) - 1
    )
    items = section(html, 'id="feed-items"', "</table>")
    assert section(items, "<tbody>", "</tbody>").count("<tr>") == 5
    assert re.search(r'<a href="http://127\.0\.0\.1:\d+/news/k3" rel="noopener', items)
    assert "CSTO summit opens in Astana" in items
    assert "No failed poll recorded." in html
    assert "asia" in html and "Wire feed" in html  # tags and the feed's own title

    missing = (await client.get(f"/feeds/{feeds['Missing'].id}")).text
    errors = section(missing, 'id="feed-errors"', "</ol>")
    assert "404" in errors and "state-error" in errors
    assert 'id="feed-last-error"' in missing


async def test_unknown_or_malformed_feed_ids_are_a_404_page(api: Running) -> None:  # noqa: F811
    client = await signed_in(api)
    for path in ("/feeds/99999", "/feeds/abc", "/feeds/-1", "/feeds/0", "/feeds/" + "9" * 30):
        page = await client.get(path)
        assert page.status_code == 404, path
        assert "There is no such feed." in page.text and "<html" in page.text
    form = await client.get(f"/feeds/{feeds_by_name(api)['Wire'].id}")
    token = CSRF.search(form.text)
    assert token
    refused = await client.post("/feeds/99999/pause", data={"csrf": token[1]})
    assert refused.status_code == 404


async def test_pausing_from_the_feed_page_stops_its_polls_until_resumed(
    api: Running,  # noqa: F811
    feed_server: FeedServer,
) -> None:
    client = await signed_in(api)
    wire = feeds_by_name(api)["Wire"]
    page = (await client.get(f"/feeds/{wire.id}")).text
    assert f'action="/feeds/{wire.id}/pause"' in page and "Resume polling" not in page
    token = CSRF.search(page)
    assert token
    forged = await client.post(f"/feeds/{wire.id}/pause", data={"csrf": "forged"})
    assert forged.status_code == 403
    assert feeds_by_name(api)["Wire"].paused_at is None

    done = await client.post(f"/feeds/{wire.id}/pause", data={"csrf": token[1]})
    assert done.status_code == 303 and done.headers["location"] == f"/feeds/{wire.id}?done=paused"
    seen = len(feed_server.requests_for("/other.xml"))
    await polled(feed_server, "/other.xml", seen + 2)  # a poll under way ends
    paused = len(feed_server.requests_for("/wire.xml"))
    await polled(feed_server, "/other.xml", seen + 5)
    assert len(feed_server.requests_for("/wire.xml")) == paused
    page = (await client.get(done.headers["location"])).text
    assert "Paused: the feed is not polled until resumed." in page
    assert f'action="/feeds/{wire.id}/resume"' in page and "state-paused" in page
    listed = (await client.get("/feeds")).text
    assert "state-paused" in section(listed, f'<tr data-feed="{wire.id}"', "</tr>")

    resumed = await client.post(f"/feeds/{wire.id}/resume", data={"csrf": token[1]})
    assert resumed.headers["location"] == f"/feeds/{wire.id}?done=resumed"
    await polled(feed_server, "/wire.xml", paused + 1)
    assert feeds_by_name(api)["Wire"].paused_at is None


async def test_a_stranger_is_sent_to_sign_in_and_cannot_pause(api: Running) -> None:  # noqa: F811
    wire = feeds_by_name(api)["Wire"]
    for path in ("/feeds", f"/feeds/{wire.id}"):
        page = await api.anon.get(path)
        assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
    refused = await api.anon.post(f"/feeds/{wire.id}/pause", data={"csrf": "x"})
    assert refused.status_code in (303, 403)
    assert feeds_by_name(api)["Wire"].paused_at is None


HOSTILE_TITLE = "<img src=x onerror=alert(1)>\u202eevil\u0007"
HOSTILE_ERROR = '<script>alert("err")</script> & \u202etxt.exe'


async def test_hostile_feed_titles_and_errors_are_shown_as_text(
    api: Running,  # noqa: F811
    feed_server: FeedServer,
) -> None:
    title = HOSTILE_TITLE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    feed_server.set_feed("/other.xml", rss(("o9", "x", "y", None), title=title))

    async def retitled() -> bool:
        return any(f.title and "onerror" in f.title for f in api.app.store.list_feeds())

    await until(retitled, "the hostile title stored")
    missing = feeds_by_name(api)["Missing"]
    now = datetime.now(UTC)
    api.app.store.record_poll(
        missing.id,
        PollUpdate(
            polled_at=now, state=FeedState.ERROR, status=500, error=HOSTILE_ERROR, next_poll_at=now
        ),
    )
    client = await signed_in(api)
    other = next(f for f in api.app.store.list_feeds() if f.title and "onerror" in f.title)
    for path in ("/feeds", f"/feeds/{other.id}", f"/feeds/{missing.id}"):
        html = (await client.get(path)).text
        assert "<img src=x" not in html and "<script>alert" not in html, path
        assert "\u202e" not in html and "\u0007" not in html, path
    listed = (await client.get("/feeds")).text
    assert "&lt;img src=x onerror=alert(1)&gt;" in listed
    page = (await client.get(f"/feeds/{other.id}")).text
    assert '<h1 class="wrap" id="feed-name">&lt;img src=x onerror=alert(1)&gt;evil' in page
    errors = (await client.get(f"/feeds/{missing.id}")).text
    assert "&lt;script&gt;alert(&#34;err&#34;)&lt;/script&gt; &amp; txt.exe" in errors
