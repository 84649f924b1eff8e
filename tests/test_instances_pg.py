"""Several instances on one PostgreSQL: started together, sharing the polls,
one of them killed.

Replicas start together on a fresh database: each migrates and syncs the configured feeds
at the same moment, and then they share the polls. Those tests get a database of their
own, never migrated (the shared test database of ``conftest.py`` already is). SQLite
serves one instance (``monitor/store/lock.py``), so they run on PostgreSQL only.

The three ``monitor run`` processes read configurations that differ in one thing only:
each feed carries the header ``X-Instance: <n>`` of its process (a feed's headers are not
stored: the feeds table is the same whoever syncs it). So the feed server knows which
instance made each request, counts each one's polls, and can hold one instance's requests
open to make sure it dies with polls under way.

The rules behind the sharing are pinned down in one process, where the timing is under
the test's control: a service claims only its free slots and refills them between ticks
(on both databases), and each claim starts at a random moment within its tick, so the
phases of the instances' ticks do not decide their shares.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from conftest import ADMIN_URL
from feedserver import FeedServer, RecordedRequest, Request, Response
from receivers import WebhookReceiver
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from test_service import rss

from monitor.config import Settings, load_settings
from monitor.store import Store
from monitor.store.engine import alembic_config, create_db_engine

ROOT = Path(__file__).resolve().parent.parent
FEEDS = 200
INSTANCES = 3
INTERVAL = 3.0  # seconds between two polls of a feed (plus up to 10% jitter)
LEASE = 12.0  # above deadline + parse_budget (6 s), and four times the webhook timeout
CHANGES = 2
KILLED = "0"  # the instance that is SIGKILLed
SLACK = 0.05  # seconds: the instances' database clocks are measured, not exact
LIGHT_TICK = 0.1  # the shortest service.tick: many claims, so shares settle quickly

# Instances sharing the polls, their shares and timing judged: one test at a time on one
# xdist worker (tests/conftest.py), started first because they are long.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("processes")]


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (no schema), dropped after the test."""
    if os.environ.get("MONITOR_TEST_SKIP_POSTGRES") == "1":
        pytest.skip("MONITOR_TEST_SKIP_POSTGRES=1")
    name = f"monitor_fresh_{uuid.uuid4().hex[:12]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


MIGRATE = """
import sys
from monitor.store.engine import create_db_engine, migrate
engine = create_db_engine(sys.argv[1])
with engine.connect():
    pass
print("ready", flush=True)
sys.stdin.readline()
migrate(engine)
"""


def test_replicas_migrating_a_fresh_database_at_once_all_succeed(fresh_database: str) -> None:
    """Without the migration lock, all but one failed on a duplicate key creating
    ``alembic_version``."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, fresh_database],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        for _ in range(4)
    ]
    for process in processes:  # connected, waiting for the word
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    errors = [process.communicate(timeout=60)[1] for process in processes]
    assert [process.returncode for process in processes] == [0] * 4, errors
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    engine = create_db_engine(fresh_database)
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    engine.dispose()
    assert versions == [head]


class ChangingFeeds:
    """``FEEDS`` feeds on the feed server, all changing together on :meth:`change`: each
    change adds a matching item and one that matches nothing. While :attr:`hold` is set,
    the requests of the instance to be killed are held open (until the server stops)."""

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        self.version = 0
        self.hold = threading.Event()
        self.paths = [f"/feeds/{n}.xml" for n in range(FEEDS)]
        for n, path in enumerate(self.paths):
            server.set_handler(path, self._handler(n))

    def items(self, n: int) -> list[tuple[str, str, str, datetime | None]]:
        now = datetime.now(UTC)
        items = [(f"{n}-old", "Weather in Bishkek", "Sunny and cold.", now)]
        for k in range(1, self.version + 1):
            items.append((f"{n}-csto-{k}", f"CSTO drill {n}.{k}", "CSTO forces exercise.", now))
            items.append((f"{n}-other-{k}", f"Harvest {n}.{k}", "Wheat prices rise.", now))
        return items

    def _handler(self, n: int) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            if self.hold.is_set() and request.headers.get("x-instance") == KILLED:
                return Response(delay=120)  # held open until the server stops
            etag = f'"{n}-{self.version}"'
            if request.headers.get("if-none-match") == etag:
                return Response(status=304, headers={"ETag": etag})
            headers = {"ETag": etag, "Content-Type": "application/rss+xml; charset=utf-8"}
            return Response(body=rss(*self.items(n)), headers=headers)

        return handler

    def change(self) -> None:
        self.version += 1

    def expected_alerts(self) -> set[tuple[str, str]]:
        """(feed URL, item guid) of every matching item served."""
        return {
            (self.server.url(path), f"{n}-csto-{k}")
            for n, path in enumerate(self.paths)
            for k in range(1, self.version + 1)
        }


def write_configs(tmp_path: Path, db: str, feeds: ChangingFeeds, hook: str) -> list[Path]:
    paths = []
    for instance in range(INSTANCES):
        lines = [
            f'  - {{url: "{feeds.server.url(p)}", headers: {{X-Instance: "{instance}"}}}}'
            for p in feeds.paths
        ]
        path = tmp_path / f"monitor-{instance}.yaml"
        path.write_text(
            f"""
database: "{db}"
http: null
service: {{tick: 0.2s, lease: {LEASE:g}s}}
polling: {{parse_workers: 0, deadline: 3s, parse_budget: 3s, per_host: 10}}
defaults: {{interval: {INTERVAL:g}s}}
watchlists: [{{name: csto, terms: [CSTO], notify: [hook]}}]
channels: [{{name: hook, type: webhook, url: "{hook}", timeout: {LEASE / 4:g}s}}]
feeds:
"""
            + "\n".join(lines)
            + "\n",
            encoding="utf-8",
        )
        paths.append(path)
    return paths


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout:g}s: {what}"
        time.sleep(0.05)


def by_instance(requests: list[RecordedRequest]) -> Counter[str]:
    return Counter(r.headers.get("x-instance", "?") for r in requests)


class Instances:
    """``monitor run`` processes, one per configuration, each logging to its own file."""

    def __init__(self, configs: list[Path], tmp_path: Path) -> None:
        self.logs = [tmp_path / f"instance-{i}.log" for i in range(len(configs))]
        self.processes = []
        for config, log in zip(configs, self.logs, strict=True):  # as replicas start: together
            with log.open("wb") as out:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        cwd=ROOT,
                    )
                )

    def wait_started(self) -> None:
        """Each says it started; none exited (on a duplicate key, say)."""
        pairs = list(zip(self.processes, self.logs, strict=True))
        wait_until(
            lambda: all(
                process.poll() is not None or b"service started" in log.read_bytes()
                for process, log in pairs
            ),
            60,
            "every instance started",
        )
        for process, log in pairs:
            assert process.poll() is None, log.read_text()

    def stop(self) -> None:
        """SIGTERM the ones alive; each must finish cleanly."""
        alive = [
            (p, log) for p, log in zip(self.processes, self.logs, strict=True) if p.poll() is None
        ]
        for process, _ in alive:
            process.send_signal(signal.SIGTERM)
        for process, log in alive:
            assert process.wait(30) == 0, log.read_text()

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@dataclass
class Run:
    """What happened when, on the feed server's clock (``time.monotonic()``)."""

    held_from: float = 0.0  # the killed instance's requests are held open from here
    killed_at: float = 0.0
    held: list[RecordedRequest] = field(default_factory=list)  # its polls under way
    lease_ends: dict[str, float] = field(default_factory=dict)  # path: when its lease ends


def test_three_instances_started_together_share_the_polls_and_survive_a_kill(
    fresh_database: str,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    tmp_path: Path,
) -> None:
    feeds = ChangingFeeds(feed_server)
    instances = Instances(
        write_configs(tmp_path, fresh_database, feeds, webhook_receiver.url), tmp_path
    )
    store = Store(create_db_engine(fresh_database))
    try:
        instances.wait_started()
        run = play(instances, feeds, webhook_receiver, store)
        time.sleep(2 * INTERVAL)  # room for a duplicate alert or a second poll to show
        instances.stop()
        alerts = store.list_alerts(limit=10 * FEEDS)
    finally:
        instances.kill()
        store.engine.dispose()

    requests = feed_server.requests
    # Every matching item alerted exactly once, and nothing else did.
    assert {(a.alert.feed.url, a.alert.item.guid) for a in alerts} == feeds.expected_alerts()
    received = Counter(r.json()["id"] for r in webhook_receiver.requests)
    assert received == Counter({a.alert.id: 1 for a in alerts})

    # No feed polled twice within its interval, the held polls included.
    for path in feeds.paths:
        times = sorted(r.time for r in requests if r.path == path)
        gaps = [b - a for a, b in pairwise(times)]
        assert gaps and min(gaps) >= INTERVAL - SLACK, (path, gaps)

    # The killed instance's polls were taken over by the others once its lease ran out
    # (the lease runs from the claim, which can precede the request by a second or more on
    # a loaded machine: the request's own time is no measure of it).
    for request in run.held:
        later = [r for r in requests if r.path == request.path and r.time > request.time]
        assert later, f"{request.path} was not polled again after the kill"
        assert later[0].headers["x-instance"] != KILLED
        lease_end = run.lease_ends[request.path]
        assert lease_end - SLACK <= later[0].time <= lease_end + INTERVAL + 5, (
            later[0].time - request.time,
            lease_end - request.time,
        )

    # Each instance did its share: three started together, then two after the kill.
    before = by_instance([r for r in requests if r.time < run.held_from])
    after = by_instance([r for r in requests if r.time > run.killed_at])
    total = by_instance(requests)
    # (a third each when the machine is idle; with the other test worker loading both
    # cores one process can get much less CPU, yet none may be shut out)
    assert all(before[i] >= 0.15 * before.total() for i in "012"), before
    assert all(after[i] >= 0.3 * after.total() for i in "12"), after
    assert all(total[i] >= 0.2 * total.total() for i in "12"), total


def play(
    instances: Instances, feeds: ChangingFeeds, receiver: WebhookReceiver, store: Store
) -> Run:
    """Every feed polled; a change, alerted; instance 0 killed with polls under way (its
    requests held open); a second change, alerted."""
    served = lambda: {r.path for r in feeds.server.requests}  # noqa: E731
    wait_until(lambda: served() >= set(feeds.paths), 30, "every feed polled once")
    feeds.change()
    wait_until(lambda: len(receiver.requests) >= FEEDS, 30, "the first alerts")
    # Recorded too, so the instance killed next has no delivery of its own under way.
    wait_until(lambda: all_sent(store), 10, "the first deliveries recorded")

    run = Run()
    feeds.hold.set()
    run.held_from = time.monotonic()  # every request of instance 0 from now on is held
    wait_until(lambda: len(held(feeds.server, run.held_from)) >= 3, 10, "held requests")
    instances.processes[int(KILLED)].send_signal(signal.SIGKILL)
    instances.processes[int(KILLED)].wait(10)
    run.killed_at = time.monotonic()
    run.held = held(feeds.server, run.held_from)
    run.lease_ends = lease_ends(store, feeds.server, run.held)
    feeds.change()
    wait_until(lambda: len(receiver.requests) >= CHANGES * FEEDS, 30, "the second alerts")
    wait_until(lambda: all_sent(store), 10, "the second deliveries recorded")
    return run


def held(server: FeedServer, since: float) -> list[RecordedRequest]:
    return [r for r in server.requests if r.time >= since and r.headers["x-instance"] == KILLED]


LEASES_LEFT = text(
    "SELECT url, EXTRACT(EPOCH FROM lease_until - (clock_timestamp() AT TIME ZONE 'UTC'))"
    " FROM feeds WHERE lease_until IS NOT NULL"
)


def lease_ends(
    store: Store, server: FeedServer, requests: list[RecordedRequest]
) -> dict[str, float]:
    """When the lease behind each request ends, on the feed server's clock (the database
    keeps it on its own: the seconds it has left are read against both at once)."""
    with store.engine.connect() as conn:
        now = time.monotonic()
        left = {url: float(seconds) for url, seconds in conn.execute(LEASES_LEFT)}
    return {r.path: now + left[server.url(r.path)] for r in requests}


def all_sent(store: Store) -> bool:
    records = store.list_alerts(limit=10 * FEEDS)
    return all(d.state == "sent" for r in records for d in r.deliveries)


# -- the same sharing in one process, where the timing is under the test's control --------


class FirstMoment(random.Random):
    """A random source whose ``uniform`` answers its lower bound: a claim starts with its tick."""

    def uniform(self, a: float, b: float) -> float:
        return a


def service_settings(
    tmp_path: Path, db: str, server: FeedServer, paths: list[str], instance: int, *, extra: str
) -> Settings:
    feeds = "\n".join(
        f'  - {{url: "{server.url(p)}", headers: {{X-Instance: "{instance}"}}}}' for p in paths
    )
    path = tmp_path / f"service-{instance}.yaml"
    path.write_text(
        f'database: "{db}"\nhttp: null\ndefaults: {{interval: 1s}}\n{extra}\nfeeds:\n{feeds}\n',
        encoding="utf-8",
    )
    return load_settings(path, {})


async def test_a_busy_service_claims_only_its_free_slots_and_refills_them_before_the_next_tick(
    db_url: str, feed_server: FeedServer, tmp_path: Path
) -> None:
    """Claiming twice its fetch slots once a tick, a busy instance held feeds it could not
    start while others idled, and polled at most that many feeds per tick."""
    from monitor.app import App
    from monitor.schedule import Service

    paths = [f"/slow/{n}.xml" for n in range(24)]
    slow = Response(body=rss(("x", "Weather", "Sunny.", None)), delay=0.2)
    for path in paths:
        feed_server.set_handler(path, lambda _request: slow)
    polling = "polling: {parse_workers: 0, max_concurrency: 3, per_host: 3}"
    settings = service_settings(
        tmp_path, db_url, feed_server, paths, 0, extra=f"service: {{tick: 30s}}\n{polling}"
    )
    engine = create_db_engine(db_url)
    count = text("SELECT count(lease_until), count(last_polled_at) FROM feeds")

    def sample() -> tuple[int, int]:
        with engine.connect() as conn:
            leased, polled = conn.execute(count).one()
        return leased, polled

    leased: list[int] = []
    async with await asyncio.to_thread(App, settings) as app:
        service = Service(app)
        service.rng = FirstMoment()  # the first tick claims at once; the next is in 30 s
        stop = asyncio.Event()
        running = asyncio.create_task(service.run(stop))
        deadline = time.monotonic() + 15
        while (now := await asyncio.to_thread(sample))[1] < len(paths):
            leased.append(now[0])
            assert time.monotonic() < deadline, f"{now[1]} of {len(paths)} feeds polled"
            await asyncio.sleep(0.02)
        stop.set()
        await running
    engine.dispose()
    assert 0 < max(leased) <= 3, leased
    assert feed_server.max_in_flight <= 3


async def test_two_services_share_light_load_whatever_the_phases_of_their_ticks(
    fresh_database: str, feed_server: FeedServer, tmp_path: Path
) -> None:
    """Two instances whose ticks are a quarter of a tick apart: when each claimed as it
    ticked, the one that looked first after feeds fell due took three quarters of them."""
    from monitor.app import App
    from monitor.schedule import Service

    paths = [f"/light/{n}.xml" for n in range(30)]
    for path in paths:
        feed_server.set_feed(path, rss(("x", "Weather", "Sunny.", None)), etag='"1"')
    # jitter: the feeds fall due apart, not in one batch (the first poll is all at once)
    extra = f"service: {{tick: {LIGHT_TICK:g}s}}\npolling: {{parse_workers: 0, jitter: 0.5}}"
    apps = [
        await asyncio.to_thread(
            App, service_settings(tmp_path, fresh_database, feed_server, paths, i, extra=extra)
        )
        for i in range(2)
    ]
    stop = asyncio.Event()
    running = [asyncio.create_task(Service(apps[0]).run(stop))]
    await asyncio.sleep(LIGHT_TICK / 10)
    running.append(asyncio.create_task(Service(apps[1]).run(stop)))
    deadline = time.monotonic() + 30
    while len(feed_server.requests) < 10 * len(paths):
        assert time.monotonic() < deadline, f"{len(feed_server.requests)} polls"
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*running)
    for app in apps:
        await app.aclose()
    # The first polls are one claim (every feed is due at once): one draw, not counted.
    polls = by_instance([r for r in feed_server.requests if "if-none-match" in r.headers])
    assert all(polls[i] >= 0.35 * polls.total() for i in "01"), polls


async def test_a_claim_waiting_for_its_moment_does_not_hold_up_a_stop(
    sqlite_url: str, feed_server: FeedServer, tmp_path: Path
) -> None:
    """The random start of a claim can be most of a long tick away: a stop (or a reload)
    cuts the wait short instead of waiting for it, and claims nothing."""
    from monitor.app import App
    from monitor.schedule import Service

    class LastMoment(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    feed_server.set_feed("/feed.xml", rss(("x", "Weather", "Sunny.", None)))
    extra = "service: {tick: 10m}\npolling: {parse_workers: 0}"
    settings = service_settings(tmp_path, sqlite_url, feed_server, ["/feed.xml"], 0, extra=extra)
    async with await asyncio.to_thread(App, settings) as app:
        service = Service(app)
        service.rng = LastMoment()
        stop = asyncio.Event()
        running = asyncio.create_task(service.run(stop))
        while service.claiming is None:  # the first tick has come: its claim waits 10 min
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(running, 5)
    assert feed_server.requests == []
