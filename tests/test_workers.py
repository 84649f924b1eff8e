"""Parse workers: parsing in other processes, a dead worker costs one poll only, and a
document that takes longer than the budget fails its poll and costs its worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.errors import ParseError
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
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead too
        return stat.read().split(") ")[-1][:1] != "Z"


async def test_dead_worker_fails_one_parse_then_the_pool_recovers() -> None:
    workers = ParseWorkers(1)
    try:
        await workers.parse(result())  # start the worker
        (pid,) = worker_pids(workers)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ParseError, match="crashed"):
            await workers.parse(result())
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
        assert not alive(pid)
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


@pytest.mark.parametrize("named", [True, False])
def test_a_worker_of_the_console_script_does_not_import_the_application(
    tmp_path: Path, named: bool
) -> None:
    """The ``monitor`` console script is a file run as the main module; named as ``python
    -m monitor`` names it, the parse workers do not run it (and import everything) again."""
    script = tmp_path / "monitor"
    script.write_text(
        "import asyncio, sys\n"
        "from monitor.cli import name_main_module\n"
        "from monitor.parse.workers import ParseWorkers\n"
        "from monitor.types import FetchResult\n"
        f"if {named}:\n"
        "    name_main_module()\n"
        "body = b'<rss version=\"2.0\"><channel><title>T</title></channel></rss>'\n"
        "async def main():\n"
        "    workers = ParseWorkers(1)\n"
        "    try:\n"
        "        result = FetchResult(url='http://x/', final_url='http://x/', status=200,"
        " body=body)\n"
        "        await workers.parse(result)\n"
        "        pid = workers._idle[0].process.pid\n"
        "        with open(f'/proc/{pid}/maps') as maps:\n"
        "            return 'sqlalchemy' in maps.read()\n"
        "    finally:\n"
        "        workers.close()\n"
        "if __name__ == '__main__':\n"
        "    print(asyncio.run(main()))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(not named)  # without the name: the whole application
