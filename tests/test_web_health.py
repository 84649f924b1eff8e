"""The HTTP server inside ``monitor run``: /healthz, /readyz, the error shape, binding.

The service runs in-process (App, Service and the server on the test's event loop) or as
users run it (``python -m monitor run``); every request goes over a real socket. The
database outage is real too: the service reaches PostgreSQL through a TCP proxy on
127.0.0.1 that the test cuts (the port then refuses connections, open ones are dropped)
and restores, so the shared PostgreSQL server keeps running for the other tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Self

import httpx
import pytest
from feedserver import FeedServer, Response
from pydantic import BaseModel
from sqlalchemy.engine import make_url
from test_service import CSTO_ITEM, rss

from monitor.app import App
from monitor.config import Settings, load_settings
from monitor.schedule import Service
from monitor.web.app import create_web_app
from monitor.web.context import WebContext
from monitor.web.health import DATABASE_TIMEOUT
from monitor.web.server import WebServer, serve_http, start_web_server

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 20.0


def write_config(tmp_path: Path, database: str, extra: str = "") -> Settings:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"""
database: {database}
service: {{tick: 0.1s}}
polling: {{parse_workers: 0, jitter: 0}}
http: {{listen: "127.0.0.1:0", max_lag: 1s}}
{extra}
""",
        encoding="utf-8",
    )
    return load_settings(path, {})


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(
    settings: Settings, *, start_service: bool = True
) -> AsyncIterator[tuple[Service, WebServer, httpx.AsyncClient]]:
    """The app, the service (running unless told not to) and its HTTP server."""
    async with await asyncio.to_thread(App, settings) as app:
        service = Service(app)
        stop = asyncio.Event()
        async with serve_http(service, settings.http) as web:
            assert web is not None
            task = asyncio.create_task(service.run(stop)) if start_service else None
            try:
                async with httpx.AsyncClient(base_url=f"http://{web.address}") as client:
                    yield service, web, client
            finally:
                stop.set()
                if task is not None:
                    await task


async def test_healthz_and_readyz_answer_while_the_service_runs(
    tmp_path: Path, db_url: str
) -> None:
    async with running(write_config(tmp_path, db_url)) as (_, web, client):
        assert re.fullmatch(r"127\.0\.0\.1:\d+", web.address)
        assert not web.address.endswith(":0")  # the port really bound, not the one asked
        health = await client.get("/healthz")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        ready = await client.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready", "reasons": []})
        assert ready.headers["cache-control"] == "no-store"


class TcpProxy:
    """127.0.0.1:<port> forwarded to ``target``. ``cut()`` closes the port (connections
    are refused, as by a stopped server) and drops the open ones; ``hang()`` drops them
    and holds new ones open without an answer (a server that stopped responding);
    ``restore()`` forwards on the same port again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.held = 0  # connections accepted while hanging
        self._hanging = False
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def hang(self) -> None:
        self._hanging = True
        self._drop()

    def start(self) -> Self:
        self._hanging = False
        self._drop()
        if self._listener is not None:
            return self
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        self._drop()

    def _drop(self) -> None:
        with self._lock:
            dropped, self._open = self._open, set()
        for sock in dropped:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    restore = start

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._hanging:
                with self._lock:
                    self._open.add(client)
                    self.held += 1
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_RDWR)


async def test_readyz_is_503_while_postgresql_is_unreachable_and_200_when_it_returns(
    tmp_path: Path, postgres_url: str
) -> None:
    url = make_url(postgres_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432)).start()
    proxied = url.set(port=proxy.port).render_as_string(hide_password=False)
    try:
        async with running(write_config(tmp_path, proxied)) as (_, _, client):
            assert (await client.get("/readyz")).status_code == 200
            families = {f.name for f in await scrape(client)}
            assert "monitor_feeds" in families

            proxy.cut()
            answers: list[httpx.Response] = []

            async def unready() -> bool:
                answers.append(await client.get("/readyz"))
                return answers[-1].status_code == 503

            await until(unready, "/readyz says 503 with PostgreSQL cut off")
            assert answers[-1].json() == {"status": "unready", "reasons": ["database: unreachable"]}
            assert (await client.get("/healthz")).status_code == 200  # the process answers
            # The counters are still worth a scrape; the database's gauges are left out.
            families = {f.name for f in await scrape(client)}
            assert "monitor_polls" in families and "monitor_feeds" not in families

            proxy.restore()

            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200

            await until(ready, "/readyz back to 200 once PostgreSQL is reachable")
            assert "monitor_feeds" in {f.name for f in await scrape(client)}
    finally:
        proxy.cut()


async def test_readyz_answers_in_bounded_time_while_postgresql_hangs(
    tmp_path: Path, postgres_url: str
) -> None:
    """A database that accepts connections and never answers: each probe gives up after
    DATABASE_TIMEOUT, and the probes share one check instead of each holding a thread
    (no new connection attempt per probe)."""
    url = make_url(postgres_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432)).start()
    proxied = url.set(port=proxy.port).render_as_string(hide_password=False)
    try:
        async with running(write_config(tmp_path, proxied)) as (_, _, client):
            assert (await client.get("/readyz")).status_code == 200
            proxy.hang()
            first = await client.get("/readyz")
            assert first.status_code == 503
            reason = f"database: no answer within {DATABASE_TIMEOUT:g}s"
            assert reason in first.json()["reasons"]
            held = proxy.held
            for _ in range(2):
                started = time.monotonic()
                probe = await client.get("/readyz")
                assert time.monotonic() - started < DATABASE_TIMEOUT + 1.0
                assert reason in probe.json()["reasons"]
            assert proxy.held == held  # the probes waited for the check under way

            proxy.restore()

            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200

            await until(ready, "/readyz back to 200 once PostgreSQL answers again")
    finally:
        proxy.cut()


async def scrape(client: httpx.AsyncClient) -> list[Any]:
    from prometheus_client.parser import text_string_to_metric_families

    response = await client.get("/metrics")
    assert response.status_code == 200
    return list(text_string_to_metric_families(response.text))


async def test_readyz_is_503_when_the_scheduler_stops_ticking_and_200_when_it_ticks(
    tmp_path: Path, sqlite_url: str
) -> None:
    """A service whose scheduler does not run (max_lag 1s): unready once its tick is more
    than a second late, with the lag in /metrics; ready again once it ticks."""
    settings = write_config(tmp_path, sqlite_url)
    async with running(settings, start_service=False) as (service, _, client):
        answers: list[httpx.Response] = []

        async def unready() -> bool:
            answers.append(await client.get("/readyz"))
            return answers[-1].status_code == 503

        await until(unready, "/readyz says 503 while the scheduler does not tick")
        [reason] = answers[-1].json()["reasons"]
        assert reason.startswith("scheduler: the poll tick is") and "max_lag 1s" in reason
        [lag] = [f for f in await scrape(client) if f.name == "monitor_tick_lag_seconds"]
        assert lag.samples[0].value > 1.0

        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        try:

            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200

            await until(ready, "/readyz back to 200 once the scheduler ticks")
        finally:
            stop.set()
            await task


async def test_readyz_says_stopping_while_the_service_finishes_its_polls(
    tmp_path: Path, sqlite_url: str, feed_server: FeedServer
) -> None:
    """On SIGTERM the server outlives the drain, and says the service is going away."""
    feed_server.set_handler("/slow.xml", lambda _r: Response(body=rss(CSTO_ITEM), delay=2.0))
    feeds = f"feeds: [{{url: '{feed_server.url('/slow.xml')}'}}]"
    settings = write_config(tmp_path, sqlite_url, feeds)
    async with await asyncio.to_thread(App, settings) as app:
        service = Service(app)
        stop = asyncio.Event()
        async with serve_http(service, settings.http) as web:
            assert web is not None
            task = asyncio.create_task(service.run(stop))
            await asyncio.to_thread(feed_server.wait_for_requests, "/slow.xml", 1)
            stop.set()  # the slow poll is under way: the service drains it
            async with httpx.AsyncClient(base_url=f"http://{web.address}") as client:
                ready = await client.get("/readyz")
                assert ready.status_code == 503
                assert "service: stopping" in ready.json()["reasons"]
                assert (await client.get("/healthz")).status_code == 200
            await task


class Body(BaseModel):
    name: str


async def boom() -> None:
    raise RuntimeError("password=hunter2")


async def echo(limit: int, body: Body) -> dict[str, object]:
    return {"limit": limit, "name": body.name}


async def test_errors_are_json_naming_the_field_and_a_crash_says_nothing_more(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """One error shape for every route: 404, a bad query parameter, a body that is not
    JSON, an unexpected exception (a bare 500; the log has its type, not its text)."""
    settings = write_config(tmp_path, sqlite_url)
    async with await asyncio.to_thread(App, settings) as app:
        web = create_web_app(WebContext(Service(app)))
        web.add_api_route("/test/boom", boom, methods=["GET"])
        web.add_api_route("/test/echo", echo, methods=["POST"])
        server = await start_web_server(web, "127.0.0.1:0")
        try:
            async with httpx.AsyncClient(base_url=f"http://{server.address}") as client:
                missing = await client.get("/nowhere")
                assert (missing.status_code, missing.json()) == (404, {"error": "Not Found"})
                bad = await client.post("/test/echo?limit=many", json={"name": "x"})
                assert bad.status_code == 400
                assert bad.json()["field"] == "limit"
                assert bad.json()["error"].startswith("limit: ")
                wrong = await client.post("/test/echo?limit=1", json={"name": ["x"]})
                assert (wrong.status_code, wrong.json()["field"]) == (400, "name")
                garbled = await client.post(
                    "/test/echo?limit=1",
                    content=b"{not json",
                    headers={"content-type": "application/json"},
                )
                assert garbled.status_code == 400
                assert garbled.json() == {"error": "body: not valid JSON", "field": "body"}
                good = await client.post("/test/echo?limit=1", json={"name": "x"})
                assert good.json() == {"limit": 1, "name": "x"}
                crash = await client.get("/test/boom")
                assert (crash.status_code, crash.json()) == (500, {"error": "internal error"})
                assert "hunter2" not in crash.text
                docs = await client.get("/docs")
                assert docs.status_code == 404  # no pages that load code from a CDN
                openapi = await client.get("/api/openapi.json")
                assert openapi.status_code == 200 and openapi.json()["openapi"].startswith("3.")
        finally:
            await server.stop()
    assert "internal error in GET /test/boom: RuntimeError at test_web_health.py" in caplog.text
    assert "hunter2" not in caplog.text and "Traceback" not in caplog.text


def run_monitor(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def subprocess_config(tmp_path: Path, listen: str) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"""
database: sqlite:///{tmp_path / "m.db"}
service: {{tick: 0.2s}}
polling: {{parse_workers: 0}}
http: {{listen: "{listen}"}}
""",
        encoding="utf-8",
    )
    return path


def test_monitor_run_serves_on_port_zero_and_stops_with_sigterm(tmp_path: Path) -> None:
    process = run_monitor(subprocess_config(tmp_path, "127.0.0.1:0"))
    lines: list[str] = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if found := re.search(r"http: listening on (127\.0\.0\.1:(\d+))", line):
                break
        else:
            raise AssertionError("no 'http: listening on' line:\n" + "".join(lines))
        address, port = found[1], int(found[2])
        assert port != 0
        assert httpx.get(f"http://{address}/healthz").json() == {"status": "ok"}
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=30)[1]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = "".join(lines) + rest
    assert process.returncode == 0, log
    assert "Traceback" not in log
    with pytest.raises(httpx.ConnectError):  # stopped with the service
        httpx.get(f"http://{address}/healthz")


def test_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        process = run_monitor(subprocess_config(tmp_path, listen))
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1, stderr
    assert stderr.strip().splitlines()[-1] == (
        f"error: http: cannot listen on {listen}: Address already in use"
    )
    assert "Traceback" not in stderr
