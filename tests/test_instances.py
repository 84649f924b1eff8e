"""One working process per SQLite database, through the real commands.

A ``monitor poll`` started while the service delivers used to release every lease and send
the service's claimed deliveries a second time. Now the second process is refused, naming
the first, and leases are only ever released when their owner is dead.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from feedserver import FeedServer
from test_service import rss

from monitor.store import Store
from monitor.store.engine import create_db_engine

ROOT = Path(__file__).resolve().parent.parent

# Several `monitor run` processes at once: one at a time on one xdist worker
# (tests/conftest.py), started first because they are long.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("processes")]

ALERTS = 6
DELAY = 0.4  # seconds the receiver takes per request: the delivery pass lasts a while


class SlowReceiver:
    """A webhook receiver that takes ``DELAY`` to answer, recording each alert id."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.ids.append(json.loads(body)["id"])
                time.sleep(DELAY)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def count(self) -> int:
        with self.lock:
            return len(self.ids)

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.count() < count:
            assert time.monotonic() < deadline, f"{self.count()} of {count} requests"
            time.sleep(0.01)


@pytest.fixture
def receiver() -> Iterator[SlowReceiver]:
    slow = SlowReceiver()
    yield slow
    slow.server.shutdown()
    slow.server.server_close()


@pytest.fixture
def config(tmp_path: Path, feed_server: FeedServer, receiver: SlowReceiver) -> Path:
    now = datetime.now(UTC)
    items = [(f"i{n}", f"CSTO drill {n}", "CSTO forces exercise.", now) for n in range(ALERTS)]
    feed_server.set_feed("/feed.xml", rss(*items))
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"""
database: sqlite:///{tmp_path / "m.db"}
service: {{tick: 0.1s, lease: 30s}}
http: null
polling: {{parse_workers: 0, deadline: 10s, parse_budget: 5s}}
feeds: [{{url: "{feed_server.url("/feed.xml")}"}}]
watchlists: [{{name: csto, terms: [CSTO], notify: [hook]}}]
channels: [{{name: hook, type: webhook, url: "{receiver.url}", timeout: 5s}}]
""",
        encoding="utf-8",
    )
    return path


def monitor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def start_service(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    deadline = time.monotonic() + 30
    while b"service started" not in log.read_bytes():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.01)
    return process


def test_poll_and_a_second_run_are_refused_while_the_service_delivers(
    config: Path, receiver: SlowReceiver, tmp_path: Path
) -> None:
    service = start_service(config, tmp_path / "run.log")
    try:
        receiver.wait_for(1, timeout=30)  # the service's delivery pass is under way
        poll = monitor("poll", "--due", "--config", str(config))
        assert poll.returncode == 1
        assert "in use by another monitor process" in poll.stderr
        assert f"pid {service.pid}" in poll.stderr and "monitor run" in poll.stderr
        second = monitor("run", "--config", str(config))
        assert second.returncode == 1 and f"pid {service.pid}" in second.stderr
        receiver.wait_for(ALERTS, timeout=30)
        time.sleep(3 * DELAY)  # room for any duplicate to arrive
    finally:
        service.send_signal(signal.SIGTERM)
        assert service.wait(30) == 0
    assert receiver.count() == ALERTS  # each alert once
    assert len(set(receiver.ids)) == ALERTS


def test_a_killed_service_leaves_no_lock_and_its_leases_are_taken_over(
    config: Path, receiver: SlowReceiver, tmp_path: Path
) -> None:
    """The kernel drops a dead holder's lock; the next process, alone on the database,
    releases the dead one's leases and sends what it had claimed."""
    service = start_service(config, tmp_path / "run.log")
    receiver.wait_for(1, timeout=30)
    service.send_signal(signal.SIGKILL)
    service.wait(10)
    poll = monitor("poll", "--due", "--config", str(config))
    assert poll.returncode == 0, poll.stderr
    store = Store(create_db_engine(f"sqlite:///{tmp_path / 'm.db'}"))
    states = [d.state for r in store.list_alerts() for d in r.deliveries]
    assert states == ["sent"] * ALERTS
    assert set(receiver.ids) == {r.alert.id for r in store.list_alerts()}
