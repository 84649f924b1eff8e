"""Durations as people write them in the configuration: ``30s``, ``10m``, ``1h30m``, ``1d``.

Input: a string or a number; output: float seconds. A plain number (or a numeric string)
is seconds. Used by the channel configs and the retry schedule here, and by the monitor's
configuration module. Does not read any file or environment.

Every duration is finite and at most ``MAX_DURATION``, so any of them can be added to a
datetime without overflowing; ``within`` narrows one field to the range that makes sense
for it (an interval of 0 would poll on every tick, a lease of 0 would spin).
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
# Units are matched longest first so that "ms" is not read as "m" followed by garbage.
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_EXAMPLES = "use seconds or a number with a unit: 30s, 10m, 1h30m, 1d"
HOUR = 3600.0
DAY = 86400.0
YEAR = 365 * DAY
# A century: longer than any sensible setting, and far from timedelta's limit and from the
# year 9999, so now + any duration is a valid datetime.
MAX_DURATION = 100 * YEAR


def parse_duration(value: str | int | float) -> float:
    """Return ``value`` in seconds; raise ValueError naming the bad value otherwise."""
    if isinstance(value, bool):  # bool is an int subclass; "true" is never a duration
        raise ValueError(f"invalid duration {value!r}: {_EXAMPLES}")
    if isinstance(value, int | float):
        try:
            return _checked(float(value), value)
        except OverflowError:  # an int beyond a float's range: YAML reads any digit string
            raise ValueError(f"invalid duration: {_too_long()}") from None
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}: {_EXAMPLES}")
    text = value.strip().lower().replace(" ", "")
    if not text:
        raise ValueError(f"empty duration: {_EXAMPLES}")
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return _checked(seconds, value)
    total = 0.0
    position = 0
    for part in _PART.finditer(text):
        if part.start() != position:
            break
        total += float(part.group(1)) * _UNIT_SECONDS[part.group(2)]
        position = part.end()
    if position != len(text):
        raise ValueError(f"invalid duration {value!r}: {_EXAMPLES}")
    return _checked(total, value)


def _checked(seconds: float, original: object) -> float:
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {original!r}: must be a finite number >= 0")
    if seconds > MAX_DURATION:
        raise ValueError(f"invalid duration {original!r}: {_too_long()}")
    return seconds


def _too_long() -> str:
    return f"at most {format_duration(MAX_DURATION)} (100 years)"


def within(low: float, high: float, *, above: bool = False) -> AfterValidator:
    """The range of one duration field, for ``Annotated[Duration, within(...)]``; ``above``
    excludes ``low`` itself (a timeout of 0 is no timeout). Messages use the units people
    write, not seconds."""

    def check(seconds: float) -> float:
        shown = format_duration(seconds)
        if seconds < low or (above and seconds == low):
            bound = "more than" if above else "at least"
            raise ValueError(f"must be {bound} {format_duration(low)}, got {shown}")
        if seconds > high:
            raise ValueError(f"must be at most {format_duration(high)}, got {shown}")
        return seconds

    return AfterValidator(check)


def format_duration(seconds: float) -> str:
    """Short human form for messages: ``15s``, ``1.5s``, ``2m``, ``1h30m``."""
    if seconds < 60 or seconds != int(seconds):
        return f"{seconds:g}s"
    whole = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A pydantic field type: accepts ``"10m"``, ``90``, ``"1h30m"``; validates to float seconds."""
