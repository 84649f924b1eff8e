"""Hostile feed text and the sign-in in a real browser, against ``monitor run``.

A feed whose titles, summaries, links and name carry scripts, ``<img onerror>``,
``javascript:`` links and bidi overrides is stored and alerted on; every page that shows
it is opened in Chromium, which must show the text as text and run none of it. The
session cookie must be out of reach of the page's scripts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dashboard import Browser, Dashboard, browser, chrome, start_dashboard  # noqa: F401
from feedserver import FeedServer
from receivers import WebhookReceiver
from selenium.webdriver.common.by import By
from test_pages_security import IMG, SCRIPT, hostile_feed
from test_service import rss

NOW = datetime.now(UTC)
WIRE = [
    ("w1", "CSTO summit opens in Astana", "Leaders of the CSTO met to discuss security.", NOW),
    ("w2", "Встреча с Токаевым", "ТОКАЕВА встретили в Москве на высшем уровне", NOW),
    ("w3", "ОДКБ проведёт учения", "Учения ОДКБ пройдут в Казахстане осенью", NOW),
    ("w4", "Weather in Bishkek", "Sunny and cold, with a long tail of words " * 8, NOW),
]
NAME = "<script>window.pwned=3</script> Hostile wire"
WATCHLISTS = """
watchlists:
  - name: pwned
    query: pwned
    notify: [{channel: hook, stories: separate}]  # the hostile items are one story
  - name: csto
    terms: [CSTO, ОДКБ]
    notify: [hook]
"""
NOTHING_RAN = """
return {
  pwned: typeof window.pwned,
  images: document.images.length,
  scriptLinks: [...document.querySelectorAll("a[href]")]
    .filter(a => a.protocol === "javascript:" || a.protocol === "data:").length,
  inlineScripts: [...document.scripts].filter(s => !s.src).length,
};
"""


def start(
    tmp_path: Path, sqlite_url: str, feed_server: FeedServer, hook: WebhookReceiver
) -> Dashboard:
    feed_server.set_feed("/wire.xml", rss(*WIRE, title="Wire"))
    feed_server.set_feed("/hostile.xml", hostile_feed())
    return start_dashboard(
        tmp_path,
        sqlite_url,
        feed_server,
        hook,
        {"/wire.xml": "Wire", "/hostile.xml": NAME},
        watchlists=WATCHLISTS,
        items=len(WIRE) + 2,
    )


def assert_nothing_ran(shown: Browser, where: str) -> None:
    found = shown.driver.execute_script(NOTHING_RAN)
    assert found == {"pwned": "undefined", "images": 0, "scriptLinks": 0, "inlineScripts": 0}, (
        where,
        found,
    )
    assert "\u202e" not in shown.text("body"), where


def pages_showing_feed_text(dash: Dashboard) -> list[str]:
    """The overview, the items search, and the alerts and feeds pages where they exist."""
    feeds = dash.api.get("/api/feeds").json()["feeds"]
    [hostile] = [f for f in feeds if f["name"] == NAME]
    pages = ["/", "/items", "/items?q=pwned", "/alerts", "/feeds", f"/feeds/{hostile['id']}"]
    return [p for p in pages if dash.api.get(p, follow_redirects=False).status_code != 404]


def test_hostile_feed_text_is_shown_as_text_and_runs_nothing(
    tmp_path: Path,
    sqlite_url: str,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    browser: Browser,  # noqa: F811
) -> None:
    dash = start(tmp_path, sqlite_url, feed_server, webhook_receiver)
    try:
        browser.sign_in(dash)
        browser.driver.get_log("browser")  # drop what came before
        for page in pages_showing_feed_text(dash):
            browser.open(dash.url(page))
            assert_nothing_ran(browser, page)
            if page.startswith("/items"):
                main = browser.text()
                assert f"{SCRIPT} pwned title" in main and f"{IMG} pwned image" in main
                assert NAME in main
                # the item whose link was javascript: is text, not a link
                [title] = [h for h in browser.find_all("h2.items-title") if "pwned title" in h.text]
                assert title.find_elements(By.CSS_SELECTOR, "a") == []
        refused = [
            entry["message"]
            for entry in browser.driver.get_log("browser")
            if "Content Security Policy" in entry["message"]
        ]
        assert refused == []  # nothing of ours broke the policy, nothing of theirs tried

        browser.open(dash.url("/items"))
        browser.shot("items")
        browser.open(dash.url("/items?q=Токаев+OR+ОДКБ+OR+CSTO"))
        assert "<mark>" not in browser.text() and browser.find_all("mark")
        browser.shot("items-search")
        assert not browser.overflows_horizontally()
        browser.open(dash.url("/items?q=Astana+AND"))
        assert "error at position 10" in browser.text()
        browser.shot("items-error")
    finally:
        dash.stop()


def test_the_session_cookie_is_out_of_reach_of_scripts(
    tmp_path: Path,
    sqlite_url: str,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    browser: Browser,  # noqa: F811
) -> None:
    feed_server.set_feed("/wire.xml", rss(*WIRE, title="Wire"))
    dash = start_dashboard(
        tmp_path, sqlite_url, feed_server, webhook_receiver, {"/wire.xml": "Wire"}
    )
    try:
        browser.open(dash.url("/items"))
        assert "/login" in browser.driver.current_url  # a stranger is sent to sign in
        browser.sign_in(dash, then="/items")
        assert browser.driver.current_url == dash.url("/items")
        [cookie] = [c for c in browser.driver.get_cookies() if c["name"] == "monitor_session"]
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
        assert cookie["path"] == "/"
        assert "monitor_session" not in browser.driver.execute_script("return document.cookie")
    finally:
        dash.stop()
