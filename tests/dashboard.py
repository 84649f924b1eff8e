"""The dashboard's browser tests' harness: a real ``monitor run`` and a real browser.

:func:`start_dashboard` writes a configuration for the loopback feed server and webhook
receiver, starts ``monitor run`` as a separate process (so a blocking browser call never
stalls the feeds it polls), reads the port it bound from its log, and waits until every
feed has been polled and every delivery settled. The ``browser`` fixture is Debian's
headless Chromium driven by Selenium (one browser per test session, cookies cleared for
each test); :meth:`Browser.shot` saves a screenshot at laptop and at phone width under the
test's temporary directory (and into ``$MONITOR_SCREENSHOTS`` when set, to look at).

Import the fixtures into a test module: ``from dashboard import browser, chrome  # noqa``.
``make test`` installs Chromium and its driver (``scripts/ensure-browser.sh``); without
them these tests fail saying so rather than skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from feedserver import FeedServer
from receivers import WebhookReceiver
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("MONITOR_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MONITOR_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
PASSWORD = "dashboard password 0123"
TOKEN = "dashboard-token-0123456789abcdef"
DEADLINE = 30.0
LAPTOP = (1280, 900)
PHONE = (390, 844)

WATCHLISTS = """
watchlists:
  - name: csto
    terms: [CSTO, ОДКБ]
    notify: [hook]
  - name: tokayev
    query: Токаев
    notify: [hook]
  - name: kazakhstan
    query: Kazakhstan OR Казахстан
"""


def wait_until(check: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    """Poll ``check`` until it returns something truthy, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except (StaleElementReferenceException, NoSuchElementException):
            value = None  # the page replaced it meanwhile, or the next is still loading
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.1)


@dataclass
class Dashboard:
    """A running ``monitor run``: ``base`` its address, ``api`` a client with the token."""

    base: str
    process: subprocess.Popen[str]
    log_path: Path
    api: httpx.Client
    password: str | None
    lines: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alerts(self, **params: str) -> list[dict[str, Any]]:
        response = self.api.get("/api/alerts", params={"limit": "500", **params})
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()["alerts"]
        return alerts

    def settled(self) -> bool:
        """No delivery pending: each was sent, failed or given up."""
        return not self.alerts(state="pending")

    def stop(self) -> None:
        self.api.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_dashboard(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    receiver: WebhookReceiver,
    feeds: dict[str, str],
    *,
    watchlists: str = WATCHLISTS,
    password: str | None = PASSWORD,
    token: str | None = TOKEN,
    items: int | None = None,
) -> Dashboard:
    """``monitor run`` over ``feeds`` ({path on the feed server: name}, each already set
    on the server) with ``watchlists`` notifying the channel ``hook`` (the receiver,
    retried once at once, then given up). Returns once ``items`` items are stored (when
    given), every feed polled and no delivery pending."""
    listed = "".join(
        f"  - url: {feed_server.url(path)}\n    name: {name}\n" for path, name in feeds.items()
    )
    http = ['listen: "127.0.0.1:0"']
    if password:
        http.append(f'password: "{password}"')
    if token:
        http.append(f'token: "{token}"')
    config = tmp_path / "monitor.yaml"
    config.write_text(
        f"""
database: {db_url}
service: {{tick: 0.2s}}
defaults: {{interval: 2s, backlog: all}}
polling: {{parse_workers: 0, jitter: 0}}
http: {{{", ".join(http)}}}
feeds:
{listed}{watchlists}
channels:
  - name: hook
    type: webhook
    url: {receiver.url}
    retry: [0s]
""",
        encoding="utf-8",
    )
    log_path = tmp_path / "monitor.log"
    with log_path.open("w", encoding="utf-8") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )

    def listening() -> str | None:
        if process.poll() is not None:
            raise AssertionError(f"monitor run exited:\n{log_path.read_text()}")
        found = re.search(r"http: listening on (127\.0\.0\.1:\d+)", log_path.read_text())
        return found[1] if found else None

    address = wait_until(listening, "monitor run listening")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = f"http://{address}"
    dashboard = Dashboard(
        base=base,
        process=process,
        log_path=log_path,
        api=httpx.Client(base_url=base, headers=headers, timeout=10),
        password=password,
    )
    try:
        if token:

            def ready() -> bool:
                listed = dashboard.api.get("/api/feeds").json()["feeds"]
                polled = all(f["last_polled_at"] for f in listed) and len(listed) == len(feeds)
                stored = items is None or sum(f["items"] for f in listed) >= items
                return polled and stored and dashboard.settled()

            wait_until(ready, "every feed polled, items stored, deliveries settled")
    except BaseException:
        dashboard.stop()
        raise
    return dashboard


class Browser:
    """One test's use of the session's Chromium."""

    def __init__(self, driver: WebDriver, shots: Path) -> None:
        self.driver = driver
        self.shots = shots

    def open(self, url: str) -> None:
        self.driver.get(url)

    def sign_in(self, dashboard: Dashboard, then: str = "/") -> None:
        assert dashboard.password
        self.open(dashboard.url(f"/login?next={then}"))
        self.find("#password").send_keys(dashboard.password)
        self.find("form[action='/login'] button[type=submit]").click()
        wait_until(lambda: "/login" not in self.driver.current_url, "signed in")

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str = "main") -> str:
        return self.find(css).text

    def shot(self, name: str) -> list[Path]:
        """Screenshots of the whole page at laptop and at phone width."""
        saved = []
        for label, (width, height) in (("laptop", LAPTOP), ("phone", PHONE)):
            self.driver.set_window_size(width, height)
            full = self.driver.execute_script("return document.documentElement.scrollHeight")
            self.driver.set_window_size(width, min(max(height, int(full) + 140), 4000))
            path = self.shots / f"{name}-{label}.png"
            assert self.driver.save_screenshot(str(path)), path
            saved.append(path)
            if keep := os.environ.get("MONITOR_SCREENSHOTS"):
                Path(keep).mkdir(parents=True, exist_ok=True)
                shutil.copy(path, Path(keep) / path.name)
        self.driver.set_window_size(*LAPTOP)
        return saved

    def overflows_horizontally(self) -> bool:
        """Whether the page is wider than the window (a phone would scroll sideways)."""
        return bool(
            self.driver.execute_script(
                "return document.documentElement.scrollWidth > window.innerWidth + 1"
            )
        )


def start_chromium(*, javascript: bool = True) -> WebDriver:
    """Debian's Chromium, headless, through its driver (or the test fails saying why)."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail(
            f"the browser tests need Chromium and its driver ({CHROMIUM}, {CHROMEDRIVER}): "
            "run `make test` (scripts/ensure-browser.sh installs them)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        f"--window-size={LAPTOP[0]},{LAPTOP[1]}",
    ):
        options.add_argument(argument)
    if not javascript:
        options.add_argument("--blink-settings=scriptEnabled=false")
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(options=options, service=ChromeService(CHROMEDRIVER))
    except WebDriverException as exc:
        pytest.fail(f"Chromium did not start: {exc.msg}")
    driver.set_page_load_timeout(DEADLINE)
    return driver


@pytest.fixture(scope="session")
def chrome() -> Iterator[WebDriver]:
    driver = start_chromium()
    yield driver
    driver.quit()


@pytest.fixture
def browser(chrome: WebDriver, tmp_path: Path) -> Iterator[Browser]:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    chrome.delete_all_cookies()
    chrome.set_window_size(*LAPTOP)
    yield Browser(chrome, shots)
    chrome.delete_all_cookies()
