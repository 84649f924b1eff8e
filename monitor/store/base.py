"""What every part of the store shares: the engine, sessions, the dialect's INSERT, and
turning database failures into ``StorageError``.

The parts (:mod:`~monitor.store.feeds`, :mod:`~monitor.store.items`,
:mod:`~monitor.store.deliveries`, :mod:`~monitor.store.channels`) are mixins over this base,
composed into one :class:`~monitor.store.Store` the way reader composes its storage: one
object for callers, one module per table group for readers of the code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from monitor.errors import StorageError

# ``INSERT ... ON CONFLICT DO NOTHING`` exists in both dialects, under their own insert().
_INSERTS: dict[str, Callable[..., Any]] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


class StoreBase:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = _INSERTS[engine.dialect.name]

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)


def key_hash(key: str) -> str:
    """The indexed form of an item's identity: fixed length, whatever the guid's."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@contextmanager
def storage_errors(operation: str) -> Iterator[None]:
    """Turn a database failure into a ``StorageError`` naming the operation."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StorageError(f"database error while trying to {operation}: {exc}") from exc
