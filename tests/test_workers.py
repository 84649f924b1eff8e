"""Parse workers: parsing in other processes, a dead worker costs one poll only, and a
document that takes longer than the budget fails its poll and costs its worker. Workers
start when documents come, retire when idle, and are plain children of the service (no
forkserver, no resource tracker) that import only the parsers and never outlive it."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from monitor.errors import ParseError
from monitor.parse import serve
from monitor.parse.workers import ParseWorkers
from monitor.types import FetchResult

FEED = (Path(__file__).parent / "data" / "feeds" / "rss2-cp1251-oren-news.xml").read_bytes()


def result(body: bytes = FEED) -> FetchResult:
    return FetchResult(
        url="http://127.0.0.1/feed", final_url="http://127.0.0.1/feed", status=200, body=body
    )


async def test_parses_in_a_worker_process_with_correct_encoding() -> None:
    workers = ParseWorkers(1)
    try:
        parsed = await workers.parse(result())
        assert len(parsed.items) == 10
        assert any("а" in item.title for item in parsed.items)  # Cyrillic, not mojibake
    finally:
        workers.close()


async def test_parse_error_crosses_the_process_boundary() -> None:
    workers = ParseWorkers(1)
    try:
        with pytest.raises(ParseError, match="not a feed"):
            await workers.parse(result(b"<html><body>hello</body></html>"))
    finally:
        workers.close()


def worker_pids(workers: ParseWorkers) -> list[int]:
    return [worker.process.pid for worker in workers._idle]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead too
            return stat.read().split(") ")[-1][:1] != "Z"
    except FileNotFoundError:
        return False


def reaped(pid: int) -> bool:
    """The process is gone and waited for: not even a zombie is left of it. (Asks without
    waiting for it: this check must not be what reaps it.)"""
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return False


def worker_children() -> set[int]:
    """This process's children that are parse workers, whichever thread started them."""
    pids = set()
    for path in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
        # A thread (the parse threads', the event loop's executor's) may end meanwhile.
        with contextlib.suppress(FileNotFoundError), open(path) as children:
            pids |= {int(pid) for pid in children.read().split()}
    return {pid for pid in pids if alive(pid) and "monitor.parse.serve" in command(pid)}


def command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline") as cmdline:
            return cmdline.read().replace("\0", " ")
    except FileNotFoundError:
        return ""


async def test_dead_worker_fails_one_parse_then_the_pool_recovers() -> None:
    restarts: list[None] = []
    workers = ParseWorkers(1, on_restart=lambda: restarts.append(None))
    try:
        await workers.parse(result())  # start the worker
        (pid,) = worker_pids(workers)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ParseError, match="crashed"):
            await workers.parse(result())
        assert reaped(pid)
        assert len(restarts) == 1
        parsed = await workers.parse(result())
        assert len(parsed.items) == 10
    finally:
        workers.close()


async def test_zero_workers_parse_in_a_thread() -> None:
    workers = ParseWorkers(0)
    assert len((await workers.parse(result())).items) == 10
    assert worker_pids(workers) == []


def slow_feed(items: int = 4000) -> bytes:
    """A feed that is slow to parse only because it is long (feedparser takes far more than
    the test budget over it on any machine)."""
    entries = "".join(
        f"<item><guid>{n}</guid><title>Item {n}</title>"
        f"<description>&lt;p&gt;Text &lt;b&gt;{n}&lt;/b&gt;&lt;/p&gt;</description></item>"
        for n in range(items)
    )
    return f'<rss version="2.0"><channel><title>T</title>{entries}</channel></rss>'.encode()


BUDGET = 0.2


async def test_a_document_over_the_budget_fails_its_poll_and_its_worker_is_replaced() -> None:
    workers = ParseWorkers(1, budget=BUDGET)
    try:
        await workers.parse(result())  # start the worker
        (pid,) = worker_pids(workers)
        started = time.monotonic()
        with pytest.raises(ParseError, match=f"parsing took longer than {BUDGET:g}s"):
            await workers.parse(result(slow_feed()))
        assert time.monotonic() - started < BUDGET + 2.0  # not the whole parse
        assert reaped(pid)
        assert len((await workers.parse(result())).items) == 10  # a new worker
        assert worker_pids(workers) != [pid]
    finally:
        workers.close()


async def test_the_budget_does_not_count_a_new_workers_start() -> None:
    workers = ParseWorkers(1, budget=BUDGET)
    try:
        assert len((await workers.parse(result())).items) == 10  # parsing alone is quick
    finally:
        workers.close()


async def test_a_parse_over_the_budget_in_thread_mode_fails_its_poll_in_time() -> None:
    """A thread cannot be stopped: the poll fails, and the thread parses on (documented)."""
    workers = ParseWorkers(0, budget=BUDGET)
    started = time.monotonic()
    with pytest.raises(ParseError, match="parsing took longer"):
        await workers.parse(result(slow_feed()))
    assert time.monotonic() - started < BUDGET + 2.0


async def test_a_cancelled_parse_stops_its_worker_and_the_next_one_starts_another() -> None:
    workers = ParseWorkers(1, budget=30)
    try:
        await workers.parse(result())
        (pid,) = worker_pids(workers)
        parse = asyncio.ensure_future(workers.parse(result(slow_feed())))
        deadline = time.monotonic() + 5
        while worker_pids(workers) and time.monotonic() < deadline:
            await asyncio.sleep(0)  # until the parse has taken the worker
        parse.cancel()
        with pytest.raises(asyncio.CancelledError):
            await parse
        assert len((await workers.parse(result())).items) == 10
        assert worker_pids(workers) != [pid]
        assert reaped(pid)
    finally:
        workers.close()


async def test_documents_beyond_the_worker_count_wait_for_a_free_worker() -> None:
    workers = ParseWorkers(2)
    try:
        parsed = await asyncio.gather(*(workers.parse(result()) for _ in range(5)))
        assert [len(p.items) for p in parsed] == [10] * 5
        assert len(worker_pids(workers)) <= 2
    finally:
        workers.close()


def test_the_service_s_process_leaves_feedparser_to_its_workers() -> None:
    """What ``monitor run`` imports, with a feed parsed in a worker: feedparser is loaded
    there, never in the service's own process (a few MB it would keep for nothing)."""
    check = (
        "import asyncio, sys\n"
        "import monitor.cli, monitor.app, monitor.schedule\n"
        "from monitor.parse.workers import ParseWorkers\n"
        "from monitor.types import FetchResult\n"
        "body = b'<rss version=\"2.0\"><channel><title>T</title></channel></rss>'\n"
        "async def main():\n"
        "    workers = ParseWorkers(1)\n"
        "    try:\n"
        "        result = FetchResult(url='http://x/', final_url='http://x/', status=200,"
        " body=body)\n"
        "        return (await workers.parse(result)).title\n"
        "    finally:\n"
        "        workers.close()\n"
        "print(asyncio.run(main()), 'feedparser' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["T", "False"]


async def test_a_parse_cancelled_while_its_worker_starts_leaves_no_process() -> None:
    before = worker_children()
    workers = ParseWorkers(1)
    try:
        parse = asyncio.ensure_future(workers.parse(result()))
        deadline = time.monotonic() + 10
        while not worker_children() - before and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # until the worker's process exists
        (pid,) = worker_children() - before
        parse.cancel()
        with pytest.raises(asyncio.CancelledError):
            await parse
        while not reaped(pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert reaped(pid)
    finally:
        workers.close()


async def test_no_worker_before_the_first_document_and_one_for_a_steady_stream() -> None:
    before = worker_children()
    workers = ParseWorkers(3)
    try:
        assert worker_children() == before
        seen: set[int] = set()
        for _ in range(10):
            assert len((await workers.parse(result())).items) == 10
            seen |= worker_children() - before
        assert len(seen) == 1
    finally:
        workers.close()


IDLE = 2.0


async def test_a_burst_starts_count_workers_and_the_surplus_retires_once_idle() -> None:
    """The first pass over every feed uses every worker; the quiet stream after it (one
    document at a time) keeps the one it uses, and without documents none is left. (No
    patience: a burst of small documents would otherwise all go to the first worker.)"""
    workers = ParseWorkers(3, idle_timeout=IDLE, patience=0.0)
    try:
        await asyncio.gather(*(workers.parse(result()) for _ in range(6)))
        burst = worker_pids(workers)
        assert len(burst) == 3
        deadline = time.monotonic() + IDLE + 20
        while len(worker_pids(workers)) > 1 and time.monotonic() < deadline:
            await workers.parse(result())  # a stream, one document at a time
        (kept,) = worker_pids(workers)
        retired = set(burst) - {kept}
        assert len(retired) == 2
        assert all(reaped(pid) for pid in retired)
        while worker_pids(workers) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # no documents: the last worker retires on a timer
        assert worker_pids(workers) == []
        assert reaped(kept)
        assert len((await workers.parse(result())).items) == 10  # and a new one starts
    finally:
        workers.close()


async def test_a_surplus_worker_retires_soon_after_a_burst_and_the_last_one_stays() -> None:
    """The busy spell over, the memory of the workers it started is handed back within
    ``surplus_timeout``; the last worker waits ``idle_timeout`` for the stream after it."""
    workers = ParseWorkers(3, idle_timeout=30.0, surplus_timeout=1.0, patience=0.0)
    try:
        await asyncio.gather(*(workers.parse(result()) for _ in range(6)))
        burst = worker_pids(workers)
        assert len(burst) == 3
        deadline = time.monotonic() + 10
        while len(worker_pids(workers)) > 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        (kept,) = worker_pids(workers)
        assert all(reaped(pid) for pid in set(burst) - {kept})
        await asyncio.sleep(2.0)  # past the surplus timeout: the last one is not surplus
        assert worker_pids(workers) == [kept]
    finally:
        workers.close()


@pytest.mark.parametrize(("patience", "started"), [(30.0, 1), (0.0, 2)])
async def test_a_document_meeting_a_busy_worker_waits_for_it(patience: float, started: int) -> None:
    """Two documents meeting now and then must not keep a second worker alive: the second
    waits (up to ``patience``) for the first's worker rather than start another."""
    before = worker_children()
    workers = ParseWorkers(2, patience=patience)
    try:
        await workers.parse(result())  # one worker, warm and idle
        for _ in range(3):
            await asyncio.gather(workers.parse(result()), workers.parse(result()))
        assert len(worker_children() - before) == started
    finally:
        workers.close()


async def test_a_surplus_worker_is_left_idle_and_retires_while_one_keeps_up() -> None:
    """After a burst started two workers, documents meeting now and then wait for the
    busy one rather than take the idle one, which then retires."""
    before = worker_children()
    workers = ParseWorkers(2, patience=0.0, idle_timeout=1.0)
    try:
        await asyncio.gather(workers.parse(result()), workers.parse(result()))
        assert len(worker_children() - before) == 2
        workers.patience = 30.0
        until = time.monotonic() + 3.0
        while time.monotonic() < until:
            await asyncio.gather(workers.parse(result()), workers.parse(result()))
            await asyncio.sleep(0.05)
        assert len(worker_children() - before) == 1
    finally:
        workers.close()


async def test_documents_arriving_while_a_worker_passes_to_the_next_start_no_other() -> None:
    """A worker handed from one document to the next is still busy: a document arriving
    in between waits for it too, rather than find none busy and start a second."""
    before = worker_children()
    workers = ParseWorkers(2, patience=30.0)
    try:
        await workers.parse(result())
        stream = []
        for _ in range(300):  # overlapping documents, arriving at every moment of a parse
            stream.append(asyncio.create_task(workers.parse(result())))
            await asyncio.sleep(0.001)
        await asyncio.gather(*stream)
        assert len(worker_children() - before) == 1
    finally:
        workers.close()


async def test_a_queue_longer_than_patience_starts_another_worker() -> None:
    """Patience counts from a document's arrival: in a burst (the first pass), documents
    queue for the busy worker longer than that, and a second worker starts to share them."""
    before = worker_children()
    workers = ParseWorkers(2, patience=0.2)
    try:
        await asyncio.gather(*(workers.parse(result()) for _ in range(400)))
        assert len(worker_children() - before) == 2
    finally:
        workers.close()


async def test_close_stops_and_reaps_every_worker() -> None:
    workers = ParseWorkers(2, patience=0.0)
    await asyncio.gather(*(workers.parse(result()) for _ in range(2)))
    pids = worker_pids(workers)
    assert len(pids) == 2
    workers.close()
    assert all(reaped(pid) for pid in pids)


def run_script(code: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )


def test_the_service_s_only_children_are_its_workers() -> None:
    """No forkserver and no resource tracker: they would parse nothing."""
    done = run_script(
        """
        import asyncio, glob, os
        from monitor.parse.workers import ParseWorkers
        from monitor.types import FetchResult
        body = b'<rss version="2.0"><channel><title>T</title></channel></rss>'
        result = FetchResult(url="http://x/", final_url="http://x/", status=200, body=body)
        async def main():
            workers = ParseWorkers(2, patience=0.0)
            try:
                await asyncio.gather(workers.parse(result), workers.parse(result))
                for path in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
                    for pid in open(path).read().split():
                        print(open(f"/proc/{pid}/cmdline").read().replace("\\0", " "))
            finally:
                workers.close()
        asyncio.run(main())
        """
    )
    assert done.returncode == 0, done.stderr
    children = done.stdout.splitlines()
    assert len(children) == 2, children
    assert all("-m monitor.parse.serve" in child for child in children), children


def test_a_worker_exits_when_the_service_is_killed() -> None:
    service = subprocess.Popen(
        [
            sys.executable,
            "-c",
            dedent(
                """
                import asyncio, sys
                from monitor.parse.workers import ParseWorkers
                from monitor.types import FetchResult
                body = b'<rss version="2.0"><channel><title>T</title></channel></rss>'
                result = FetchResult(url="http://x/", final_url="http://x/", status=200, body=body)
                workers = ParseWorkers(1)
                asyncio.run(workers.parse(result))
                print(workers._idle[0].process.pid, flush=True)
                sys.stdin.read()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert service.stdout is not None
        pid = int(service.stdout.readline())
        assert alive(pid)
    finally:
        service.kill()
        service.wait()
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not alive(pid)


def test_a_worker_imports_the_parsers_and_nothing_of_the_service(tmp_path: Path) -> None:
    """The service's main module imports the whole application (the ``monitor`` console
    script does); a worker imports feedparser and no database, HTTP client or settings.
    The probe is found in the worker because the worker finds what the service finds."""
    (tmp_path / "probe.py").write_text(
        "import sys\ndef modules(body, *, url, headers):\n    return sorted(sys.modules)\n"
    )
    script = tmp_path / "monitor"
    script.write_text(
        dedent(
            f"""
            import asyncio, sys
            sys.path.insert(0, {str(tmp_path)!r})
            import monitor.cli, monitor.app, probe
            from monitor.parse.workers import ParseWorkers
            from monitor.types import FetchResult
            body = b'<rss version="2.0"><channel><title>T</title></channel></rss>'
            result = FetchResult(url="http://x/", final_url="http://x/", status=200, body=body)
            async def main():
                workers = ParseWorkers(1)
                try:
                    await workers.parse(result)
                    return await workers._run(probe.modules, result)
                finally:
                    workers.close()
            if __name__ == "__main__":
                print(" ".join(asyncio.run(main())))
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    modules = set(done.stdout.split())
    assert {"feedparser", "monitor.parse.feed", "probe"} <= modules
    service = {"sqlalchemy", "httpx", "pydantic", "yaml", "monitor.app", "monitor.cli"}
    assert not service & modules
    assert not {m for m in modules if m.startswith(("monitor.store", "monitor.fetch"))}


@pytest.mark.parametrize(("size", "trimmed"), [(1_000, 0), (serve.TRIM_AFTER + 1, 1)])
def test_a_worker_hands_memory_back_after_a_large_document(
    size: int, trimmed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[None] = []
    monkeypatch.setattr(serve, "release_free_memory", lambda: calls.append(None))
    ours, theirs = multiprocessing.Pipe()
    body = FEED.replace(b"</channel>", b"<!--" + b"x" * size + b"--></channel>")
    serving = threading.Thread(target=serve.serve, args=(theirs,))
    serving.start()
    assert ours.recv() == "ready"
    ours.send((serve.parse_document, body, "http://127.0.0.1/feed", {}))
    ok, parsed = ours.recv()
    ours.close()  # the worker sees the end and returns
    serving.join(30)
    assert ok and len(parsed.items) == 10 and len(calls) == trimmed
