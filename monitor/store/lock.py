"""One working process per SQLite database: the instance lock.

SQLite serves one host, so an instance that starts may release every lease it finds (the
work of a killed process resumes at once instead of after the lease). That is only safe
when no other process is working on the database: a ``monitor poll`` started while a
service delivers would otherwise take over the service's claimed deliveries and send them
again. So ``monitor run`` and ``monitor poll`` hold an exclusive lock on a file beside the
database for as long as they work; the second one is refused, naming the first.

An ``flock`` is released by the kernel when its holder dies, however it dies, so a lock is
never left behind by a killed process, and leases found at start are always those of a
dead owner. The file keeps the holder's description (pid, host, command, start time) for
the message. Commands that only read, or change one row without claiming work (``feeds``,
``alerts``, ``alerts retry``, ``channels``), do not take it. PostgreSQL needs none: there,
leases expire on the database server's clock and several instances may share the work.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
from pathlib import Path

from sqlalchemy import Engine

from monitor.errors import InstanceLockError
from monitor.types import utcnow


class InstanceLock:
    """An exclusive lock on ``<database>.lock``, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self, command: str) -> None:
        """Take the lock or raise :class:`InstanceLockError` naming its holder."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise InstanceLockError(self.path, holder) from None
        except BaseException:
            os.close(fd)
            raise
        started = utcnow().isoformat(timespec="seconds").replace("+00:00", "Z")
        about = f"pid {os.getpid()} on {socket.gethostname()}, `{command}` since {started}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, about.encode("utf-8", "replace"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the descriptor releases the flock
        self._fd = None


def lock_sqlite(engine: Engine) -> InstanceLock | None:
    """The instance lock of a SQLite database file, taken (None for PostgreSQL and for an
    in-memory database, which no other process can open)."""
    path = engine.url.database
    if engine.dialect.name != "sqlite" or not path or path == ":memory:":
        return None
    lock = InstanceLock(Path(path))
    lock.acquire(_command())
    return lock


def _read(fd: int) -> str:
    try:
        text = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return "".join(c for c in text if c.isprintable()) or "another process"


def _command() -> str:
    """How this process was started, shortly (``monitor run``), for the lock's holder."""
    words = [a for a in sys.argv[1:3] if not a.startswith("-")]
    return " ".join(["monitor", *words[:1]])
