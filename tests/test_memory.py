"""The service's process gives back the memory it freed and keeps few allocator heaps."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from monitor.app import App
from monitor.config import load_settings
from monitor.store.engine import SQLITE_POOL, create_db_engine

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator")

# Counts glibc's heaps from malloc_info's XML after eight threads allocated at once.
_HEAPS = """
import ctypes, os, sys, tempfile, threading
from monitor.memory import limit_arenas
if sys.argv[1] == "limited":
    assert limit_arenas()
barrier = threading.Barrier(8)
def churn():
    barrier.wait()
    kept = [bytearray(1000) for _ in range(20000)]
    barrier.wait()
threads = [threading.Thread(target=churn) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
path = tempfile.mktemp()
stream = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(stream))
libc.fclose(ctypes.c_void_p(stream))
print(open(path).read().count("<heap nr="))
os.unlink(path)
"""

# RSS in MB before and after freeing nine tenths of 200,000 scattered medium blocks (the
# kept tenth pins the heap's top, so only a trim can hand the middle back).
_TRIM = """
import sys
from monitor.memory import release_free_memory
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
kept, freed = [], []
for i in range(200000):
    (kept if i % 10 == 0 else freed).append(bytearray(2000))
del freed
before = rss()
trimmed = release_free_memory() if sys.argv[1] == "trim" else False
print(before, rss(), trimmed)
"""


def _run(script: str, mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


@glibc
def test_the_allocator_keeps_at_most_two_heaps_once_limited() -> None:
    unlimited = int(_run(_HEAPS, "unlimited"))
    limited = int(_run(_HEAPS, "limited"))
    assert unlimited > 2  # the threads did contend: without the limit they get heaps
    assert limited <= 2


@glibc
def test_freed_memory_goes_back_to_the_kernel() -> None:
    before, after, trimmed = _run(_TRIM, "trim").split()
    assert trimmed == "True"
    assert float(before) - float(after) > 200  # of the ~360 MB freed
    kept_before, kept_after, _ = _run(_TRIM, "keep").split()
    assert float(kept_before) - float(kept_after) < 50  # not given back by itself


async def test_the_service_trims_on_a_chore(tmp_path: Path) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text(f"database: sqlite:///{tmp_path}/m.db\nfeeds: []\nwatchlists: []\n")
    async with App(load_settings(config, {}), long_running=True) as app:
        [chore] = [c for c in app.chores() if c.name == "memory"]
        assert chore.every <= 300
        await chore.run()


def test_sqlite_keeps_few_connections_after_a_burst(tmp_path: Path) -> None:
    """Each SQLite connection holds its own page cache and prepared statements."""
    engine = create_db_engine(f"sqlite:///{tmp_path}/m.db")
    try:
        connections = [engine.connect() for _ in range(SQLITE_POOL + 6)]  # a burst
        for connection in connections:
            connection.close()
        assert engine.pool.checkedin() == SQLITE_POOL  # the rest were closed
    finally:
        engine.dispose()


def test_the_stories_caches_stay_small_however_many_words_come() -> None:
    """The news's vocabulary never stops growing; what the stories keep per word and per
    loaded item is bounded in bytes, not only in entries."""
    import random
    import tracemalloc

    from monitor.stories.features import dump_features, load_features, story_features

    rng = random.Random(7)

    def word() -> str:
        return "".join(rng.choice("abcdefghijklmnoprstuvz") for _ in range(rng.randint(5, 11)))

    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(5000):  # some 60,000 distinct words, 5,000 distinct items
            title = " ".join(word().capitalize() for _ in range(8))
            summary = " ".join(word() for _ in range(12))
            load_features(dump_features(story_features(title=title, summary=summary, link=None)))
        held = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert held < 12_000_000
