"""The alerts page in a real browser, against ``monitor run`` with stored data: Retry sends
a delivery that was given up again, and the page shows it sent."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from pathlib import Path

from dashboard import PHONE, Browser, Dashboard, browser, chrome, start_dashboard, wait_until  # noqa: F401
from feedserver import FeedServer
from receivers import Reply, WebhookReceiver
from selenium.webdriver.common.by import By
from test_service import rss

NOW = datetime.now(UTC)
WIRE = [
    ("w1", "CSTO summit opens in Astana", "Leaders of the CSTO met.", NOW),
    ("w2", "Встреча с Токаевым", "ТОКАЕВА встретили в Москве", NOW),
    ("w3", "Weather in Bishkek", "Sunny and cold", NOW),
]
LONG = (
    "l1",
    "Тоқаев: ОДКБ и CSTO partners agree on a long list of measures for the region",
    "Президент Тоқаев выступил на саммите ОДКБ в Астане и заявил, что страны-участницы "
    "согласовали план совместных учений на следующий год. "
    + "Подробности опубликованы на сайте организации: "
    + "https://example.org/odkb/press/2026/statements/full-text-of-the-declaration-"
    "signed-by-the-heads-of-state-in-astana-with-annexes "
    + "The CSTO secretary general said the partners would meet again in the autumn "
    "to review the progress of the joint exercises and the new rapid reaction force.",
    NOW,
)


def add_channel(dash: Dashboard, config: Path, receiver: WebhookReceiver) -> None:
    """A second channel every watchlist notifies (several deliveries per alert), applied
    by a reload as an operator would."""
    text = config.read_text(encoding="utf-8").replace("notify: [hook]", "notify: [hook, archive]")
    text += f"  - name: archive\n    type: webhook\n    url: {receiver.url}\n"
    config.write_text(text, encoding="utf-8")
    dash.process.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in dash.log(), "the configuration reloaded")


def test_retry_turns_a_dead_delivery_into_a_sent_one_at_the_receiver(
    tmp_path: Path,
    sqlite_url: str,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    browser: Browser,  # noqa: F811
) -> None:
    feed_server.set_feed("/wire.xml", rss(*WIRE, title="Wire"))
    archive = WebhookReceiver()
    archive.start()
    dash = start_dashboard(
        tmp_path, sqlite_url, feed_server, webhook_receiver, {"/wire.xml": "Wire"}, items=len(WIRE)
    )
    try:
        add_channel(dash, tmp_path / "monitor.yaml", archive)
        # the next webhook delivery is refused for good: dead at once
        webhook_receiver.script(Reply(status=400, body=b"<b>refused</b> by policy"))
        feed_server.set_feed("/wire.xml", rss(*WIRE, LONG, title="Wire"))
        [dead] = wait_until(lambda: dash.alerts(state="dead"), "a dead delivery")
        wait_until(dash.settled, "the other deliveries settled")
        card_css = f'li[data-alert="{dead["id"]}"]'
        hook_css = f'{card_css} .alerts-delivery[data-channel="hook"]'

        browser.sign_in(dash, then="/alerts")
        browser.open(dash.url("/alerts"))
        assert browser.find(hook_css).get_attribute("data-state") == "dead"
        assert "<b>refused</b> by policy" in browser.text(hook_css)  # shown as text
        browser.shot("alerts-dead")
        browser.driver.set_window_size(*PHONE)
        assert not browser.overflows_horizontally()

        browser.find(card_css).find_element(By.CSS_SELECTOR, "form.alerts-retry button").click()
        wait_until(lambda: "queued to be sent again" in browser.text(), "the confirmation")
        browser.shot("alerts-confirmed")

        def delivered() -> bool:
            answers = [r.status for r in webhook_receiver.requests if r.json()["id"] == dead["id"]]
            return answers == [400, 200]

        wait_until(delivered, "the retried delivery received")

        def shown_sent() -> bool:  # the receiver answers before the outcome is written
            browser.open(dash.url("/alerts"))
            return browser.find(hook_css).get_attribute("data-state") == "sent"

        wait_until(shown_sent, "the page showing the delivery sent")
        assert not browser.find(card_css).find_elements(By.CSS_SELECTOR, "form.alerts-retry")
        browser.shot("alerts-retried")
    finally:
        dash.stop()
        archive.stop()
