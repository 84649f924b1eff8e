"""HTTP field values read the same way by the fetcher and the alert channels, and URLs
shown the same way everywhere (without their credentials: :mod:`httpfields.redact`).

Input: the text of a response header field as received (``Date``, ``Expires``,
``Retry-After``) and, for relative values, the current time. Output: an aware UTC
``datetime`` or a number of seconds; ``None`` for a value that cannot be read. A hostile
value never raises: these fields come from servers we do not control.

Does not: touch the network, read configuration, or decide what a caller does with the
value (``monitor.fetch`` turns a delay into the time of the next poll, ``alerts`` hands it
to its retry schedule). Imports neither ``monitor`` nor ``alerts``: both import it.
"""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime

from httpfields.redact import redact_url

__all__ = ["header_problem", "parse_http_date", "redact_url", "retry_after_seconds"]

_DELAY_SECONDS = re.compile(r"[0-9]+")  # delay-seconds = 1*DIGIT (RFC 9110 section 10.2.3)
_FIELD_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a token (RFC 9110 section 5.1)
# What we send as a value: visible ASCII, spaces and tabs only inside (RFC 9110 section 5.5
# allows obs-text too, but httpx encodes values as ASCII).
_FIELD_VALUE = re.compile(r"[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*")


def header_problem(name: str, value: str) -> str | None:
    """Why a header we are asked to send (a feed's or a webhook's) cannot be sent, or None.

    The one rule, for the configuration check and for the fetcher at run time. It names the
    problem, never the value: header values are often credentials.
    """
    if not _FIELD_NAME.fullmatch(name):
        return "the name is not an HTTP field name (letters, digits and !#$%&'*+-.^_`|~ only)"
    if not value or _FIELD_VALUE.fullmatch(value):
        return None
    if "\r" in value or "\n" in value:
        return "the value contains a line break"
    if not value.isascii():
        return "the value contains characters outside ASCII, which a header cannot carry"
    if value != value.strip(" \t"):
        return "the value has leading or trailing whitespace"
    return "the value contains a control character"


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP-date (RFC 9110 section 5.6.7) as an aware UTC datetime, None when unreadable.

    Reads the preferred IMF-fixdate and the obsolete RFC 850 and asctime forms, as a
    recipient must. HTTP-dates are always GMT, so a date without a zone (asctime, or
    ``-0000``) is taken as UTC.
    """
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value.strip())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)  # may leave the calendar: "01 Jan 0001 ... +0100"
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """How many seconds Retry-After asks to wait (RFC 9110 section 10.2.3), from ``now``.

    The value is delay-seconds or an HTTP-date; a date in the past means at once (0). None
    when the field is absent or unreadable (a negative or fractional number, a date that
    does not parse). A number too large for a float gives ``math.inf``: how long to wait
    at most is the caller's rule. ``now`` must be aware.
    """
    if not value:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        return float(value)  # from text, not int(): no digit limit, no OverflowError
    when = parse_http_date(value)
    if when is None:
        return None
    return max(0.0, (when - now).total_seconds())
