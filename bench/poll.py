"""Polling throughput benchmark (issue 3): ``.venv/bin/python bench/poll.py``.

Serves N feeds made from the corpus (``feedhost.py``, in its own process, on ``--hosts``
loopback addresses) and polls them all with one ``App`` three times: cold (every item new),
warm (every feed answers 304) and mixed (10% of the feeds gained one item). Then it parses
the same N bodies with bare ``feedparser.parse`` in this process, one after the other: the
baseline a cold pass has to beat by overlapping parsing with I/O on every core.

With ``--instances N`` (PostgreSQL only) it runs the same passes through 1, 2, … N ``monitor
run`` processes sharing one database instead, and prints each count's throughput and each
process's share of the polls (``instances.py``).

Memory: the kernel's peak RSS (``VmHWM``, which ``getrusage`` reports as ``ru_maxrss``) of
this process and of each child process (forkserver, resource tracker, parse workers), reset
through ``/proc/<pid>/clear_refs`` before each phase, so each phase has its own exact peak;
plus the largest proportional set size (PSS: shared pages counted once) of all of them at one
moment, sampled every 250 ms (reading ``smaps_rollup`` costs ~2 ms per 200 MB process, so a
faster sampler would itself load the process it measures). CPU: ``/proc/<pid>/stat`` times.
The feed host's CPU (and PostgreSQL's) is shown apart from the monitor's, and so is the CPU
of every other process on the machine: on a shared machine that column says how far to trust
the figures. Linux only.

Heavy modules are imported inside the functions that use them: every parse worker imports
``__main__`` again (multiprocessing does so for a script, not for ``python -m``), so the
module body stays light and the workers weigh what they weigh under ``python -m monitor``.

It does not test correctness beyond a sanity check (the mixed pass must find exactly one new
item per changed feed); the suite does that.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from feedhost import CONTENT_TYPE, REPO, corpus_files, default_corpus, injectable

# The checkout itself, not whatever ``monitor`` the environment resolves (an editable install
# made before the package had an __init__.py resolves it as an empty namespace package).
sys.path.insert(0, str(REPO))

if TYPE_CHECKING:
    from monitor.app import App

frozen = dataclass(frozen=True, slots=True, kw_only=True)
MB = 1024.0  # /proc reports kB
TICKS = os.sysconf("SC_CLK_TCK")
WATCHLISTS = [
    {"name": "csto", "terms": ["CSTO", "Collective Security Treaty Organization", "ОДКБ"]},
    {"name": "kazakhstan", "terms": ["Kazakhstan", "Казахстан", "Tokayev", "Токаев"]},
    {"name": "russia", "query": "Russia OR Россия OR Kremlin OR Кремль OR Putin OR Путин"},
    {"name": "central-asia", "terms": ["Uzbekistan", "Kyrgyzstan", "Tajikistan", "Astana"]},
]
SAMPLE_EVERY = 0.25  # seconds
TARGET_WARM = 500.0  # feeds/s
TARGET_RSS_MB = 300.0


@frozen
class Usage:
    """What the processes used during one phase."""

    main_peak_mb: float
    children_peak_mb: float  # sum of each child's own peak: an upper bound
    total_peak_mb: float  # largest sampled PSS of main + children at one moment
    main_cpu: float  # seconds
    children_cpu: float
    host_cpu: float  # the feed host process
    db_cpu: float  # PostgreSQL's processes (SQLite runs inside this process)
    other_cpu: float  # every other process on the machine: noise in the figures
    children: int


@frozen
class PassResult:
    name: str
    feeds: int
    wall: float
    statuses: Counter[str]
    connections: int  # TCP connections the feed host accepted
    new: int
    matched: int
    errors: Counter[str]
    usage: Usage

    @property
    def feeds_per_s(self) -> float:
        return self.feeds / self.wall

    @property
    def items_per_s(self) -> float:
        return self.new / self.wall


@frozen
class Baseline:
    name: str
    feeds: int
    entries: int
    wall: float
    other_cpu: float  # seconds used by every other process on the machine meanwhile


# -- processes ---------------------------------------------------------------------------


def _proc_kb(pid: int, file: str, field: str) -> float:
    """A kB figure from ``/proc/<pid>/status`` (VmRSS, VmHWM) or ``smaps_rollup`` (Pss: shared
    pages split between the processes sharing them, so a sum over processes is the memory
    really used); 0 for a process that is gone."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/{file}") as f:
        for line in f:
            if line.startswith(field + ":"):
                return float(line.split()[1])
    return 0.0


def _cpu_seconds(pid: int) -> float:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    return 0.0


def _machine_busy_seconds() -> float:
    """CPU time every process on the machine has used since boot (``/proc/stat``)."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, f.readline().split()[1:9]
        )
    return (user + nice + system + irq + softirq + steal) / TICKS


def _server_cpu(name: str) -> dict[int, float]:
    """CPU seconds of every process called ``name`` (a database server's backends)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/comm") as f:
                if f.read().strip() == name:
                    found[int(entry)] = _cpu_seconds(int(entry))
    return found


def descendants(root: int, exclude: int) -> list[int]:
    """Every process below ``root`` except the ``exclude`` subtree (the feed host)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rpartition(")")[2].split()[1])
                parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child != exclude:
                found.append(child)
                todo.append(child)
    return found


class ProcessWatch:
    """Per-phase peak RSS and CPU of this process and its children (not the feed host), and
    the CPU of the feed host, of the database server (``db_server``: its process name) and of
    everything else on the machine."""

    def __init__(self, feed_host_pid: int, db_server: str | None = None) -> None:
        self._host = feed_host_pid
        self._db_server = db_server
        self._db0: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sampled = 0.0
        self._pids: list[int] = []
        self._cpu0 = (0.0, 0.0, 0.0, 0.0)

    def _all(self) -> list[int]:
        return [os.getpid(), *self._pids]

    def start(self) -> None:
        self._pids = descendants(os.getpid(), self._host)
        for pid in self._all():
            with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
        self._cpu0 = self._cpu()
        self._db0 = _server_cpu(self._db_server) if self._db_server else {}
        self._sampled = 0.0
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _cpu(self) -> tuple[float, float, float, float]:
        children = sum(_cpu_seconds(p) for p in self._pids)
        return (
            _cpu_seconds(os.getpid()),
            children,
            _cpu_seconds(self._host),
            _machine_busy_seconds(),
        )

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            self._take()

    def _take(self) -> None:
        self._sampled = max(
            self._sampled, sum(_proc_kb(p, "smaps_rollup", "Pss") for p in self._all())
        )

    def stop(self) -> Usage:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._take()
        # Children born during the phase (parse workers start at the first parse, in the
        # processes of --instances): all their CPU was used within it.
        known = set(self._pids)
        self._pids += [p for p in descendants(os.getpid(), self._host) if p not in known]
        main, children, host, machine = (
            b - a for a, b in zip(self._cpu0, self._cpu(), strict=True)
        )
        db_now = _server_cpu(self._db_server) if self._db_server else {}
        db = sum(cpu - self._db0.get(pid, 0.0) for pid, cpu in db_now.items())
        return Usage(
            main_peak_mb=_proc_kb(os.getpid(), "status", "VmHWM") / MB,
            children_peak_mb=sum(_proc_kb(p, "status", "VmHWM") for p in self._pids) / MB,
            total_peak_mb=self._sampled / MB,
            main_cpu=main,
            children_cpu=children,
            host_cpu=host,
            db_cpu=db,
            other_cpu=max(0.0, machine - main - children - host - db),
            children=len(self._pids),
        )


class FeedHostProcess:
    """``feedhost.py`` in a child process, driven over its stdin/stdout."""

    def __init__(self, feeds: int, hosts: int, corpus: Path) -> None:
        script = Path(__file__).with_name("feedhost.py")
        argv = [sys.executable, str(script), f"--feeds={feeds}", f"--hosts={hosts}"]
        self.proc = subprocess.Popen(
            [*argv, f"--corpus={corpus}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.addresses = [tuple(a) for a in self._read()["addresses"]]

    def _read(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"feed host exited with {self.proc.wait(5)}")
        return json.loads(line)

    def ask(self, command: dict) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def url(self, index: int) -> str:
        host, port = self.addresses[index % len(self.addresses)]
        return f"http://{host}:{port}/feeds/{index}"

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # end of stdin stops it
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- the monitor -------------------------------------------------------------------------


@contextlib.contextmanager
def database(url: str | None, directory: str) -> Iterator[str]:
    """SQLite in ``directory``; for PostgreSQL a fresh database on that server, dropped after
    (so the cold pass is really cold)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    if url is None or make_url(url).get_backend_name() == "sqlite":
        yield url or f"sqlite:///{directory}/bench.db"
        return
    name = f"bench_poll_{os.getpid()}"
    admin = create_engine(make_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def write_config(
    path: Path, urls: list[str], db: str, workers: int | None, extra: dict | None = None
) -> None:
    import yaml

    polling: dict[str, object] = {} if workers is None else {"parse_workers": workers}
    config = {
        **(extra or {}),
        "database": db,
        # every item of the cold pass is matched, not only the last 24 hours': the worst case
        "defaults": {"backlog": "all"},
        "polling": polling,
        "feeds": [{"url": u, "name": f"feed {i}"} for i, u in enumerate(urls)],
        "watchlists": WATCHLISTS,  # no channels: alerts are stored, nothing is sent
    }
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")


async def start_workers(app: App) -> None:
    """Make the pool start every worker now, so no pass pays for process start-up."""
    from monitor.types import FetchResult

    tiny = FetchResult(
        url="http://127.0.0.1/",
        final_url="http://127.0.0.1/",
        status=200,
        body=b"<rss><channel><item><guid>x</guid></item></channel></rss>",
    )
    await asyncio.gather(*(app.parser.parse(tiny) for _ in range(max(1, app.parser.count))))


async def run_pass(
    app: App, name: str, host: FeedHostProcess, watch: ProcessWatch, n: int
) -> PassResult:
    before = host.ask({"stats": True})
    watch.start()
    started = time.perf_counter()
    feeds = await app.pipeline.claim_feeds(only_due=False, limit=n)
    reports = await app.pipeline.poll_feeds(feeds)
    wall = time.perf_counter() - started
    usage = watch.stop()
    after = host.ask({"stats": True})
    served = Counter(after["responses"]) - Counter(before["responses"])
    return PassResult(
        name=name,
        feeds=len(reports),
        wall=wall,
        statuses=served,
        connections=after["connections"] - before["connections"],
        new=sum(r.new for r in reports),
        matched=sum(r.matched for r in reports),
        errors=Counter((r.error or "")[:60] for r in reports if r.state != "ok"),
        usage=usage,
    )


def changed_feeds(n: int, files: list[Path]) -> list[int]:
    """10% of the feeds, spread evenly, among those whose document can take a new item."""
    candidates = [i for i in range(n) if injectable(files[i % len(files)].read_bytes())]
    want = min(len(candidates), max(1, n // 10))
    return [candidates[j * len(candidates) // want] for j in range(want)]


async def run_monitor(
    args: argparse.Namespace, host: FeedHostProcess, files: list[Path]
) -> tuple[dict[str, float], list[PassResult]]:
    from monitor.app import App
    from monitor.config import load_settings

    urls = [host.url(i) for i in range(args.feeds)]
    with (
        tempfile.TemporaryDirectory(prefix="bench-poll-") as tmp,
        database(args.database, tmp) as db,
    ):
        config = Path(tmp) / "bench.yaml"
        write_config(config, urls, db, args.workers)
        settings = load_settings(config, {})
        server = None if db.startswith("sqlite") else "postgres"
        watch = ProcessWatch(host.proc.pid, server)
        watch.start()
        started = time.perf_counter()
        app = await asyncio.to_thread(App, settings)
        startup = {"app": time.perf_counter() - started}
        try:
            started = time.perf_counter()
            await start_workers(app)
            startup["workers"] = time.perf_counter() - started
            startup["rss_mb"] = watch.stop().main_peak_mb
            passes = [await run_pass(app, "cold", host, watch, args.feeds)]
            passes.append(await run_pass(app, "warm", host, watch, args.feeds))
            bumped = host.ask({"bump": changed_feeds(args.feeds, files)})["bumped"]
            passes.append(await run_pass(app, "mixed", host, watch, args.feeds))
            startup["bumped"] = bumped
        finally:
            await app.aclose()
    return startup, passes


# -- the baseline ------------------------------------------------------------------------


def run_baseline(bodies: list[bytes], *, fast: bool) -> Baseline:
    """Bare feedparser, sequential, one process: what one core does with no I/O at all."""
    import feedparser

    options = {"sanitize_html": False, "resolve_relative_uris": False} if fast else {}
    headers = {"content-type": CONTENT_TYPE}
    entries = 0
    busy, cpu, started = _machine_busy_seconds(), time.process_time(), time.perf_counter()
    for body in bodies:
        entries += len(
            feedparser.parse(io.BytesIO(body), response_headers=headers, **options).entries
        )
    name = "feedparser, sanitize/resolve off" if fast else "feedparser.parse (defaults)"
    wall = time.perf_counter() - started
    other = _machine_busy_seconds() - busy - (time.process_time() - cpu)
    return Baseline(
        name=name, feeds=len(bodies), entries=entries, wall=wall, other_cpu=max(0.0, other)
    )


# -- report ------------------------------------------------------------------------------


def print_table(startup: dict[str, float], passes: list[PassResult], feeds: int) -> None:
    print(
        f"\nstart-up: App (migrate, {feeds} feeds synced) {startup['app']:.2f} s, "
        f"parse workers {startup['workers']:.2f} s, peak RSS {startup['rss_mb']:.0f} MB"
    )
    head = (
        f"{'pass':<6}{'feeds':>6}{'200':>6}{'304':>6}{'err':>5}{'conns':>6}"
        f"{'new items':>10}{'alerts':>8}"
        f"{'wall s':>8}{'feeds/s':>9}{'items/s':>9}{'CPU main':>9}{'wkrs':>6}{'host':>6}"
        f"{'db':>6}{'other':>6}{'RSS main':>9}{'chld':>6}{'PSS all':>8}"
    )
    print(head + "\n" + "-" * len(head))
    for p in passes:
        u = p.usage
        cpu = "".join(
            f"{c / p.wall:>{w}.0%}"
            for c, w in (
                (u.main_cpu, 9),
                (u.children_cpu, 6),
                (u.host_cpu, 6),
                (u.db_cpu, 6),
                (u.other_cpu, 6),
            )
        )
        print(
            f"{p.name:<6}{p.feeds:>6}{p.statuses['200']:>6}{p.statuses['304']:>6}"
            f"{sum(p.errors.values()):>5}{p.connections:>6}{p.new:>10}{p.matched:>8}{p.wall:>8.2f}"
            f"{p.feeds_per_s:>9.1f}{p.items_per_s:>9.0f}{cpu}"
            f"{u.main_peak_mb:>9.0f}{u.children_peak_mb:>6.0f}{u.total_peak_mb:>8.0f}"
        )
        for error, count in p.errors.most_common(3):
            print(f"{'':6}error x{count}: {error}")
    per_feed = ", ".join(f"{p.name} {p.usage.main_cpu / p.feeds * 1000:.2f}" for p in passes)
    print(f"CPU of this process per feed, ms (robust to a busy machine): {per_feed}")
    print(
        "200/304: responses served; conns: TCP connections the feed host accepted.\n"
        "CPU: CPU seconds / wall (100% = one core) of this process, its "
        f"{passes[0].usage.children} child processes (parse workers, forkserver, resource "
        "tracker), the feed host, PostgreSQL's processes (db; SQLite runs in this process), "
        "and every other process on the machine.\n"
        "RSS main: this process's peak; chld: the sum of each child's own peak; PSS all: the "
        "largest proportional set size of all of them together, sampled every 250 ms. MB."
    )


def print_baselines(baselines: list[Baseline]) -> None:
    for b in baselines:
        print(
            f"baseline {b.name:<34}{b.feeds:>6} feeds {b.entries:>7} entries {b.wall:>7.2f} s "
            f"{b.feeds / b.wall:>7.1f} feeds/s {b.entries / b.wall:>7.0f} items/s "
            f"(other processes: {b.other_cpu / b.wall:.0%} CPU)"
        )


def check_targets(
    startup: dict[str, float], passes: list[PassResult], bare: Baseline, feeds: int
) -> bool:
    cold, warm, mixed = passes
    bare_rate = bare.feeds / bare.wall
    main_peak = max(startup["rss_mb"], *(p.usage.main_peak_mb for p in passes))
    total_peak = max(p.usage.total_peak_mb for p in passes)
    checks = [
        (
            f"cold feeds/s >= bare feedparser: {cold.feeds_per_s:.1f} vs {bare_rate:.1f}",
            cold.feeds_per_s >= bare_rate,
        ),
        (
            f"warm >= {TARGET_WARM:.0f} feeds/s: {warm.feeds_per_s:.1f}",
            warm.feeds_per_s >= TARGET_WARM,
        ),
        (
            f"peak RSS of the monitor process < {TARGET_RSS_MB:.0f} MB: {main_peak:.0f} MB",
            main_peak < TARGET_RSS_MB,
        ),
        (
            f"peak memory with its children (PSS) < {TARGET_RSS_MB:.0f} MB: {total_peak:.0f} MB",
            total_peak < TARGET_RSS_MB,
        ),
        (
            f"mixed: one new item per changed feed: {mixed.new} of {startup['bumped']:.0f}",
            mixed.new == startup["bumped"],
        ),
        ("warm pass: every response a 304", warm.statuses["304"] == warm.feeds == feeds),
    ]
    print("\ntargets (issue 3, 2-core machine):")
    for text, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    noisy = [p.name for p in passes if p.usage.other_cpu / p.wall > 0.1]
    noisy += ["the baseline"] if bare.other_cpu / bare.wall > 0.1 else []
    if noisy:
        print(
            f"WARNING: other processes used over 10% of a core during {', '.join(noisy)}: "
            "those figures understate the monitor; rerun on an idle machine."
        )
    return all(ok for _, ok in checks)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000, help="number of feeds (default 1000)")
    parser.add_argument(
        "--hosts",
        type=int,
        default=50,
        choices=range(1, 255),
        metavar="1..254",
        help="loopback addresses 127.0.0.1..N to spread feeds over (default 50)",
    )
    parser.add_argument(
        "--database",
        help="database URL (default: SQLite in a temp dir); for "
        "PostgreSQL a fresh database is created on that server and dropped",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="parse_workers (default: the configuration default, one per core)",
    )
    parser.add_argument("--corpus", type=Path, default=None, help="directory of *.xml feeds")
    parser.add_argument(
        "--instances",
        type=int,
        default=None,
        choices=range(1, 9),
        metavar="1..8",
        help="run 1, 2, … N `monitor run` processes on one PostgreSQL database (--database) "
        "instead of one App in this process, and print the throughput of each count",
    )
    args = parser.parse_args()
    if args.instances and not (args.database or "").startswith("postgres"):
        parser.error("--instances needs --database postgresql+psycopg://… (SQLite serves one)")
    return args


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    corpus = args.corpus or default_corpus()
    files = corpus_files(corpus)
    workers = args.workers if args.workers is not None else f"default ({os.cpu_count()} cores)"
    db = args.database or "SQLite in a temp dir"
    print(
        f"poll benchmark: {args.feeds} feeds from {len(files)} files in {corpus}\n"
        f"  {args.hosts} hosts (127.0.0.1-127.0.0.{args.hosts}), parse_workers={workers}, "
        f"database={db}, cpu_count={os.cpu_count()}"
    )
    host = FeedHostProcess(args.feeds, args.hosts, corpus)
    if args.instances:
        from instances import print_instances, run_instances

        try:
            print_instances(run_instances(args, host, files))
        finally:
            host.close()
        return
    try:
        startup, passes = asyncio.run(run_monitor(args, host, files))
    finally:
        host.close()
    bodies = [files[i % len(files)].read_bytes() for i in range(args.feeds)]
    baselines = [run_baseline(bodies, fast=False), run_baseline(bodies, fast=True)]
    print_table(startup, passes, args.feeds)
    print_baselines(baselines)
    ok = check_targets(startup, passes, baselines[0], args.feeds)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
