"""The overview page in a real browser, against ``monitor run`` with stored data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dashboard import Browser, browser, chrome, start_dashboard  # noqa: F401
from feedserver import FeedServer
from receivers import WebhookReceiver
from test_service import rss

NOW = datetime.now(UTC)
WIRE = [
    ("w1", "CSTO summit opens in Astana", "Leaders of the CSTO met.", NOW),
    ("w2", "Встреча с Токаевым", "ТОКАЕВА встретили в Москве", NOW),
    ("w3", "ОДКБ проведёт учения", "Учения ОДКБ пройдут в Казахстане", NOW),
    ("w4", "Weather in Bishkek", "Sunny and cold", NOW),
]


def test_overview_shows_counts_and_problems_first(
    tmp_path: Path,
    sqlite_url: str,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    browser: Browser,  # noqa: F811
) -> None:
    feed_server.set_feed("/wire.xml", rss(*WIRE, title="Wire"))
    feed_server.set_response("/broken.xml", 500)
    dash = start_dashboard(
        tmp_path,
        sqlite_url,
        feed_server,
        webhook_receiver,
        {"/wire.xml": "Wire", "/broken.xml": "Broken"},
        items=len(WIRE),
    )
    try:
        browser.sign_in(dash)
        browser.open(dash.url("/"))
        problems = browser.text("section[aria-labelledby=problems]")
        assert "Broken is failing" in problems
        assert browser.find("#card-feeds dd[data-state=ok]").text == "1"
        assert browser.find("#card-feeds dd[data-state=error]").text == "1"
        browser.shot("overview")
    finally:
        dash.stop()
