"""The dashboard's overview page, on SQLite and PostgreSQL, over a real socket.

The service runs in-process with the JSON API's test data (tests/test_api.py): two feeds
that answer and one that does not, alerts of three watchlists, every delivery sent.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

import httpx
from feedserver import FeedServer
from pages import sign_in
from receivers import WebhookReceiver
from test_api import NOW, TOKEN, WIRE, Running, all_alerts, api, until  # noqa: F401
from test_service import rss


async def signed_in(api: Running) -> httpx.AsyncClient:  # noqa: F811
    """The anonymous client, signed in to the dashboard with the token."""
    await sign_in(api.anon, TOKEN)
    return api.anon


def card_value(html: str, card: str, state: str) -> int:
    section = html[html.index(f'id="card-{card}"') :]
    found = re.search(rf'data-state="{state}">(\d+)<', section)
    assert found, f"no {state} in the {card} card"
    return int(found[1])


async def test_the_overview_counts_feeds_deliveries_and_alerts_per_watchlist(
    api: Running,  # noqa: F811
) -> None:
    client = await signed_in(api)
    page = await client.get("/")
    assert page.status_code == 200
    html = page.text
    assert card_value(html, "feeds", "ok") == 2
    assert card_value(html, "feeds", "error") == 1
    for state in ("pending", "failed", "dead"):
        assert card_value(html, "deliveries", state) == 0
    per_watchlist = Counter(a["watchlist"] for a in await all_alerts(api))
    for name, count in per_watchlist.items():
        row = re.search(rf'aria-label="{re.escape(name)}: (\d+) alerts"', html)
        assert row and int(row[1]) == count, name
    assert 'aria-label="asia-only: 0 alerts"' in html  # configured, nothing yet: shown


async def test_problems_come_first_and_name_what_is_wrong(api: Running) -> None:  # noqa: F811
    api.app.store.disable_channel("hook", "HTTP 410 from <b>receiver</b>", datetime.now(UTC))
    client = await signed_in(api)
    try:
        html = (await client.get("/")).text
    finally:
        api.app.store.enable_channel("hook")
    problems = html.index('id="problems"')
    assert problems < html.index('id="card-feeds"') < html.index('id="volume"')
    listed = html[problems : html.index('id="card-feeds"')]
    assert "Missing is failing" in listed
    assert re.search(r'href="/feeds/\d+">Missing is failing', listed)
    assert "Channel hook is disabled since" in listed
    assert "HTTP 410 from &lt;b&gt;receiver&lt;/b&gt;" in listed
    assert "No problems" not in listed


async def test_a_dead_delivery_is_a_problem_linking_to_its_alerts(
    api: Running,  # noqa: F811
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_receiver.script(400)  # permanent: the next delivery is given up at once
    feed_server.set_feed("/wire.xml", rss(*WIRE, ("d1", "CSTO statement", "", NOW), title="W"))

    async def one_dead() -> bool:
        return len(await all_alerts(api, state="dead")) == 1

    await until(one_dead, "a dead delivery")
    html = (await (await signed_in(api)).get("/")).text
    assert card_value(html, "deliveries", "dead") == 1
    assert '<a href="/alerts?state=dead">1 delivery given up (dead)</a>' in html
