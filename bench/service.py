"""Service benchmark: ``monitor run`` in its steady state. ``.venv/bin/python bench/service.py``.

Runs the real CLI (``python -m monitor run --config …``, a subprocess) against ``feedhost.py``
(N corpus feeds on ``--hosts`` loopback addresses, in its own process), every feed due each
minute (``interval: 1m``, hints and back-off capped at a minute, the service's own jitter).
It waits until every feed has been polled once (the cold pass), then measures for
``--minutes`` while bumping ``--change`` of the feeds each minute (each gains one item), and
prints:
- polls, counted as the sum of ``feeds.poll_count`` (one per recorded poll) before and after,
  and by outcome from the service's ``/metrics``;
- CPU seconds per 1,000 polls of the service's processes (the service and every descendant:
  forkserver, parse workers, resource tracker), from ``/proc/<pid>/stat``: utime + stime of
  the live ones plus cutime + cstime (children that exited and were reaped) of each;
  PostgreSQL's backends for the bench database, the server's shared processes, the feed
  host, this bench and every other process on the machine apart;
- memory as PSS (``/proc/<pid>/smaps_rollup``: shared pages split between the processes
  sharing them, so the sum is what the service really costs) of each of those processes and
  their sum, sampled every 250 ms: peak and mean. ``ru_maxrss`` is not used: a child started
  with vfork reports its parent's peak at exec;
- each minute, how far the service is behind: the feeds overdue by more than
  ``OVERDUE`` seconds and the oldest of them.

Descendants are found through ``/proc/<pid>/task/*/children`` where the kernel has it, else
by each process's parent in ``/proc/<pid>/stat``. The sampler runs in this process's main
thread between bumps; its own CPU is printed too. Linux only.

It does not check correctness (the suite does) and does not compare against other tools.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from feedhost import REPO, corpus_files, default_corpus, injectable
from poll import WATCHLISTS, FeedHostProcess, database, frozen

TICKS = os.sysconf("SC_CLK_TCK")
MB = 1024.0  # /proc reports kB
PAGE_KB = os.sysconf("SC_PAGE_SIZE") / 1024
SAMPLE_EVERY = 0.25  # seconds between memory samples
BUMPS_PER_MINUTE = 6  # the minute's changes are spread over it, not sent in one burst
OVERDUE = 10.0  # seconds past next_poll_at that count as "behind"
NOISY = ": a busy machine, the figures are noisy"
START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
_LISTENING = re.compile(rb"http: listening on ([\d.]+):(\d+)")
_METRIC = re.compile(r"^(monitor_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$", re.M)


# -- /proc -------------------------------------------------------------------------------


@frozen
class Stat:
    pid: int
    ppid: int
    comm: str
    cpu: float  # utime + stime, seconds
    reaped: float  # cutime + cstime: children that exited and were waited for


def read_stat(pid: int) -> Stat | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    comm = text[text.index("(") + 1 : text.rindex(")")]
    fields = text.rpartition(")")[2].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return Stat(
        pid=pid,
        ppid=int(fields[1]),
        comm=comm,
        cpu=(utime + stime) / TICKS,
        reaped=(cutime + cstime) / TICKS,
    )


def read_cmdline(pid: int) -> str:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    return ""


def read_pss(pid: int) -> tuple[float, float, float]:
    """Pss, Pss_Anon and Pss_File in kB; zeros for a process that is gone."""
    found = {"Pss": 0.0, "Pss_Anon": 0.0, "Pss_File": 0.0}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in found:
                found[name] = float(rest.split()[0])
    return found["Pss"], found["Pss_Anon"], found["Pss_File"]


def read_rss(pid: int) -> float:
    """Resident set in kB from ``statm`` (cheap); 0 for a process that is gone."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/statm") as f:
        return float(f.read().split()[1]) * PAGE_KB
    return 0.0


def machine_busy() -> float:
    """CPU seconds every process on the machine has used since boot (``/proc/stat``)."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, f.readline().split()[1:9]
        )
    return (user + nice + system + irq + softirq + steal) / TICKS


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


_HAS_CHILDREN_FILE = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, parents first."""
    if _HAS_CHILDREN_FILE:
        children = _children_from_tasks
    else:
        parents: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and (stat := read_stat(int(entry))) is not None:
                parents.setdefault(stat.ppid, []).append(stat.pid)

        def children(pid: int) -> list[int]:
            return parents.get(pid, [])

    found, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        found.append(pid)
        todo.extend(sorted(children(pid)))
    return found


def _children_from_tasks(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(p) for p in f.read().split()]
    return found


def tree_cpu(pids: list[int]) -> float:
    """CPU of a process tree so far: each live process's own time plus what its reaped
    children used (a child's time moves into its parent's cutime when it is waited for)."""
    total = 0.0
    for pid in pids:
        if (stat := read_stat(pid)) is not None:
            total += stat.cpu + stat.reaped
    return total


class Names:
    """Stable labels for the service's processes: service, forkserver, resource tracker,
    parse worker 1, 2, … in the order they appear (a replaced worker gets a new number)."""

    def __init__(self, root: int) -> None:
        self.root = root
        self._labels: dict[int, str] = {root: "service"}
        self._workers = 0

    def label(self, pid: int) -> str:
        if pid not in self._labels:
            self._labels[pid] = self._classify(pid)
        return self._labels[pid]

    def _classify(self, pid: int) -> str:
        cmdline = read_cmdline(pid)
        stat = read_stat(pid)
        parent = self._labels.get(stat.ppid, "") if stat else ""
        if "resource_tracker" in cmdline:
            return "resource tracker"
        if "forkserver" in cmdline and parent != "forkserver":
            return "forkserver"
        if parent == "forkserver" or "spawn_main" in cmdline:
            self._workers += 1
            return f"parse worker {self._workers}"
        return f"{stat.comm if stat else 'process'} {pid}"


# -- PostgreSQL --------------------------------------------------------------------------


class PostgresCpu:
    """CPU of PostgreSQL's processes: the backends serving the bench database (their
    command line names it) and the server's shared processes (checkpointer, WAL writer,
    autovacuum, …: they work for every database on the server, the bench's among them).
    Backends are looked for at each sample, so one that starts and ends between samples
    is missed; the service's pool keeps its connections."""

    def __init__(self, database_name: str) -> None:
        self._marker = f" {database_name} "
        self._kind: dict[int, str | None] = {}  # pid -> "ours", "shared" or None
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}

    def sample(self) -> None:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            kind = self._kind.get(pid, "?")
            if kind == "?":
                kind = self._kind[pid] = self._classify(pid)
            if kind is None:
                continue
            stat = read_stat(pid)
            if stat is not None:
                self._first.setdefault(pid, 0.0)  # born after the reset: all of it counts
                self._last[pid] = stat.cpu

    def _classify(self, pid: int) -> str | None:
        stat = read_stat(pid)
        if stat is None or stat.comm != "postgres":
            return None
        cmdline = read_cmdline(pid)
        if self._marker in cmdline:
            return "ours"
        if "(" in cmdline:  # another database's backend: "… dbname 127.0.0.1(port) idle"
            return None
        return "shared"

    def reset(self) -> None:
        """From now on: processes known now count from their current time, new ones whole."""
        self.sample()
        self._first = dict(self._last)

    def total(self) -> float:
        return self.used("ours") + self.used("shared")

    def used(self, kind: str) -> float:
        return sum(
            self._last[pid] - self._first.get(pid, 0.0)
            for pid in self._last
            if self._kind.get(pid) == kind
        )


# -- the service -------------------------------------------------------------------------


def write_config(path: Path, urls: list[str], db: str, args: argparse.Namespace) -> None:
    import yaml

    polling: dict[str, object] = {"max_interval": "1m", "max_backoff": "1m"}
    if args.workers is not None:
        polling["parse_workers"] = args.workers
    if args.jitter is not None:
        polling["jitter"] = args.jitter
    config = {
        "database": db,
        "http": {"listen": "127.0.0.1:0"},
        "defaults": {"interval": "1m"},
        "polling": polling,
        "feeds": [{"url": u, "name": f"feed {i}", "interval": "1m"} for i, u in enumerate(urls)],
        "watchlists": WATCHLISTS,  # no channels: alerts are stored, nothing is sent
    }
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")


class FeedTable:
    """The bench's window on the feeds table (raw SQL: not the monitor's code)."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine

        self.engine = create_engine(url)
        self.sqlite = self.engine.dialect.name == "sqlite"

    def counts(self) -> tuple[int, int]:
        """(feeds polled at least once, polls recorded in all)."""
        from sqlalchemy import text

        query = text(
            "SELECT count(*), coalesce(sum(poll_count), 0) FROM feeds WHERE poll_count > 0"
        )
        with self.engine.connect() as c:
            polled, polls = c.execute(query).one()
        return int(polled), int(polls)

    def overdue(self, seconds: float) -> tuple[int, float]:
        """Feeds whose poll is more than ``seconds`` late, and the lateness of the oldest."""
        from sqlalchemy import text

        now = datetime.now(UTC).replace(tzinfo=None)  # naive UTC, as the monitor stores it
        cutoff = now.timestamp() - seconds
        bound: object = datetime.fromtimestamp(cutoff, UTC).replace(tzinfo=None)
        if self.sqlite:
            bound = bound.strftime("%Y-%m-%d %H:%M:%S.%f")  # type: ignore[attr-defined]
        query = text("SELECT count(*), min(next_poll_at) FROM feeds WHERE next_poll_at < :t")
        with self.engine.connect() as c:
            late, oldest = c.execute(query, {"t": bound}).one()
        if not late:
            return 0, 0.0
        if isinstance(oldest, str):
            oldest = datetime.fromisoformat(oldest)
        return int(late), (now - oldest).total_seconds()

    def close(self) -> None:
        self.engine.dispose()


class ServiceProcess:
    """``monitor run`` as a subprocess, logging to a file."""

    def __init__(self, config: Path, log: Path, python: str) -> None:
        self.log = log
        argv = [python, "-m", "monitor", "run", "--config", str(config)]
        self.argv = argv
        with log.open("wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        self.port = 0

    def wait_started(self) -> float:
        started = time.monotonic()
        while True:
            text = self.log.read_bytes()
            found = _LISTENING.search(text)
            if found and b"service started" in text:
                self.port = int(found.group(2))
                return time.monotonic() - started
            if self.proc.poll() is not None or time.monotonic() - started > START_TIMEOUT:
                raise SystemExit(f"the service did not start:\n{text.decode()[-3000:]}")
            time.sleep(0.1)

    def metrics(self) -> Counter[str]:
        """The service's counters (``monitor_*``), by name and labels."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read().decode()
        return Counter({m[1] + (m[2] or ""): float(m[3]) for m in _METRIC.finditer(body)})

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- measuring ---------------------------------------------------------------------------


@frozen
class Snapshot:
    """Cumulative counters at one moment."""

    at: float  # monotonic seconds
    polls: int
    service_cpu: float
    host_cpu: float
    machine: float
    bench: float
    postgres: float  # PostgreSQL's processes (0 on SQLite)
    by_process: dict[str, float]  # service CPU by process label (with reaped children)


class Memory:
    """PSS of the service's processes, sampled: per process and summed.

    Reading ``smaps_rollup`` walks the page tables (~7 ms of kernel time per 200 MB here),
    so at every sample only ``statm`` (RSS, a few microseconds) is read, and PSS is read
    again when the set of processes changed, when one's RSS moved by more than
    ``RESAMPLE_KB`` since, or every ``FULL_EVERY`` seconds; between those reads the last
    PSS figures stand. PSS cannot grow without RSS growing, so the peak is not missed."""

    RESAMPLE_KB = 1024.0
    FULL_EVERY = 2.0  # seconds

    def __init__(self, names: Names) -> None:
        self.names = names
        self.samples = 0
        self.reads = 0  # times PSS was read
        self.by_name: dict[str, list[float]] = {}
        self.sums: list[float] = []
        self.peak_split = (0.0, 0.0)  # anon, file at the summed peak
        self.minute_peak = 0.0
        self._rss: dict[int, float] = {}  # RSS at the last PSS read
        self._pss: dict[int, tuple[float, float, float]] = {}
        self._read_at = 0.0

    def sample(self, pids: list[int]) -> float:
        rss = {pid: read_rss(pid) for pid in pids}
        now = time.monotonic()
        if (
            rss.keys() != self._rss.keys()
            or now - self._read_at >= self.FULL_EVERY
            or any(abs(v - self._rss[p]) > self.RESAMPLE_KB for p, v in rss.items())
        ):
            self._pss = {pid: read_pss(pid) for pid in pids}
            self._rss, self._read_at = rss, now
            self.reads += 1
        total = anon = file = 0.0
        for pid, (pss, pss_anon, pss_file) in self._pss.items():
            if pss:
                self.by_name.setdefault(self.names.label(pid), []).append(pss)
                total, anon, file = total + pss, anon + pss_anon, file + pss_file
        if total > max(self.sums, default=0.0):
            self.peak_split = (anon, file)
        self.sums.append(total)
        self.samples += 1
        self.minute_peak = max(self.minute_peak, total)
        return total

    def reset(self) -> None:
        self.samples, self.reads, self.by_name, self.sums = 0, 0, {}, []
        self.peak_split, self.minute_peak = (0.0, 0.0), 0.0


class Bench:
    def __init__(
        self,
        args: argparse.Namespace,
        host: FeedHostProcess,
        service: ServiceProcess,
        table: FeedTable,
        postgres: PostgresCpu | None,
    ) -> None:
        self.args = args
        self.host = host
        self.service = service
        self.table = table
        self.postgres = postgres
        self.names = Names(service.proc.pid)
        self.memory = Memory(self.names)
        self.pids = [service.proc.pid]
        self.known: set[int] = set()
        files = corpus_files(args.corpus or default_corpus())
        bodies = [f.read_bytes() for f in files]
        self.candidates = [i for i in range(args.feeds) if injectable(bodies[i % len(bodies)])]
        self.rng = random.Random(args.seed)
        self.bumped = 0

    def sample(self) -> float:
        self.pids = descendants(self.service.proc.pid)
        if self.postgres is not None:
            self.postgres.sample()
        return self.memory.sample(self.pids)

    def snapshot(self) -> Snapshot:
        polls = self.table.counts()[1]
        self.pids = descendants(self.service.proc.pid)
        if self.postgres is not None:
            self.postgres.sample()
        by_process = {self.names.label(pid): tree_cpu([pid]) for pid in self.pids}
        return Snapshot(
            at=time.monotonic(),
            polls=polls,
            by_process=by_process,
            service_cpu=sum(by_process.values()),
            host_cpu=tree_cpu([self.host.proc.pid]),
            machine=machine_busy(),
            bench=own_cpu(),
            postgres=self.postgres.total() if self.postgres is not None else 0.0,
        )

    def warm_up(self) -> float:
        """Sample until every feed has been polled once; the seconds it took."""
        started = time.monotonic()
        limit = 300.0 + self.args.feeds * 0.3
        next_check = started
        while True:
            self._sleep_sampling(SAMPLE_EVERY)
            if time.monotonic() >= next_check:
                polled, _ = self.table.counts()
                if polled >= self.args.feeds:
                    return time.monotonic() - started
                if time.monotonic() - started > limit:
                    raise SystemExit(f"warm-up: {polled} of {self.args.feeds} feeds polled")
                if self.service.proc.poll() is not None:
                    raise SystemExit("the service exited during warm-up")
                next_check = time.monotonic() + 2.0

    def _sleep_sampling(self, seconds: float) -> None:
        """Sample memory every SAMPLE_EVERY for ``seconds``, keeping time with the clock."""
        end = time.monotonic() + seconds
        while (now := time.monotonic()) < end:
            self.sample()
            time.sleep(max(0.0, min(SAMPLE_EVERY, end - now)))

    def bump(self, count: int) -> None:
        if count <= 0 or not self.candidates:
            return
        ids = self.rng.sample(self.candidates, min(count, len(self.candidates)))
        self.bumped += self.host.ask({"bump": ids})["bumped"]

    def measure(self) -> tuple[Snapshot, Snapshot, list[str]]:
        """The measured minutes: bumps spread over each minute, a line per minute."""
        per_minute = self.args.change * self.args.feeds
        if self.postgres is not None:
            self.postgres.reset()
        self.memory.reset()
        first = previous = self.snapshot()
        lines = []
        steps = self.args.minutes * BUMPS_PER_MINUTE
        step_seconds = 60.0 / BUMPS_PER_MINUTE
        for step in range(steps):
            due = round(per_minute * (step + 1) / BUMPS_PER_MINUTE)
            self.bump(due - round(per_minute * step / BUMPS_PER_MINUTE))
            self._sleep_sampling(first.at + (step + 1) * step_seconds - time.monotonic())
            if (step + 1) % BUMPS_PER_MINUTE == 0:
                now = self.snapshot()
                lines.append(self._minute_line((step + 1) // BUMPS_PER_MINUTE, previous, now))
                print(lines[-1], flush=True)
                previous = now
                self.memory.minute_peak = 0.0
            if self.service.proc.poll() is not None:
                raise SystemExit("the service exited during the measurement")
        return first, previous, lines

    def _minute_line(self, minute: int, a: Snapshot, b: Snapshot) -> str:
        polls = b.polls - a.polls
        cpu = b.service_cpu - a.service_cpu
        per = cpu / polls * 1000 if polls else float("nan")
        late, oldest = self.table.overdue(OVERDUE)
        wall = b.at - a.at
        other = b.machine - a.machine - cpu - (b.host_cpu - a.host_cpu)
        other -= b.bench - a.bench + b.postgres - a.postgres
        return (
            f"{minute:>6}{polls:>7}{cpu:>8.2f}{per:>9.2f}{self.memory.sums[-1] / MB:>9.0f}"
            f"{self.memory.minute_peak / MB:>8.0f}{late:>8}{oldest:>8.0f}{other / wall:>8.0%}"
        )


# -- report ------------------------------------------------------------------------------


def print_report(
    bench: Bench,
    first: Snapshot,
    last: Snapshot,
    before: Counter[str],
    after: Counter[str],
    warm_up: tuple[float, float],
) -> None:
    args = bench.args
    wall = last.at - first.at
    polls = last.polls - first.polls
    cpu = last.service_cpu - first.service_cpu
    host = last.host_cpu - first.host_cpu
    own = last.bench - first.bench
    machine = last.machine - first.machine
    pg_ours = bench.postgres.used("ours") if bench.postgres else 0.0
    pg_shared = bench.postgres.used("shared") if bench.postgres else 0.0
    other = max(0.0, machine - cpu - host - own - pg_ours - pg_shared)
    metrics = after - before
    outcomes = {k.split('"')[1]: int(v) for k, v in metrics.items() if "monitor_polls_total" in k}
    jitter = args.jitter if args.jitter is not None else 0.1
    expected = args.feeds / (1 + jitter / 2)
    print(f"\nmeasured {wall / 60:.1f} min after warm-up ({warm_up[0]:.0f} s):")
    print(
        f"  polls        {polls} ({polls / wall * 60:.0f}/min; every feed once a minute "
        f"would be ~{expected:.0f}/min with jitter {jitter})"
    )
    print(f"  /metrics     {', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))}")
    print(
        f"  new items    {int(metrics['monitor_items_stored_total'])} stored, "
        f"{bench.bumped} feeds bumped ({args.change:.0%}/min)"
    )
    per = cpu / polls * 1000 if polls else float("nan")
    print(
        f"  CPU service  {cpu:.2f} s = {per:.2f} s per 1,000 polls "
        f"({cpu / wall:.0%} of a core; its processes and every descendant)"
    )
    split = ", ".join(
        f"{name} {last.by_process[name] - first.by_process.get(name, 0.0):.2f}"
        for name in sorted(last.by_process, key=_order)
    )
    print(f"    by process (s; a process's own and its reaped children's): {split}")
    if bench.postgres is not None:
        pg_per = pg_ours / polls * 1000 if polls else float("nan")
        print(
            f"  CPU Postgres {pg_ours:.2f} s = {pg_per:.2f} s per 1,000 polls (backends of the "
            f"bench database); server's shared processes {pg_shared:.2f} s (all databases)"
        )
    print(f"  CPU host     {host:.2f} s ({host / wall:.0%} of a core; the feed host)")
    print(f"  CPU bench    {own:.2f} s ({own / wall:.0%}; this process: sampler, bumps, queries)")
    print(
        f"  CPU other    {other:.2f} s ({other / wall:.0%} of a core; everything else on this "
        f"{os.cpu_count()}-core machine{NOISY if other / wall > 0.1 else ''})"
    )
    memory = bench.memory
    print(
        f"  memory, PSS in MB, {memory.samples} samples every {SAMPLE_EVERY} s "
        f"(smaps_rollup read at {memory.reads} of them: when RSS moved, else every "
        f"{Memory.FULL_EVERY:.0f} s):"
    )
    print(f"    {'process':<22}{'peak':>8}{'mean':>8}{'alive':>7}")
    for name, values in sorted(memory.by_name.items(), key=lambda kv: _order(kv[0])):
        print(
            f"    {name:<22}{max(values) / MB:>8.1f}{statistics.fmean(values) / MB:>8.1f}"
            f"{len(values) / memory.samples:>7.0%}"
        )
    anon, file = memory.peak_split
    print(
        f"    {'sum':<22}{max(memory.sums) / MB:>8.1f}{statistics.fmean(memory.sums) / MB:>8.1f}"
        f"   (at the peak: anonymous {anon / MB:.0f}, file-backed {file / MB:.0f})"
    )
    print(f"  warm-up peak PSS (the cold pass): {warm_up[1] / MB:.0f} MB")


def _order(name: str) -> tuple[int, str]:
    for rank, prefix in enumerate(("service", "forkserver", "resource", "parse worker")):
        if name.startswith(prefix):
            return rank, name.rjust(40)
    return 9, name


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000, help="number of feeds (default 1000)")
    parser.add_argument("--minutes", type=int, default=5, help="measured minutes (default 5)")
    parser.add_argument(
        "--change", type=float, default=0.05, help="share of feeds bumped per minute (0.05)"
    )
    parser.add_argument(
        "--hosts", type=int, default=20, choices=range(1, 255), metavar="1..254", help="(20)"
    )
    parser.add_argument(
        "--database",
        help="database URL (default: a fresh SQLite file); for PostgreSQL a fresh database "
        "is created on that server and dropped after",
    )
    parser.add_argument("--workers", type=int, default=None, help="polling.parse_workers")
    parser.add_argument("--jitter", type=float, default=None, help="polling.jitter")
    parser.add_argument("--corpus", type=Path, default=None, help="directory of *.xml feeds")
    parser.add_argument("--seed", type=int, default=1, help="seed of the choice of bumps")
    parser.add_argument("--keep-log", type=Path, default=None, help="copy the service's log here")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter that runs the service (make bench-service: a venv with the "
        "project alone, as a user installs it; default: this one)",
    )
    args = parser.parse_args()
    if args.minutes < 1 or args.feeds < 1 or not 0 <= args.change <= 1:
        parser.error("--minutes and --feeds at least 1, --change between 0 and 1")
    args.python = str(Path(args.python).absolute())  # the service runs in the repository
    return args


def main() -> None:
    args = parse_args()
    corpus = args.corpus or default_corpus()
    files = corpus_files(corpus)
    print(
        f"service benchmark: {args.feeds} feeds from {len(files)} files in {corpus}\n"
        f"  {args.hosts} hosts, interval 1m, change {args.change:.0%}/min, "
        f"database={args.database or 'a fresh SQLite file'}, "
        f"parse_workers={args.workers if args.workers is not None else 'default'}, "
        f"cpu_count={os.cpu_count()}, tree via "
        f"{'task/*/children' if _HAS_CHILDREN_FILE else 'ppid in /proc/*/stat'}"
    )
    host = FeedHostProcess(args.feeds, args.hosts, corpus)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-service-") as tmp,
            database(args.database, tmp) as db,
        ):
            run(args, host, db, Path(tmp))
    finally:
        host.close()


def run(args: argparse.Namespace, host: FeedHostProcess, db: str, tmp: Path) -> None:
    from sqlalchemy.engine import make_url

    config = tmp / "bench.yaml"
    write_config(config, [host.url(i) for i in range(args.feeds)], db, args)
    url = make_url(db)
    postgres = None if url.get_backend_name() == "sqlite" else PostgresCpu(url.database or "")
    service = ServiceProcess(config, tmp / "service.log", args.python)
    table = FeedTable(db)
    try:
        started = service.wait_started()
        print(f"  command: {' '.join(service.argv)} (started in {started:.1f} s)", flush=True)
        bench = Bench(args, host, service, table, postgres)
        warm = bench.warm_up()
        warm_peak = max(bench.memory.sums, default=0.0)
        print(f"warm-up: every feed polled once after {warm:.0f} s", flush=True)
        print(
            f"{'minute':>6}{'polls':>7}{'CPU s':>8}{'s/1000':>9}{'PSS MB':>9}{'peak':>8}"
            f"{'late':>8}{'oldest':>8}{'other':>8}",
            flush=True,
        )
        before = service.metrics()
        first, last, _ = bench.measure()
        after = service.metrics()
        print(
            f"late: feeds more than {OVERDUE:.0f} s past their due time at the minute's end; "
            "oldest: seconds the oldest of them is late; other: the rest of the machine's CPU "
            "(100% = one core)"
        )
        print_report(bench, first, last, before, after, (warm, warm_peak))
    finally:
        table.close()
        service.stop()
        if args.keep_log:
            args.keep_log.write_bytes(service.log.read_bytes())


if __name__ == "__main__":
    main()
