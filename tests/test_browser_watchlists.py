"""The watchlists pages and the query tester in a real browser, against ``monitor run``:
with JavaScript the results follow the typing (no submit); without it, the Test button
gives the same page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dashboard import (  # noqa: F401
    Browser,
    Dashboard,
    browser,
    chrome,
    start_chromium,
    start_dashboard,
    wait_until,
)
from feedserver import FeedServer
from receivers import WebhookReceiver
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from test_service import rss

NOW = datetime.now(UTC)
WIRE = [
    ("w1", "CSTO summit opens in Astana", "Leaders of the CSTO met in Astana.", NOW),
    ("w2", "Встреча с Токаевым", "ТОКАЕВА встретили в Москве", NOW),
    ("w3", "ОДКБ проведёт учения", "Учения ОДКБ пройдут в Казахстане", NOW),
    ("w4", "Weather in Bishkek", "Sunny and cold in Bishkek", NOW),
]
BROKEN = "CSTO AND ("
GOOD = "CSTO OR Bishkek"


@pytest.fixture(scope="module")
def chrome_without_js() -> Iterator[WebDriver]:
    """A second Chromium with JavaScript switched off, for this module only."""
    driver = start_chromium(javascript=False)
    yield driver
    driver.quit()


@pytest.fixture
def dash(
    tmp_path: Path, sqlite_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> Iterator[Dashboard]:
    feed_server.set_feed("/wire.xml", rss(*WIRE, title="Wire"))
    dashboard = start_dashboard(
        tmp_path, sqlite_url, feed_server, webhook_receiver, {"/wire.xml": "Wire"}, items=4
    )
    yield dashboard
    dashboard.stop()


def showing(browser: Browser, css: str, query: str) -> WebElement | None:  # noqa: F811
    """The results part ``css`` once it answers ``query`` (typing may show a part for an
    earlier prefix first, which the next answer replaces)."""
    found = browser.find_all(css)
    if found and found[0].get_attribute("data-query") == query:
        return found[0]
    return None


def matched_titles(page: Browser) -> set[str]:
    return {e.text for e in page.find_all("#wl-matched .wl-item-title a")}


def test_the_tester_answers_as_you_type(
    dash: Dashboard,
    browser: Browser,  # noqa: F811
) -> None:
    browser.sign_in(dash)
    browser.open(dash.url("/watchlists"))
    assert "terms: CSTO ОДКБ" in browser.text("tr[data-watchlist=csto]")
    assert not browser.overflows_horizontally()
    browser.shot("watchlists")

    browser.open(dash.url("/watchlists/csto"))
    driver = browser.driver
    driver.execute_script("window.stayed = true")  # gone if the page were reloaded
    field = browser.find("#wl-q")
    field.clear()
    field.send_keys(BROKEN)
    problem = wait_until(lambda: showing(browser, "#wl-problem", BROKEN), "the parse error")
    assert problem.get_attribute("data-position") == "10"
    assert "expected a term before end of query" in problem.text
    assert browser.find("#wl-problem mark.wl-at").location["x"] > 0
    assert driver.execute_script("return window.stayed") is True
    assert "q=CSTO+AND+%28" in driver.current_url  # a reload keeps the query
    browser.shot("watchlist-tester-error")

    field.clear()
    field.send_keys(GOOD)
    wait_until(lambda: showing(browser, "#wl-summary", GOOD), "the matches shown")
    assert matched_titles(browser) == {"CSTO summit opens in Astana", "Weather in Bishkek"}
    assert [e.text for e in browser.find_all("#wl-new .wl-item-title a")] == ["Weather in Bishkek"]
    assert [e.text for e in browser.find_all("#wl-lost .wl-item-title a")] == [
        "ОДКБ проведёт учения"
    ]
    marks = {e.text for e in browser.find_all("#wl-matched mark")}
    assert marks == {"CSTO", "Bishkek"}
    assert driver.execute_script("return window.stayed") is True
    assert not browser.overflows_horizontally()
    browser.shot("watchlist-tester")

    driver.refresh()
    assert browser.find("#wl-q").get_attribute("value") == GOOD
    assert matched_titles(browser) == {"CSTO summit opens in Astana", "Weather in Bishkek"}


def test_the_tester_works_without_javascript(
    dash: Dashboard, chrome_without_js: WebDriver, tmp_path: Path
) -> None:
    shots = tmp_path / "shots-nojs"
    shots.mkdir()
    browser = Browser(chrome_without_js, shots)  # noqa: F811
    browser.open("data:text/html,<title>off</title><script>document.title='on'</script>")
    assert browser.driver.title == "off"  # this browser runs no page script
    browser.sign_in(dash)
    browser.open(dash.url("/watchlists/csto"))
    for query, check in (
        (BROKEN, lambda: browser.find("#wl-problem").get_attribute("data-position") == "10"),
        (
            GOOD,
            lambda: (
                matched_titles(browser) == {"CSTO summit opens in Astana", "Weather in Bishkek"}
            ),
        ),
    ):
        field = browser.find("#wl-q")
        field.clear()
        field.send_keys(query)
        browser.find("#wl-form button[type=submit]").click()
        # The typed query is in the field before the answer loads too: wait for the answer.
        wait_until(check, f"the tester's answer to {query!r}")
        assert browser.find("#wl-q").get_attribute("value") == query
    browser.shot("watchlist-tester-nojs")
