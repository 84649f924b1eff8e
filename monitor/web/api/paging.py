"""The API's query parameters with rules of their own: opaque cursors and ``since``.

A cursor is the position of the last row of a page (see :mod:`monitor.store.queries`),
tagged with what it pages through and base64url-encoded: clients pass ``next`` back as it
is, and one that does not decode into a position of the right kind is a 400 naming
``cursor``. ``since`` is an ISO-8601 time (UTC when it has no offset) or a duration back
from now (``24h``, ``7d``).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Query

from alerts.durations import parse_duration
from monitor.store import AlertPosition, ItemPosition
from monitor.web.api.base import Bad

MAX_PAGE = 500
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="How many, newest first.")]
Cursor = Annotated[
    str | None,
    Query(max_length=200, description="The `next` of the previous page, as it was given."),
]
Since = Annotated[
    str | None,
    Query(
        max_length=64,
        description="Only since then: an ISO-8601 time (UTC if no offset), or a duration "
        "back from now (`24h`, `7d`).",
    ),
]
_NOT_OURS = "not a cursor of this listing (pass `next` back as it was given)"


def parse_since(value: str | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except ValueError:
        pass
    except OverflowError:  # an offset that moves the time out of years 1..9999
        raise Bad("since", "out of range") from None
    try:
        return now - timedelta(seconds=parse_duration(value))
    except ValueError:
        raise Bad(
            "since",
            "expected an ISO-8601 time (2026-11-30T08:00:00Z) or a duration (24h, 7d)",
        ) from None


def alert_cursor(position: AlertPosition) -> str:
    return _encode(["alert", position.created_at.isoformat(), position.id])


def item_cursor(position: ItemPosition) -> str:
    return _encode(["item", position.first_seen_at.isoformat(), position.id])


def read_alert_cursor(cursor: str | None) -> AlertPosition | None:
    if cursor is None:
        return None
    when, key = _decode(cursor, "alert")
    if not isinstance(key, str) or not 0 < len(key) <= 36:
        raise Bad("cursor", _NOT_OURS)
    return AlertPosition(created_at=when, id=key)


def read_item_cursor(cursor: str | None) -> ItemPosition | None:
    if cursor is None:
        return None
    when, key = _decode(cursor, "item")
    if type(key) is not int or not 0 < key < 2**63:
        raise Bad("cursor", _NOT_OURS)
    return ItemPosition(first_seen_at=when, id=key)


def _encode(parts: list[object]) -> str:
    raw = json.dumps(parts, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, kind: str) -> tuple[datetime, object]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
        tag, when, key = parts
        if tag != kind or not isinstance(when, str):
            raise ValueError(kind)
        created = datetime.fromisoformat(when)
        if created.tzinfo is None:
            raise ValueError(kind)
        return created.astimezone(UTC), key
    except (binascii.Error, ValueError, TypeError, OverflowError):
        raise Bad("cursor", _NOT_OURS) from None
