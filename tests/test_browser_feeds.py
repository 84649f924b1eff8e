"""The feeds pages in a real browser, against ``monitor run`` with stored data: sorting by a
column heading, a feed's polls and errors, pausing and resuming with the buttons, hostile
text shown as text, and both widths."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dashboard import DEADLINE, PHONE, Browser, browser, chrome, start_dashboard, wait_until  # noqa: F401
from feedserver import FeedServer
from receivers import WebhookReceiver
from selenium.webdriver.common.by import By
from test_service import rss

from monitor.store import Store
from monitor.store.engine import create_db_engine
from monitor.types import FeedState, PollUpdate

NOW = datetime.now(UTC)
WIRE = [
    ("z1", "CSTO summit opens in Astana", "Leaders of the CSTO met.", NOW),
    ("z2", "Встреча с Токаевым", "ТОКАЕВА встретили в Москве", NOW),
    ("z3", "Weather in Bishkek", "Sunny and cold", NOW),
    ("z4", "Grain exports rise", "Kazakhstan ships more wheat", NOW),
]
HOSTILE_TITLE = "<img src=x onerror=alert(1)> \u202eZeta"
HOSTILE_ERROR = '<img src=x onerror="alert(1)"> upstream said no'


def escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def names_in_order(browser: Browser) -> list[str]:  # noqa: F811
    return [a.text for a in browser.find_all("#feeds-table tbody .feeds-name > a")]


def test_feeds_sort_show_polls_and_pause_with_the_buttons(
    tmp_path: Path,
    sqlite_url: str,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    browser: Browser,  # noqa: F811
) -> None:
    feed_server.set_feed("/zeta.xml", rss(*WIRE, title=escaped(HOSTILE_TITLE)))
    feed_server.set_feed("/calm.xml", rss(("c1", "Quiet day", "Nothing new", NOW), title="Calm"))
    feed_server.set_response("/broken.xml", 500)
    dash = start_dashboard(
        tmp_path,
        sqlite_url,
        feed_server,
        webhook_receiver,
        {"/zeta.xml": "Zeta wire", "/calm.xml": "Calm", "/broken.xml": "Broken"},
        items=len(WIRE) + 1,
    )
    engine = create_db_engine(sqlite_url)
    try:
        browser.sign_in(dash, then="/feeds")
        assert names_in_order(browser) == ["Broken", "Calm", "Zeta wire"]  # failing first
        browser.find("th a[data-sort=items]").click()
        wait_until(lambda: "sort=items" in browser.driver.current_url, "sorted by items")
        assert names_in_order(browser) == ["Zeta wire", "Calm", "Broken"]
        assert browser.find("th[aria-sort=descending] a").get_attribute("data-sort") == "items"
        browser.find("th a[data-sort=items]").click()  # again: the other way
        wait_until(lambda: "dir=asc" in browser.driver.current_url, "sorted the other way")
        assert names_in_order(browser) == ["Broken", "Calm", "Zeta wire"]
        browser.shot("feeds")
        browser.driver.set_window_size(*PHONE)
        assert not browser.overflows_horizontally()

        # A failing feed: its polls say 500, and its errors are listed, hostile text as text.
        store = Store(engine)
        [broken] = [f for f in store.list_feeds() if f.name == "Broken"]
        store.record_poll(
            broken.id,
            PollUpdate(
                polled_at=datetime.now(UTC),
                state=FeedState.ERROR,
                status=502,
                error=HOSTILE_ERROR,
                next_poll_at=datetime.now(UTC),
                ms=12,
            ),
        )
        browser.driver.set_window_size(1280, 900)
        browser.open(dash.url("/feeds"))
        browser.driver.find_element(By.LINK_TEXT, "Broken").click()
        wait_until(lambda: f"/feeds/{broken.id}" in browser.driver.current_url, "Broken's page")
        rows = [
            [c.text for c in row.find_elements(By.CSS_SELECTOR, "td.num")]
            for row in browser.find_all("#feed-polls tbody tr[data-outcome=error]")
        ]
        assert ["502", "12", "0"] in rows  # the poll written above
        assert any(r[0] == "500" and r[1].isdigit() and r[2] == "0" for r in rows)  # real ones
        errors = browser.text("#feed-errors")
        assert HOSTILE_ERROR in errors and "HTTP 500" in errors
        assert not browser.find_all("#feed-errors img, main img")
        browser.shot("feed-failing")

        # A healthy feed: its first poll brought the items; Pause stops polling, Resume
        # polls it again.
        [zeta] = [f for f in store.list_feeds() if f.name == "Zeta wire"]
        browser.open(dash.url(f"/feeds/{zeta.id}"))
        oldest = browser.find_all("#feed-polls tbody tr")[-1]
        assert [c.text for c in oldest.find_elements(By.CSS_SELECTOR, "td.num")][0::2] == [
            "200",
            str(len(WIRE)),
        ]
        assert HOSTILE_TITLE.replace("\u202e", "") in browser.text(".feeds-facts")
        assert not browser.find_all("main img")
        assert len(browser.find_all("#feed-items tbody tr")) == len(WIRE)
        browser.shot("feed")

        browser.find("#feed-pause").click()
        wait_until(lambda: "done=paused" in browser.driver.current_url, "paused")
        assert "Paused" in browser.text(".feeds-done")
        calm = len(feed_server.requests_for("/calm.xml"))
        feed_server.wait_for_requests("/calm.xml", calm + 2, DEADLINE)  # a poll under way ends
        paused = len(feed_server.requests_for("/zeta.xml"))
        feed_server.wait_for_requests("/calm.xml", calm + 5, DEADLINE)
        assert len(feed_server.requests_for("/zeta.xml")) == paused
        browser.shot("feed-paused")

        browser.find("#feed-resume").click()
        wait_until(lambda: "done=resumed" in browser.driver.current_url, "resumed")
        feed_server.wait_for_requests("/zeta.xml", paused + 1, DEADLINE)
        assert browser.find_all("#feed-pause")
    finally:
        engine.dispose()
        dash.stop()
