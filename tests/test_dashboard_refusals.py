"""Refusals in a real browser, against ``monitor run`` with stored data: a request without
the sign-in, the API token or the form's CSRF value (changed, missing, or sent by a page of
another origin on the same host, which a SameSite=Lax cookie does not stop) is refused and
queues nothing; without any credential the dashboard is read-only, says so on every page,
offers no action and refuses a form made up in the page.
"""

from __future__ import annotations

from pathlib import Path

from dashboard import (  # noqa: F401
    PHONE,
    TOKEN,
    Browser,
    browser,
    chrome,
    start_dashboard,
    wait_until,
)
from feedserver import FeedServer
from receivers import Reply, WebhookReceiver
from test_dashboard_browser import WIRE, assert_fits, feeds_by_name
from test_service import rss

STATUSES = """
const done = arguments[arguments.length - 1];
Promise.all(arguments[0].map(
  headers => fetch("/api/alerts", {headers, credentials: "same-origin"}).then(r => r.status)
)).then(done);
"""


def attack_page(action: str) -> bytes:
    """A page of another origin on the same host (same site: a SameSite=Lax cookie goes
    along) whose button posts to the dashboard, with a CSRF value it had to guess."""
    return (
        "<!doctype html><title>win a prize</title>"
        f'<form method="post" action="{action}">'
        '<input type="hidden" name="csrf" value="guessed">'
        '<input type="hidden" name="back" value="/alerts">'
        '<button id="go" type="submit">Claim</button></form>'
    ).encode()


def test_requests_without_the_sign_in_the_token_or_the_csrf_value_are_refused(
    tmp_path: Path,
    sqlite_url: str,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    browser: Browser,  # noqa: F811
) -> None:
    feed_server.set_feed("/wire.xml", rss(*WIRE, title="Wire"))
    webhook_receiver.script(Reply(status=400))
    dash = start_dashboard(
        tmp_path, sqlite_url, feed_server, webhook_receiver, {"/wire.xml": "Wire"}, items=4
    )
    try:
        [dead] = dash.alerts(state="dead")
        retry = f"/alerts/{dead['id']}/retry"
        feed_id = feeds_by_name(dash)["Wire"]["id"]

        # A stranger: every page sends them to sign in; the API wants the token.
        for page in ("/", "/feeds", f"/feeds/{feed_id}", "/alerts", "/watchlists/csto", "/items"):
            browser.open(dash.url(page))
            assert browser.driver.current_url.startswith(dash.url("/login?next=")), page
        token = {"Authorization": f"Bearer {TOKEN}"}
        assert browser.driver.execute_async_script(STATUSES, [{}, token]) == [401, 200]

        # Signed in: the session cookie is no API token.
        browser.sign_in(dash, then="/alerts?state=dead")
        assert browser.driver.execute_async_script(STATUSES, [{}]) == [401]

        # Our own Retry form with its CSRF value changed, then without one.
        for name, tamper in (("forged", "input.value = 'forged'"), ("missing", "input.remove()")):
            browser.open(dash.url("/alerts?state=dead"))
            browser.driver.execute_script(
                f"const input = document.querySelector('form.alerts-retry [name=csrf]'); {tamper}"
            )
            browser.find("form.alerts-retry button").click()
            wait_until(lambda: browser.find_all("h1") and browser.text("h1") == "403", "403")
            assert "did not come from this dashboard" in browser.text(), tamper
            browser.shot(f"refused-csrf-{name}")

        # A page of another origin whose form posts to the dashboard: refused.
        feed_server.set_response(
            "/prize.html",
            200,
            attack_page(dash.url(retry)),
            {"Content-Type": "text/html; charset=utf-8"},
        )
        browser.open(feed_server.url("/prize.html"))
        browser.find("#go").click()
        wait_until(lambda: browser.driver.current_url == dash.url(retry), "the dashboard")
        assert browser.text("h1") == "403"
        assert "came from another site" in browser.text()
        browser.shot("refused-origin")

        # Nothing was queued: still given up, the receiver asked once.
        [still] = dash.alerts(state="dead")
        assert still["id"] == dead["id"]
        asked = [r for r in webhook_receiver.requests if r.json()["id"] == dead["id"]]
        assert [r.status for r in asked] == [400]

        # The same button, untouched, is taken.
        browser.open(dash.url("/alerts?state=dead"))
        browser.find("form.alerts-retry button").click()
        wait_until(lambda: "queued to be sent again" in browser.text(), "the retry taken")
    finally:
        dash.stop()


def test_a_dashboard_without_a_credential_is_read_only_and_says_so(
    tmp_path: Path,
    sqlite_url: str,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    browser: Browser,  # noqa: F811
) -> None:
    feed_server.set_feed("/wire.xml", rss(*WIRE, title="Wire"))
    webhook_receiver.script(Reply(status=400))
    dash = start_dashboard(
        tmp_path,
        sqlite_url,
        feed_server,
        webhook_receiver,
        {"/wire.xml": "Wire"},
        password=None,
        token=None,
    )
    try:

        def dead_shown() -> bool:
            browser.open(dash.url("/alerts?state=dead"))
            return bool(browser.find_all("li.alerts-alert"))

        wait_until(dead_shown, "the dead delivery shown")
        pages = ["/", "/feeds", "/alerts?state=dead", "/watchlists", "/items"]
        for page in pages:
            browser.open(dash.url(page))
            assert browser.driver.current_url == dash.url(page), page  # no sign-in asked
            assert "Read-only: no http.password or http.token" in browser.text("body"), page
            assert browser.text(".who") == "read-only"
            assert not browser.find_all("form[method=post]"), page  # no Retry, no Sign out
        browser.driver.set_window_size(*PHONE)
        assert_fits(browser, "/items")
        browser.shot("read-only")

        browser.open(dash.url("/feeds"))
        browser.find("#feeds-table tbody .feeds-name > a").click()
        wait_until(lambda: "/feeds/" in browser.driver.current_url, "the feed's page")
        assert not browser.find_all("#feed-pause, #feed-resume")
        browser.open(dash.url("/login"))
        assert browser.driver.current_url == dash.url("/")  # nothing to sign in with

        # A form made up in the page is refused all the same.
        browser.open(dash.url("/alerts?state=dead"))
        alert = browser.find("li.alerts-alert").get_attribute("data-alert")
        browser.driver.execute_script(
            "const f = document.createElement('form'); f.method = 'post';"
            "f.action = arguments[0]; document.body.append(f); f.submit();",
            f"/alerts/{alert}/retry",
        )
        wait_until(lambda: browser.find_all("h1") and browser.text("h1") == "403", "refused")
        assert "This dashboard is read-only" in browser.text()
    finally:
        dash.stop()
