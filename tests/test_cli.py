"""The ``monitor`` command as a user runs it: a real process, real servers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from feedserver import FeedServer
from receivers import WebhookReceiver
from test_service import CSTO_ITEM, NOW, OTHER_ITEM, rss


@pytest.fixture
def config_file(
    tmp_path: Path, db_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"""
database: {db_url}
defaults: {{interval: 1h}}
service: {{tick: 0.2s}}
http: null
polling: {{parse_workers: 1}}
feeds:
  - url: {feed_server.url("/feed.xml")}
    name: Wire
  - url: {feed_server.url("/down.xml")}
watchlists:
  - name: csto
    terms: [CSTO]
    notify: [hook, console]
channels:
  - name: hook
    type: webhook
    url: {webhook_receiver.url}
  - name: console
    type: log
""",
        encoding="utf-8",
    )
    feed_server.set_feed("/feed.xml", rss(CSTO_ITEM, OTHER_ITEM))
    feed_server.set_response("/down.xml", 503, b"maintenance")
    return path


def monitor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_poll_then_feeds_and_alerts_as_json(config_file: Path, feed_server: FeedServer) -> None:
    polled = monitor("poll", "--config", str(config_file))
    assert polled.returncode == 0, polled.stderr
    assert "polled 2 feed(s): 2 new item(s), 1 alert(s)" in polled.stdout
    assert f"error: {feed_server.url('/down.xml')}: HTTP 503" in polled.stdout
    assert "status=200 new=2 matched=1" in polled.stderr  # the per-poll log line

    feeds = json.loads(monitor("feeds", "--json", "--config", str(config_file)).stdout)
    by_url = {f["url"]: f for f in feeds}
    wire, down = by_url[feed_server.url("/feed.xml")], by_url[feed_server.url("/down.xml")]
    assert (wire["name"], wire["state"], wire["items"], wire["last_status"]) == (
        "Wire",
        "ok",
        2,
        200,
    )
    assert (down["state"], down["error_count"], down["last_status"]) == ("error", 1, 503)
    assert "503" in down["last_error"]
    for key in ("last_polled_at", "next_poll_at"):
        assert datetime.fromisoformat(wire[key]).tzinfo is not None

    alerts = json.loads(monitor("alerts", "--json", "--config", str(config_file)).stdout)
    [alert] = alerts
    assert alert["watchlist"] == "csto" and alert["item"]["title"] == CSTO_ITEM[1]
    assert alert["feed"]["name"] == "Wire"
    states = {d["channel"]: (d["state"], d["attempts"]) for d in alert["deliveries"]}
    assert states == {"console": ("sent", 1), "hook": ("sent", 1)}
    assert alert["matches"][0]["term"] == "CSTO"

    table = monitor("feeds", "--config", str(config_file)).stdout
    assert "!" in table and "HTTP 503" in table  # the failing feed stands out


def test_run_polls_delivers_and_stops_cleanly_on_sigterm(
    config_file: Path, webhook_receiver: WebhookReceiver
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        webhook_receiver.wait_for(1, timeout=60)
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "service stopped" in err
    assert "Traceback" not in err

    # A restart sends nothing again.
    again = monitor("poll", "--config", str(config_file))
    assert again.returncode == 0
    assert len(webhook_receiver.requests) == 1


def test_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text("database: nosuchdb://x\n", encoding="utf-8")
    result = monitor("feeds", "--config", str(path))
    assert result.returncode == 1
    assert "database URL" in result.stderr and "Traceback" not in result.stderr


def test_check_refuses_a_query_nested_thousands_deep(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    query = "(" * 3000 + "CSTO" + ")" * 3000
    path.write_text(f"watchlists: [{{name: deep, query: '{query}'}}]\n", encoding="utf-8")
    result = monitor("check", "--config", str(path))
    assert result.returncode == 2, result.stderr
    assert "watchlists[0] (deep).query" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("service: {lease: 0}", "service.lease"),
        ("defaults: {interval: 99999999999w}", "defaults.interval"),
        (
            "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [" + ", ".join(["*a"] * 10) + "]\n"
            "c: &c [" + ", ".join(["*b"] * 10) + "]\nd: [" + ", ".join(["*c"] * 10) + "]",
            "aliases",
        ),
        ("polling: {max_body: 1}\npolling: {max_body: 2}", "duplicate key 'polling'"),
    ],
)
def test_check_refuses_what_would_break_at_run_time(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(text + "\n", encoding="utf-8")
    result = monitor("check", "--config", str(path))
    assert result.returncode == 2 and field in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_check_hides_the_database_password(tmp_path: Path) -> None:
    """A database whose driver is not installed is refused at check; its password is not
    printed, nor, for a URL that does not parse, anything but its scheme."""
    path = tmp_path / "monitor.yaml"
    for url in ("postgresql+nosuch://monitor:hunter2@db/monitor", "garbage:hunter2"):
        path.write_text(f"database: '{url}'\n", encoding="utf-8")
        result = monitor("check", "--config", str(path))
        assert result.returncode == 2 and "database:" in result.stderr
        assert "hunter2" not in result.stderr + result.stdout


def test_check_refuses_a_ca_file_that_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        "channels: [{name: mail, type: email, to: [a@example.org], from: m@example.org,"
        f" smtp: {{host: h, tls: true, ca_file: '{tmp_path / 'missing.pem'}'}}}}]\n",
        encoding="utf-8",
    )
    result = monitor("check", "--config", str(path))
    assert result.returncode == 2 and "channels[0]: mail: cannot load ca_file" in result.stderr


def test_config_from_environment_variable(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.yaml"
    path.write_text("feeds: []\n", encoding="utf-8")
    result = monitor("check", env={"MONITOR_CONFIG": str(path)})
    assert result.returncode == 0 and str(path) in result.stdout


def test_alerts_when_there_are_none(config_file: Path) -> None:
    result = monitor("alerts", "--config", str(config_file))
    assert result.returncode == 0 and "no alerts" in result.stdout


class Running:
    """``monitor run`` in a real process, its log lines collected as they come."""

    def __init__(self, config: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def wait_for_line(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no log line with {text!r}:\n{''.join(self.lines)}")

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        return "".join(self.lines)


def test_sighup_reloads_the_configuration_between_polls(
    config_file: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    running = Running(config_file)
    try:
        webhook_receiver.wait_for(1, timeout=60)  # the CSTO item, on the first poll

        # A broken file is reported, naming the problem; the service goes on as it was.
        good = config_file.read_text(encoding="utf-8")
        config_file.write_text(good.replace("terms: [CSTO]", "terms: CSTO"), encoding="utf-8")
        running.process.send_signal(signal.SIGHUP)
        line = running.wait_for_line("configuration not reloaded")
        assert "watchlists[0] (csto).terms" in line and "the running one stays" in line

        # A new feed and a new watchlist: reloaded without a restart, the new feed polled
        # at once (its first poll under the backlog rule), its matching item alerted.
        feed_server.set_feed("/new.xml", rss(("n1", "Tokayev meets Putin", "Talks.", NOW)))
        config_file.write_text(
            good.replace(
                "watchlists:\n",
                f"  - url: {feed_server.url('/new.xml')}\nwatchlists:\n"
                "  - name: tokayev\n    terms: [Tokayev]\n    notify: [hook]\n",
            ),
            encoding="utf-8",
        )
        running.process.send_signal(signal.SIGHUP)
        line = running.wait_for_line("configuration reloaded")
        assert "feeds: added" in line and "watchlists: added tokayev" in line
        [_, second] = webhook_receiver.wait_for(2, timeout=60)
        assert second.json()["watchlist"] == "tokayev"
    finally:
        log = running.stop()
    assert running.process.returncode == 0, log
    assert "Traceback" not in log
