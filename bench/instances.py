"""Several instances on one PostgreSQL: ``bench/poll.py --database
postgresql+psycopg://… --instances N``.

For each k from 1 to N: a fresh database, k ``monitor run`` processes on it with the same
configuration (as replicas run), and the three passes of the one-process benchmark (cold,
warm, mixed). Each pass starts when one UPDATE makes every feed due at once, and ends when
the last feed's poll is recorded; both times are read on the database server's clock, the
clock the instances' leases use. The polls each instance made are counted from its log
(one line per poll), so the table shows how the work was shared as well as how fast.

The feeds are synced and pushed a day ahead before the instances start, so a pass starts
with every instance running and idle; ``service.tick`` is 0.1 s, so each one starts claiming
within 0.1 s of the UPDATE. It does not check correctness beyond the mixed
pass's sanity check (one new item per changed feed); ``tests/test_instances_pg.py`` does.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from feedhost import REPO

# poll.py runs as ``__main__``: this imports it a second time, as ``poll``, which costs only
# its light module body (it imports heavy modules inside the functions that use them).
from poll import (
    FeedHostProcess,
    ProcessWatch,
    Usage,
    changed_feeds,
    database,
    frozen,
    write_config,
)

START_TIMEOUT = 60.0  # seconds for k processes to start on a busy machine
PASS_TIMEOUT = 600.0
POLL_LINE = b" feed="  # the service's one log line per poll (monitor/pipeline.py)
FAILED = b" state="  # only a failed poll's line names its state


@frozen
class InstancesPass:
    instances: int
    name: str
    feeds: int
    wall: float  # seconds, on the database clock
    polls: list[int]  # by instance, from their logs
    failed: int  # polls that failed, from the logs
    new: int  # items stored during the pass
    usage: Usage

    @property
    def feeds_per_s(self) -> float:
        return self.feeds / self.wall


class Fleet:
    """k ``monitor run`` processes on one configuration, each logging to its own file."""

    def __init__(self, config: Path, count: int, logs: Path) -> None:
        self.logs = [logs / f"instance-{i}.log" for i in range(count)]
        argv = [sys.executable, "-m", "monitor", "run", "--config", str(config)]
        self.processes = []
        for log in self.logs:
            with log.open("wb") as out:
                self.processes.append(
                    subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
                )

    def wait_started(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        for process, log in zip(self.processes, self.logs, strict=True):
            while b"service started" not in log.read_bytes():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"instance did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.05)

    def polls(self) -> list[int]:
        return [log.read_bytes().count(POLL_LINE) for log in self.logs]

    def failed(self) -> int:
        return sum(log.read_bytes().count(FAILED) for log in self.logs)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Feeds:
    """The bench's window on the feeds table (raw SQL: this is not the monitor's code)."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine

        self.engine = create_engine(url)

    def prepare(self, url: str, urls: list[str]) -> None:
        """Migrate and sync the feeds as the instances will, then push them a day ahead."""
        from sqlalchemy import text

        from monitor.store import FeedSpec, Store
        from monitor.store.engine import create_db_engine, migrate
        from monitor.types import utcnow

        engine = create_db_engine(url)
        try:
            migrate(engine)
            specs = [FeedSpec(url=u, name=f"feed {i}") for i, u in enumerate(urls)]
            Store(engine).sync_feeds(specs, utcnow())
        finally:
            engine.dispose()
        with self.engine.begin() as c:
            c.execute(
                text("UPDATE feeds SET next_poll_at = now() AT TIME ZONE 'UTC' + interval '1 day'")
            )

    def make_due(self) -> datetime:
        from sqlalchemy import text

        with self.engine.begin() as c:
            # naive UTC, as the monitor stores its times (monitor/store/schema.py)
            start: datetime = c.execute(text("SELECT now() AT TIME ZONE 'UTC'")).scalar_one()
            c.execute(text("UPDATE feeds SET next_poll_at = :t"), {"t": start})
        return start

    def wait_polled(self, since: datetime, feeds: int) -> datetime:
        """The time the last feed's poll since ``since`` was recorded, once all are."""
        from sqlalchemy import text

        query = text("SELECT count(*), max(last_polled_at) FROM feeds WHERE last_polled_at >= :t")
        deadline = time.monotonic() + PASS_TIMEOUT
        while True:
            with self.engine.connect() as c:
                done, last = c.execute(query, {"t": since}).one()
            if done >= feeds:
                return last
            if time.monotonic() > deadline:
                raise SystemExit(f"only {done} of {feeds} feeds polled in {PASS_TIMEOUT:.0f} s")
            time.sleep(0.05)

    def items(self) -> int:
        from sqlalchemy import text

        with self.engine.connect() as c:
            return c.execute(text("SELECT count(*) FROM items")).scalar_one()


@contextmanager
def fleet(config: Path, count: int, logs: Path) -> Iterator[Fleet]:
    running = Fleet(config, count, logs)
    try:
        running.wait_started()
        yield running
    finally:
        running.stop()


def run_instances(
    args: argparse.Namespace, host: FeedHostProcess, files: list[Path]
) -> list[InstancesPass]:
    urls = [host.url(i) for i in range(args.feeds)]
    results = []
    for count in range(1, args.instances + 1):
        with (
            tempfile.TemporaryDirectory(prefix="bench-instances-") as tmp,
            database(args.database, tmp) as db,
        ):
            config = Path(tmp) / "bench.yaml"
            # The shortest tick: a claim starts at a random moment within its tick, and a
            # pass should start when its feeds fall due, not up to a second later.
            extra = {"http": None, "service": {"tick": "0.1s"}}
            write_config(config, urls, db, args.workers, extra)
            feeds = Feeds(db)
            try:
                feeds.prepare(db, urls)
                with fleet(config, count, Path(tmp)) as running:
                    watch = ProcessWatch(host.proc.pid, "postgres")
                    for name in ("cold", "warm"):
                        results.append(one_pass(name, count, feeds, running, watch, args.feeds))
                    bumped = host.ask({"bump": changed_feeds(args.feeds, files)})["bumped"]
                    results.append(one_pass("mixed", count, feeds, running, watch, args.feeds))
            finally:
                feeds.engine.dispose()
        if results[-1].new != bumped:
            print(
                f"WARNING: {count} instances: the mixed pass stored {results[-1].new} new "
                f"items, not {bumped}"
            )
    return results


def one_pass(
    name: str, count: int, feeds: Feeds, running: Fleet, watch: ProcessWatch, n: int
) -> InstancesPass:
    polls, failed, items = running.polls(), running.failed(), feeds.items()
    watch.start()
    start = feeds.make_due()
    end = feeds.wait_polled(start, n)
    usage = watch.stop()
    time.sleep(0.2)  # the last log lines are written just after the poll's record
    return InstancesPass(
        instances=count,
        name=name,
        feeds=n,
        wall=(end - start).total_seconds(),
        polls=[b - a for a, b in zip(polls, running.polls(), strict=True)],
        failed=running.failed() - failed,
        new=feeds.items() - items,
        usage=usage,
    )


def print_instances(results: list[InstancesPass]) -> None:
    head = (
        f"{'inst':>4} {'pass':<6}{'feeds':>6}{'err':>5}{'wall s':>8}{'feeds/s':>9}{'new':>7}"
        f"{'CPU mon':>8}{'host':>6}{'db':>6}{'other':>6}{'ms/feed':>8}  polls by instance"
    )
    print("\n" + head + "\n" + "-" * (len(head) + 10))
    for r in results:
        u = r.usage
        cpu = "".join(
            f"{c / r.wall:>{w}.0%}"
            for c, w in (
                (u.main_cpu + u.children_cpu, 8),
                (u.host_cpu, 6),
                (u.db_cpu, 6),
                (u.other_cpu, 6),
            )
        )
        shares = " ".join(f"{p}" for p in r.polls)
        ms = (u.main_cpu + u.children_cpu) / r.feeds * 1000
        print(
            f"{r.instances:>4} {r.name:<6}{r.feeds:>6}{r.failed:>5}{r.wall:>8.2f}"
            f"{r.feeds_per_s:>9.1f}{r.new:>7}{cpu}{ms:>8.2f}  {shares}"
        )
    print(
        "wall: from the UPDATE that makes every feed due to the last poll recorded, on the "
        "database clock.\nCPU mon: the monitor processes and their parse workers; host: the "
        "feed host; db: PostgreSQL; other: everything else on the machine (100% = one core).\n"
        "ms/feed: CPU of the monitor processes per feed (robust to a busy machine); err: "
        "failed polls."
    )
    by_pass: dict[str, list[InstancesPass]] = {}
    for r in results:
        by_pass.setdefault(r.name, []).append(r)
    for name, rows in by_pass.items():
        figures = ", ".join(f"{r.instances}: {r.feeds_per_s:.0f}" for r in rows)
        print(f"{name} feeds/s by instances: {figures}")
