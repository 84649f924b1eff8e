"""A parse worker's process: ``python -m monitor.parse.serve FD``, started by
:class:`~monitor.parse.workers.ParseWorkers`.

Input: on the connection at file descriptor ``FD``, pickled ``(task, body, url, headers)``
documents, one at a time; output: ``(True, value)`` or ``(False, exception)`` for each. It
says "ready" once the parsers are imported, so that their import is not on the first
document's clock. It exits when the connection closes: the service stopped it, or died
(a worker outlives nothing it serves). It imports what parsing needs and nothing of the
service (no database, no HTTP client); it does not touch the network or the database.
"""

from __future__ import annotations

import signal
import sys
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from monitor.errors import ParseError
from monitor.memory import release_free_memory

if TYPE_CHECKING:
    from monitor.types import ParsedFeed

# After a document this large, the worker hands its free pages back (``malloc_trim``,
# a fraction of a millisecond here): a worker otherwise keeps the high-water mark of the
# largest document it ever parsed (measured over the corpus: 34 MB against 26).
TRIM_AFTER = 64 * 1024


def parse_document(
    body: bytes, *, url: str, headers: dict[str, str], known: bytes | None = None
) -> ParsedFeed:
    """:func:`~monitor.parse.feed.parse_feed`, imported where it runs: in a worker, or in
    the service's process only when that parses itself (``parse_workers: 0``), so that a
    service whose workers parse never loads feedparser."""
    from monitor.parse.feed import parse_feed

    return parse_feed(body, url=url, headers=headers, known=known)


def serve(connection: Connection) -> None:
    """Parse each document received until the connection closes."""
    import monitor.parse.feed  # noqa: F401  # before "ready": not on the first document's clock

    connection.send("ready")
    while True:
        try:
            task, body, url, headers = connection.recv()
        except (EOFError, OSError):
            return
        try:
            outcome: tuple[bool, Any] = (True, task(body, url=url, headers=headers))
        except Exception as exc:
            outcome = (False, exc)
        try:
            _reply(connection, url, outcome)
        except OSError:  # the service stopped waiting (it died, or gave up on this one)
            return
        del outcome
        if len(body) > TRIM_AFTER:
            release_free_memory()


def _reply(connection: Connection, url: str, outcome: tuple[bool, Any]) -> None:
    try:
        connection.send(outcome)
    except OSError:
        raise
    except Exception as exc:  # an exception that does not pickle
        connection.send((False, ParseError(url, f"the parser failed: {type(exc).__name__}")))


def main() -> None:
    # Ctrl-C reaches a whole process group; the service stops its workers itself (they
    # are started in a group of their own, and ignore it besides).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(Connection(int(sys.argv[1])))


if __name__ == "__main__":
    main()
