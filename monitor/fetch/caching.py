"""HTTP freshness of a fetched feed: how long the server says the response stays fresh.

Input: the response headers (``Cache-Control``, ``Expires``, ``Date``) and the current time.
Output: a lifetime in seconds, or None when the server gives no usable hint. The scheduler
takes it as a hint that may lengthen the feed's poll interval.
Does not: store responses, revalidate (the conditional GET does that on every poll), or
decide when the feed is polled next (``monitor.cadence`` does).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from httpfields import parse_http_date


def parse_max_age(headers: Mapping[str, str], now: datetime) -> float | None:
    """How long the response stays fresh, as a hint for the next poll (RFC 9111 section 4.2.1).

    ``max-age`` wins over ``Expires``. ``no-cache``/``no-store`` give no hint (None): they
    ask for revalidation, which a conditional GET on every poll already does. ``s-maxage``
    is for shared caches, which we are not. An unreadable ``Expires`` means "already
    expired" (RFC 9111 section 5.3), hence 0. ``now`` stands in for a missing ``Date``.
    """
    directives = _cache_control(headers.get("cache-control", ""))
    if "no-cache" in directives or "no-store" in directives:
        return None
    max_age = directives.get("max-age")
    if max_age is not None and re.fullmatch(r"[0-9]+", max_age):
        return float(max_age)
    expires = headers.get("expires")
    if expires is None:
        return None
    expires_at = parse_http_date(expires)
    if expires_at is None:
        return 0.0
    date = parse_http_date(headers.get("date")) or now
    return max(0.0, (expires_at - date).total_seconds())


def _cache_control(value: str) -> dict[str, str]:
    """Cache-Control directives by lower-case name, arguments unquoted (RFC 9111 section 5.2)."""
    directives: dict[str, str] = {}
    for part in value.split(","):
        name, _, argument = part.partition("=")
        if name.strip():
            directives[name.strip().lower()] = argument.strip().strip('"')
    return directives
