"""The server of ``monitor run`` answers probes and scrapes without loading the API and the
dashboard, and loads them once, on the first request for anything else (``front.py``).

Each test runs ``monitor run`` as users do, in a process of its own, and asks it over
127.0.0.1; when it stops (SIGTERM), the process prints the web modules it had imported.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Self

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 30.0
LOADED = "http: the API and the dashboard loaded in"
# What the full app brings: FastAPI and what it pulls in, and the API's and the dashboard's
# own modules. (jinja2 is not among them: the dashboard and the channels that render
# with it load it too, so it says nothing about the front.)
FULL_APP = ("fastapi", "starlette", "python_multipart", "itsdangerous", "opentelemetry")
FULL_APP_MODULES = ("monitor.web.app", "monitor.web.api", "monitor.web.pages")

# ``python -m monitor`` that prints, on its way out, the modules above it had imported.
REPORT = f"""
import atexit, json, runpy, sys

def report() -> None:
    loaded = sorted(
        m for m in sys.modules
        if m.split(".")[0] in {FULL_APP!r} or m.startswith({FULL_APP_MODULES!r})
    )
    print(json.dumps(loaded), flush=True)

atexit.register(report)
"""
RUN = "runpy.run_module('monitor', run_name='__main__', alter_sys=True)\n"


class MonitorRun:
    """``monitor run`` in a process of its own, its log gathered as it goes."""

    def __init__(self, tmp_path: Path, before_run: str = "") -> None:
        config = tmp_path / "monitor.yaml"
        config.write_text(
            f"""
database: sqlite:///{tmp_path / "monitor.db"}
service: {{tick: 0.2s}}
polling: {{parse_workers: 0}}
http: {{listen: "127.0.0.1:0"}}
""",
            encoding="utf-8",
        )
        code = REPORT + before_run + RUN
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, "run", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.base_url = f"http://{self._address()}"

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def _address(self) -> str:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline and self.process.poll() is None:
            for line in list(self.lines):
                if found := re.search(r"http: listening on (127\.0\.0\.1:\d+)", line):
                    return found[1]
            time.sleep(0.05)
        self.process.kill()
        raise AssertionError("no 'http: listening on' line:\n" + self.log)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def get(self, path: str, method: str = "GET") -> httpx.Response:
        return httpx.request(method, self.base_url + path, timeout=DEADLINE)

    def stop(self) -> list[str]:
        """Stop it with SIGTERM; the full app's modules it had imported."""
        self.process.send_signal(signal.SIGTERM)
        stdout, _ = self.process.communicate(timeout=DEADLINE)
        self._reader.join(DEADLINE)
        assert self.process.returncode == 0, self.log
        assert "Traceback" not in self.log, self.log
        loaded: list[str] = json.loads(stdout.strip().splitlines()[-1])
        return loaded

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def test_probes_and_scrapes_do_not_load_the_api_or_the_dashboard(tmp_path: Path) -> None:
    with MonitorRun(tmp_path) as service:
        health = service.get("/healthz")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        assert health.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in health.headers["content-security-policy"]
        ready = service.get("/readyz")
        assert (ready.status_code, ready.json()["status"]) == (200, "ready")
        metrics = service.get("/metrics")
        assert metrics.status_code == 200 and "# TYPE monitor_polls" in metrics.text
        assert metrics.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        refused = service.get("/healthz", method="HEAD")
        assert (refused.status_code, refused.headers["allow"]) == (405, "GET")
        loaded = service.stop()
    assert loaded == []
    assert LOADED not in service.log


FIRST_REQUESTS = {
    "/api/openapi.json": 200,
    "/": 200,  # the read-only dashboard (no password)
    "/feeds": 200,
    "/api/feeds": 503,  # the API is off without a token, and says so
    "/static/monitor.css": 200,
    "/nowhere": 404,
    "/docs": 404,
    "/healthz": 200,
}


def test_the_first_other_requests_load_the_full_app_once_and_it_serves_the_rest(
    tmp_path: Path,
) -> None:
    """Requests that come together while it loads (an import takes about a second) all
    wait for the same build."""
    with MonitorRun(tmp_path) as service:
        paths = [path for path in FIRST_REQUESTS for _ in range(2)]
        with ThreadPoolExecutor(len(paths)) as pool:
            answered = list(zip(paths, pool.map(service.get, paths), strict=True))
        for path, answer in answered:
            assert answer.status_code == FIRST_REQUESTS[path], path
            assert answer.headers["x-content-type-options"] == "nosniff", path
        answers = dict(answered)
        assert answers["/api/openapi.json"].json()["openapi"].startswith("3.")
        assert answers["/nowhere"].json() == {"error": "Not Found"}
        assert "/healthz" not in answers["/api/openapi.json"].json()["paths"]
        # later requests: the same app, not loaded again
        assert service.get("/api/openapi.json").status_code == 200
        assert service.get("/healthz").json() == {"status": "ok"}
        assert service.get("/healthz/").status_code == 307  # the full app's redirect
        loaded = service.stop()
    assert "fastapi" in loaded and "monitor.web.app" in loaded
    assert service.log.count(LOADED) == 1, service.log


def test_a_full_app_that_cannot_be_loaded_is_a_500_and_probes_still_answer(
    tmp_path: Path,
) -> None:
    """FastAPI missing from the install: the service runs on, each other request is a bare
    500 (with the security headers), and the log says why once."""
    missing = "sys.modules['fastapi'] = None  # import fastapi now fails\n"
    with MonitorRun(tmp_path, before_run=missing) as service:
        for path in ("/api/feeds", "/", "/api/feeds"):
            failed = service.get(path)
            assert (failed.status_code, failed.json()) == (500, {"error": "internal error"})
            assert failed.headers["x-content-type-options"] == "nosniff"
        assert service.get("/healthz").status_code == 200
        assert service.get("/metrics").status_code == 200
        service.stop()
    reason = "http: the API and the dashboard cannot be loaded: ModuleNotFoundError"
    assert service.log.count(reason) == 1, service.log
    assert "(module fastapi)" in service.log
