"""Durations as people write them in the configuration: ``30s``, ``10m``, ``1h30m``, ``1d``.

Input: a string or a number; output: float seconds. A plain number (or a numeric string)
is seconds. Used by the channel configs and the retry schedule here, and by the monitor's
configuration module. Does not read any file or environment.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
# Units are matched longest first so that "ms" is not read as "m" followed by garbage.
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_EXAMPLES = "use seconds or a number with a unit: 30s, 10m, 1h30m, 1d"


def parse_duration(value: str | int | float) -> float:
    """Return ``value`` in seconds; raise ValueError naming the bad value otherwise."""
    if isinstance(value, bool):  # bool is an int subclass; "true" is never a duration
        raise ValueError(f"invalid duration {value!r}: {_EXAMPLES}")
    if isinstance(value, int | float):
        return _checked(float(value), value)
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}: {_EXAMPLES}")
    text = value.strip().lower().replace(" ", "")
    if not text:
        raise ValueError(f"empty duration: {_EXAMPLES}")
    try:
        return _checked(float(text), value)
    except ValueError:
        pass
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
    return seconds


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
