"""The dashboard in a real browser, against ``monitor run`` with stored data from loopback
feeds: the overview's figures against the store's, problems first; and every page opened at
laptop and at phone width with hostile feed text on it: nothing of the feed runs, the page
never scrolls sideways, no table needs to, and each page's screenshots are saved under the
test's temporary directory (``MONITOR_SCREENSHOTS=dir`` copies them out to look at).
Refusals and read-only mode: ``test_dashboard_refusals.py``.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dashboard import (  # noqa: F401
    LAPTOP,
    PHONE,
    Browser,
    Dashboard,
    browser,
    chrome,
    start_dashboard,
    wait_until,
)
from feedserver import FeedServer
from receivers import Reply, WebhookReceiver
from selenium.webdriver.common.by import By
from test_pages_security import IMG, SCRIPT, hostile_feed
from test_service import rss

from monitor.store import Store
from monitor.store.engine import create_db_engine

NOW = datetime.now(UTC)
SUMMIT = ("w1", "CSTO summit opens in Astana", "Leaders of the CSTO met to discuss security.", NOW)
WIRE = [
    SUMMIT,
    ("w2", "Встреча с Токаевым", "ТОКАЕВА встретили в Москве на высшем уровне", NOW),
    ("w3", "ОДКБ проведёт учения", "Учения ОДКБ пройдут в Казахстане осенью", NOW),
    ("w4", "Weather in Bishkek", "Sunny and cold, with a long tail of words " * 8, NOW),
]
# another outlet carrying the summit word for word: one story of two sources
MIRROR = [("m1", *SUMMIT[1:])]
HOSTILE_NAME = "<script>window.pwned=3</script> Hostile wire"
WATCHLISTS = """
watchlists:
  - name: csto
    terms: [CSTO, ОДКБ]
    notify: [hook]
  - name: tokayev
    query: Токаев
    notify: [hook]
  - name: pwned
    query: pwned
    notify: [{channel: hook, stories: separate}]
  - name: kazakhstan
    query: Kazakhstan OR Казахстан
"""
DISABLED = "HTTP 410 from <b>receiver</b>"
NOTHING_RAN = """
return {
  pwned: typeof window.pwned,
  images: document.images.length,
  scriptLinks: [...document.querySelectorAll("a[href]")]
    .filter(a => a.protocol === "javascript:" || a.protocol === "data:").length,
  inlineScripts: [...document.scripts].filter(s => !s.src).length,
};
"""
SIDEWAYS = """
return [...document.querySelectorAll(".table-wrap")]
  .filter(e => e.scrollWidth > e.clientWidth + 1)
  .map(e => e.querySelector("table")?.className || "table-wrap");
"""


def feeds_by_name(dash: Dashboard) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in dash.api.get("/api/feeds").json()["feeds"]}


def deliveries_in(alerts: list[dict[str, Any]], state: str) -> int:
    return sum(d["state"] == state for a in alerts for d in a["deliveries"])


def assert_nothing_ran(shown: Browser, where: str) -> None:
    found = shown.driver.execute_script(NOTHING_RAN)
    expected = {"pwned": "undefined", "images": 0, "scriptLinks": 0, "inlineScripts": 0}
    assert found == expected, (where, found)
    assert "\u202e" not in shown.text("body"), where


def misfits(shown: Browser) -> list[str]:
    """What scrolls sideways at the window's width: the page, or a table in it."""
    page = ["page"] if shown.overflows_horizontally() else []
    tables: list[str] = shown.driver.execute_script(SIDEWAYS)
    return page + tables


def assert_fits(shown: Browser, where: str) -> None:
    assert misfits(shown) == [], where


def slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "overview"


def test_the_overview_shows_the_stores_figures_with_problems_first(
    tmp_path: Path,
    sqlite_url: str,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    browser: Browser,  # noqa: F811
) -> None:
    feed_server.set_feed("/wire.xml", rss(*WIRE, title="Wire"))
    feed_server.set_feed("/mirror.xml", rss(*MIRROR, title="Mirror"))
    feed_server.set_response("/broken.xml", 500)
    webhook_receiver.script(Reply(status=400))  # the first delivery is given up at once
    dash = start_dashboard(
        tmp_path,
        sqlite_url,
        feed_server,
        webhook_receiver,
        {"/wire.xml": "Wire", "/mirror.xml": "Mirror", "/broken.xml": "Broken"},
        items=len(WIRE) + len(MIRROR),
    )
    engine = create_db_engine(sqlite_url)
    try:
        Store(engine).disable_channel("hook", DISABLED, datetime.now(UTC))
        feeds = [f for f in feeds_by_name(dash).values() if f["active"]]
        states = Counter("paused" if f["paused"] else f["state"] for f in feeds)
        alerts = dash.alerts()
        per_watchlist = Counter(a["watchlist"] for a in alerts)
        assert states == {"ok": 2, "error": 1}
        assert deliveries_in(alerts, "dead") == 1
        assert per_watchlist["csto"] == 3  # the summit twice (one story), the exercise

        browser.sign_in(dash)
        problems = browser.find("section[aria-labelledby=problems]")
        assert problems.location["y"] < browser.find("#card-feeds").location["y"]
        listed = [li.text for li in browser.find_all("ul.problems li")]
        assert any(t.startswith("Broken is failing (") for t in listed), listed
        assert "1 delivery given up (dead)" in listed, listed
        [disabled] = [t for t in listed if t.startswith("Channel hook is disabled since")]
        assert DISABLED in disabled  # the reason, as text
        shown_states = {
            dd.get_attribute("data-state"): int(dd.text)
            for dd in browser.find_all("#card-feeds dd")
        }
        assert shown_states == states
        assert browser.find("#card-feeds .count").text == str(len(feeds))
        for state in ("pending", "failed", "dead"):
            shown = browser.find(f'#card-deliveries dd[data-state="{state}"]').text
            assert int(shown) == deliveries_in(alerts, state), state
        rows = {
            row.find_element(By.CSS_SELECTOR, "th").text: int(
                row.find_element(By.CSS_SELECTOR, "td.num").text
            )
            for row in browser.find_all("table.chart tbody tr")
        }
        assert rows == {n: per_watchlist[n] for n in ("csto", "tokayev", "kazakhstan")}
        today = browser.find('svg[aria-label^="csto:"] rect.bar title')
        assert today.get_attribute("textContent") == f"{NOW.date().isoformat()}: 3"
        service = browser.text("#card-service")
        assert re.search(r"last poll\n\d+ (s|min) ago", service), service
        assert re.fullmatch(r"\d+\.\d s", browser.text("#tick-lag"))
        browser.driver.set_window_size(*PHONE)
        assert_fits(browser, "/")
        browser.shot("overview-problems")

        browser.driver.find_element(By.PARTIAL_LINK_TEXT, "given up (dead)").click()
        wait_until(lambda: "state=dead" in browser.driver.current_url, "the dead alerts")
        [dead] = dash.alerts(state="dead")
        assert [c.get_attribute("data-alert") for c in browser.find_all("li.alerts-alert")] == [
            dead["id"]
        ]
    finally:
        engine.dispose()
        dash.stop()


def test_every_page_fits_a_laptop_and_a_phone_and_runs_no_feed_text(
    tmp_path: Path,
    sqlite_url: str,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    browser: Browser,  # noqa: F811
) -> None:
    feed_server.set_feed("/wire.xml", rss(*WIRE, title="Wire"))
    feed_server.set_feed("/mirror.xml", rss(*MIRROR, title="Mirror"))
    feed_server.set_feed("/hostile.xml", hostile_feed())
    feed_server.set_response("/broken.xml", 500)
    webhook_receiver.script(Reply(status=400))
    dash = start_dashboard(
        tmp_path,
        sqlite_url,
        feed_server,
        webhook_receiver,
        {
            "/wire.xml": "Wire",
            "/mirror.xml": "Mirror",
            "/hostile.xml": HOSTILE_NAME,
            "/broken.xml": "Broken",
        },
        watchlists=WATCHLISTS,
        items=len(WIRE) + len(MIRROR) + 2,
    )
    try:
        feeds = feeds_by_name(dash)
        pages = [
            "/",
            "/feeds",
            *(f"/feeds/{feeds[name]['id']}" for name in ("Wire", HOSTILE_NAME, "Broken")),
            "/alerts",
            "/alerts?state=dead",
            "/alerts?q=pwned",
            "/watchlists",
            "/watchlists/csto",
            "/watchlists/csto?q=CSTO+AND+%28",
            "/watchlists/csto?q=CSTO+OR+Bishkek&days=30",
            "/watchlists/pwned",
            "/watchlists/new?q=pwned+OR+Astana",
            "/items",
            "/items?q=pwned",
            "/items?q=Astana+AND",
            "/feeds/999999",
        ]
        browser.sign_in(dash)
        browser.driver.get_log("browser")  # drop what came before
        untidy = {}
        for page in pages:
            browser.driver.set_window_size(*LAPTOP)
            browser.open(dash.url(page))
            assert browser.driver.current_url == dash.url(page), page
            assert_nothing_ran(browser, page)
            for label, size in (("laptop", LAPTOP), ("phone", PHONE)):
                browser.driver.set_window_size(*size)
                if found := misfits(browser):
                    untidy[f"{page} at {label} width"] = found
            browser.shot(slug(page))
        assert untidy == {}
        refused = [
            entry["message"]
            for entry in browser.driver.get_log("browser")
            if "Content Security Policy" in entry["message"]
        ]
        assert refused == []

        # The hostile items as the tester lists them: text, the match marked.
        browser.open(dash.url("/watchlists/pwned"))
        matched = browser.text("#wl-matched")
        assert f"{SCRIPT} pwned title" in matched and f"{IMG} pwned image" in matched
        assert {m.text.casefold() for m in browser.find_all("#wl-matched mark")} == {"pwned"}
        assert "hook (stories: separate)" in browser.text(".wl-detail")
        assert "  - channel: hook\n    stories: separate\n" in browser.find(
            "#wl-yaml"
        ).get_attribute("textContent")

        # The summit from two outlets is one story: its first alert lists both sources,
        # the second is attached to it; an alert alone in its story says nothing of it.
        browser.open(dash.url("/alerts?watchlist=csto"))
        stories = {
            e.get_attribute("data-role"): e for e in browser.find_all(".alerts-story[data-story]")
        }
        assert set(stories) == {"lead", "member"}
        assert stories["lead"].get_attribute("data-sources") == "2"
        sources = stories["lead"].find_elements(By.CSS_SELECTOR, ".alerts-source-feed")
        assert {s.text for s in sources} == {"Wire", "Mirror"}
        assert "Attached" in stories["member"].text
        cards = browser.find_all("li.alerts-alert")
        assert len(cards) == 3
        [alone] = [c for c in cards if "учения" in c.text]
        assert not alone.find_elements(By.CSS_SELECTOR, ".alerts-story")

        # The tester counts per day in words as well as bars.
        browser.open(dash.url("/watchlists/csto?q=CSTO+OR+Bishkek"))
        [this, current] = browser.find_all(".wl-chart .wl-per-day")
        today = NOW.strftime("%d %b")
        assert (this.text, current.text) == (f"3 on {today}", f"3 on {today}")

        browser.find("form.inline button.link").click()  # sign out
        wait_until(lambda: "/login" in browser.driver.current_url, "signed out")
        assert_fits(browser, "/login")
        browser.shot("login")
    finally:
        dash.stop()
