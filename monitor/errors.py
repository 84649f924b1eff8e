"""Errors of the monitor. Each says whether trying again later can help.

Third-party exceptions never leave the module that called the library: they are wrapped
in one of these with ``raise ... from exc``.
"""

from __future__ import annotations

import traceback
from datetime import datetime
from pathlib import Path


class MonitorError(Exception):
    """Root of the monitor's errors."""

    retryable: bool = False


class ConfigError(MonitorError):
    """The configuration is invalid. ``problems`` lists each one with its location."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: invalid configuration\n{lines}")


class FetchError(MonitorError):
    """A feed could not be fetched. ``retry_after`` is set when the server asked us to wait."""

    def __init__(
        self,
        url: str,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = True,
        retry_after: datetime | None = None,
    ) -> None:
        self.url = url
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(f"{url}: {message}")


class AddressRefused(MonitorError):
    """The private-network guard refused the addresses of a host; ``reason`` is its one-line
    message. Not retryable: the refusal follows from the configuration and from where the
    host points, neither of which changes by trying again.

    Raised inside the connection pool, below httpx, and not an httpcore error, so httpx lets
    it through unwrapped: the fetcher turns it into a ``FetchError`` carrying the reason.
    """

    retryable = False

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ParseError(MonitorError):
    """The body is not a feed we can read."""

    retryable = True

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        self.message = message
        super().__init__(f"{url}: {message}")

    def __reduce__(self) -> tuple[type[ParseError], tuple[str, str]]:
        # Raised in parse worker processes: must survive pickling back to the service.
        return (type(self), (self.url, self.message))


class QueryError(MonitorError):
    """A watchlist query is malformed. ``position`` is the 0-based offset in the query."""

    def __init__(self, query: str, position: int, reason: str) -> None:
        self.query = query
        self.position = position
        self.reason = reason
        super().__init__(f"at position {position}: {reason}")


class StorageError(MonitorError):
    """The database refused or failed an operation."""

    retryable = True


class InstanceLockError(MonitorError):
    """Another process works on this SQLite database (``monitor run`` or ``monitor poll``)."""

    def __init__(self, lock: object, holder: str) -> None:
        self.holder = holder
        super().__init__(
            f"the database is in use by another monitor process ({holder}; lock file {lock}). "
            "One process at a time works on a SQLite database: the service polls due feeds "
            "and sends alerts itself. Stop it first, or use PostgreSQL to run several."
        )


def where(exc: BaseException) -> str:
    """Where an exception was raised, as ``Type at module.py:line``: enough to find a bug
    from a log line, without the exception's text (it may carry a secret or a feed's
    bytes)."""
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    place = f" at {Path(frame[0].filename).name}:{frame[0].lineno}" if frame else ""
    return f"{type(exc).__name__}{place}"
