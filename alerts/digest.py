"""When a digest goes out: the ``digest:`` setting of a channel (or of a watchlist route).

Input: the setting as written (``1h``, ``30m``, ``daily@08:00``, ``daily@08:00 Europe/Moscow``,
``weekly@mon 08:00 Europe/Moscow``) and a moment; output: the next moment a digest is due,
as an aware UTC datetime. Also the moment alerts held back by ``max_per_hour`` on a channel
without a digest are released (``fold_time``). Pure: no clock (callers pass ``now``), no
database; does not collect alerts or send anything (the outbox does).

Interval digests fall on multiples of the period counted from the Unix epoch (``1h``: every
full UTC hour; ``30m``: :00 and :30), so a restart or a late send never shifts them. Daily
and weekly digests fall on a wall-clock time in their timezone (UTC unless named), which
zoneinfo keeps right across DST changes. A time skipped by the spring change is read with
the offset in force before it, so it goes out the gap's length later on the new clock (02:30
becomes 03:30 summer time); a time that occurs twice (autumn) is used at its first
occurrence only. Either way there is exactly one digest that local day.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, PlainSerializer, PlainValidator, WithJsonSchema

from alerts.base import frozen
from alerts.durations import parse_duration

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_PERIOD = timedelta(minutes=1)  # below a minute a "digest" is just a slower immediate send
RATE_WINDOW = timedelta(hours=1)  # max_per_hour counts messages per UTC clock hour
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_EXAMPLES = (
    "use an interval (1h, 30m) or a time of day: daily@08:00, daily@08:00 Europe/Moscow, "
    "weekly@mon 08:00 Europe/Moscow"
)

DigestKind = Literal["interval", "daily", "weekly"]


@frozen
class DigestSchedule:
    """A parsed ``digest:`` setting. Build it with ``DigestSchedule.parse``.

    ``period`` is set for an interval digest; ``at`` and ``zone`` (and ``weekday``, 0 =
    Monday, for a weekly one) for a time-of-day digest. ``str()`` gives the setting back
    as the user wrote it, for messages and the configuration dump.
    """

    text: str
    kind: DigestKind
    period: timedelta | None = None
    at: time | None = None
    weekday: int | None = None
    zone: tzinfo = UTC

    def __str__(self) -> str:
        return self.text

    @classmethod
    def parse(cls, value: str) -> DigestSchedule:
        """Raise ValueError naming the value and what is wrong with it."""
        if not isinstance(value, str):
            raise ValueError(f"invalid digest {value!r}: {_EXAMPLES}")
        text = " ".join(value.split())
        if not text:
            raise ValueError(f"empty digest setting: {_EXAMPLES}")
        head, sep, rest = text.partition("@")
        word = head.strip().lower()
        if not sep:
            if word in ("daily", "weekly"):
                example = "daily@08:00" if word == "daily" else "weekly@mon 08:00"
                raise ValueError(f"invalid digest {value!r}: {word} needs a time, as in {example}")
            return cls._interval(text, value)
        if word == "daily":
            at, zone = _clock_and_zone(rest, value)
            return cls(text=text, kind="daily", at=at, zone=zone)
        if word == "weekly":
            day, _, clock = rest.strip().partition(" ")
            weekday = _weekday(day, value)
            at, zone = _clock_and_zone(clock, value)
            return cls(text=text, kind="weekly", at=at, weekday=weekday, zone=zone)
        raise ValueError(f"invalid digest {value!r}: {_EXAMPLES}")

    @classmethod
    def _interval(cls, text: str, original: str) -> DigestSchedule:
        if " " in text and not _is_duration(text):
            raise ValueError(
                f"invalid digest {original!r}: a timezone applies only to daily@ and weekly@"
            )
        try:
            seconds = parse_duration(text)
        except ValueError:
            raise ValueError(f"invalid digest {original!r}: {_EXAMPLES}") from None
        period = timedelta(seconds=seconds)
        if period < MIN_PERIOD or seconds != int(seconds):
            raise ValueError(
                f"invalid digest {original!r}: an interval must be whole seconds, at least 1m"
            )
        return cls(text=text, kind="interval", period=period)

    def next_send(self, after: datetime) -> datetime:
        """The first digest moment strictly later than ``after`` (aware; returned in UTC).

        Strictly later, so ``next_send(moment_just_sent)`` moves on to the next one.
        """
        after = _aware_utc(after)
        if self.period is not None:
            elapsed = after - EPOCH
            return EPOCH + (elapsed // self.period + 1) * self.period
        assert self.at is not None  # parse() sets it for every time-of-day kind
        start = after.astimezone(self.zone).date()
        # Start a day early: a wall time inside a DST gap moves forward by the gap, which
        # can carry the previous day's time past the local midnight ``after`` is beyond.
        for offset in range(-1, 9):
            day = start + timedelta(days=offset)
            if self.weekday is not None and day.weekday() != self.weekday:
                continue
            due = _wall_time(day, self.at, self.zone)
            if due > after:
                return due
        raise AssertionError("a day in the next week always matches")  # pragma: no cover


def fold_time(now: datetime, schedule: DigestSchedule | None = None) -> datetime:
    """When an alert held back by ``max_per_hour`` goes out, folded into one digest.

    With a digest ``schedule`` it joins the next digest. Without one, it waits for the start
    of the next UTC hour: the limit counts messages per clock hour (``[hh:00, hh+1:00)``,
    see RATE_WINDOW), so the new hour has room again, and everything held back during the
    old one goes as a single digest then instead of a flood.
    """
    if schedule is not None:
        return schedule.next_send(now)
    now = _aware_utc(now)
    return EPOCH + ((now - EPOCH) // RATE_WINDOW + 1) * RATE_WINDOW


def rate_window_start(now: datetime) -> datetime:
    """Start of the clock hour whose sent messages count against ``max_per_hour``."""
    now = _aware_utc(now)
    return EPOCH + ((now - EPOCH) // RATE_WINDOW) * RATE_WINDOW


def _aware_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"an aware datetime is needed, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _wall_time(day: date, at: time, zone: tzinfo) -> datetime:
    """``at`` on ``day`` in ``zone``, in UTC. fold=0 picks the first of a repeated time
    and, for a skipped one, the offset in force before the change (PEP 495)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _is_duration(text: str) -> bool:
    try:
        parse_duration(text)
    except ValueError:
        return False
    return True


def _clock_and_zone(text: str, original: str) -> tuple[time, tzinfo]:
    clock, _, zone_name = text.strip().partition(" ")
    match = _CLOCK.fullmatch(clock)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"invalid digest {original!r}: the time must be HH:MM, 00:00 to 23:59")
    at = time(int(match.group(1)), int(match.group(2)))
    zone_name = zone_name.strip()
    if not zone_name:
        return at, UTC
    if " " in zone_name:
        raise ValueError(f"invalid digest {original!r}: unexpected text after the timezone")
    try:
        return at, ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        # ValueError: a name zoneinfo refuses outright ("../etc/passwd", an absolute path).
        raise ValueError(
            f"invalid digest {original!r}: unknown timezone {zone_name!r} "
            "(use an IANA name such as Europe/Moscow or UTC)"
        ) from None


def _weekday(text: str, original: str) -> int:
    word = text.strip().lower()
    for names in (WEEKDAYS, _FULL_WEEKDAYS):
        if word in names:
            return names.index(word)
    raise ValueError(
        f"invalid digest {original!r}: weekly@ needs a day (mon ... sun), as in weekly@mon 08:00"
    )


def _validate_schedule(value: object) -> DigestSchedule:
    if isinstance(value, DigestSchedule):
        return value
    return DigestSchedule.parse(value)  # type: ignore[arg-type]


DigestSetting = Annotated[
    DigestSchedule,
    PlainValidator(_validate_schedule),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "examples": ["1h", "daily@08:00 Europe/Moscow"]}),
]
"""A pydantic field type: validates ``"1h"`` or ``"daily@08:00 Europe/Moscow"`` into a
DigestSchedule and serialises back to the string as written."""


def _refuse_bool(value: object) -> object:
    if isinstance(value, bool):  # YAML "yes" is a bool, and bool is an int subclass
        raise ValueError("max_per_hour must be a whole number of messages, at least 1")
    return value


MaxPerHour = Annotated[int, BeforeValidator(_refuse_bool), Field(ge=1)]
"""A pydantic field type for ``max_per_hour``: a whole number >= 1 (a bool is refused)."""
