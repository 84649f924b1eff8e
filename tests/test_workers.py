"""Parse workers: parsing in other processes, and a dead worker costs one poll only."""

from __future__ import annotations

import os
import signal
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


async def test_dead_worker_fails_one_parse_then_the_pool_recovers() -> None:
    workers = ParseWorkers(1)
    try:
        await workers.parse(result())  # start the worker
        pool = workers._pool
        assert pool is not None
        for process in list(pool._processes.values()):  # type: ignore[attr-defined]
            os.kill(process.pid, signal.SIGKILL)
        with pytest.raises(ParseError, match="crashed"):
            await workers.parse(result())
        parsed = await workers.parse(result())
        assert len(parsed.items) == 10
    finally:
        workers.close()


async def test_zero_workers_parse_in_a_thread() -> None:
    workers = ParseWorkers(0)
    assert workers._pool is None
    assert len((await workers.parse(result())).items) == 10
