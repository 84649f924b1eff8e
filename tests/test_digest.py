"""Digest schedules (alerts/digest.py): parsing the ``digest:`` setting, when the next digest
is due (aligned intervals, wall-clock times in a timezone, across DST changes), and when
alerts over ``max_per_hour`` are released. Pure: no clock, no servers."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, ValidationError

from alerts.digest import (
    EPOCH,
    DigestSchedule,
    DigestSetting,
    fold_time,
    rate_window_start,
)

BERLIN = ZoneInfo("Europe/Berlin")  # DST in 2026: Mar 29 02:00 -> 03:00, Oct 25 03:00 -> 02:00


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def parse(text: str) -> DigestSchedule:
    return DigestSchedule.parse(text)


# ---------------------------------------------------------------------------------------
# Parsing


@pytest.mark.parametrize(
    ("text", "period", "at", "weekday", "zone"),
    [
        ("1h", timedelta(hours=1), None, None, "UTC"),
        ("30m", timedelta(minutes=30), None, None, "UTC"),
        ("1h30m", timedelta(minutes=90), None, None, "UTC"),
        ("1d", timedelta(days=1), None, None, "UTC"),
        ("daily@08:00", None, time(8, 0), None, "UTC"),
        ("daily@8:05", None, time(8, 5), None, "UTC"),
        ("Daily@23:59 Europe/Moscow", None, time(23, 59), None, "Europe/Moscow"),
        ("weekly@mon 08:00 Europe/Moscow", None, time(8, 0), 0, "Europe/Moscow"),
        ("weekly@Sunday 18:30", None, time(18, 30), 6, "UTC"),
        ("daily@00:00 UTC", None, time(0, 0), None, "UTC"),
    ],
)
def test_settings_parse_into_a_schedule(
    text: str, period: timedelta | None, at: time | None, weekday: int | None, zone: str
) -> None:
    schedule = parse(text)
    assert schedule.period == period
    assert schedule.at == at
    assert schedule.weekday == weekday
    assert str(schedule.zone) == zone
    assert schedule.kind == ("interval" if period else "weekly" if weekday is not None else "daily")


def test_str_gives_the_setting_back_as_written() -> None:
    assert str(parse("  daily@08:00   Europe/Moscow ")) == "daily@08:00 Europe/Moscow"
    assert str(parse("1h30m")) == "1h30m"
    assert f"{parse('weekly@mon 08:00')}" == "weekly@mon 08:00"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty digest setting"),
        ("sometimes", "invalid digest 'sometimes': use an interval"),
        ("daily", "daily needs a time, as in daily@08:00"),
        ("weekly", "weekly needs a time, as in weekly@mon 08:00"),
        ("daily@8", "the time must be HH:MM"),
        ("daily@24:00", "the time must be HH:MM"),
        ("daily@08:60", "the time must be HH:MM"),
        ("daily@08:00 Europe/Moskow", "unknown timezone 'Europe/Moskow'"),
        ("daily@08:00 ../../etc/passwd", "unknown timezone"),
        ("daily@08:00 Europe/Moscow extra", "unexpected text after the timezone"),
        ("weekly@someday 08:00", "weekly@ needs a day"),
        ("weekly@08:00", "weekly@ needs a day"),
        ("hourly@:30", "use an interval"),
        ("30s", "at least 1m"),
        ("0", "at least 1m"),
        ("90.5s", "whole seconds"),
        ("1h Europe/Moscow", "a timezone applies only to daily@ and weekly@"),
    ],
)
def test_bad_settings_raise_value_error_saying_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace(".", r"\.")) as caught:
        parse(text)
    assert "invalid digest" in str(caught.value) or "empty" in str(caught.value)


def test_digest_setting_is_a_pydantic_field_type() -> None:
    class Route(BaseModel):
        digest: DigestSetting | None = None

    route = Route.model_validate({"digest": "daily@08:00 Asia/Almaty"})
    assert route.digest == parse("daily@08:00 Asia/Almaty")
    assert Route(digest=parse("1h")).digest == parse("1h")  # an instance passes through
    assert Route().digest is None
    assert route.model_dump(mode="json") == {"digest": "daily@08:00 Asia/Almaty"}
    assert Route.model_json_schema()["properties"]["digest"]["anyOf"][0]["type"] == "string"
    with pytest.raises(ValidationError, match="unknown timezone 'Asia/Nowhere'"):
        Route.model_validate({"digest": "daily@08:00 Asia/Nowhere"})
    with pytest.raises(ValidationError, match="invalid digest 60"):
        Route.model_validate({"digest": 60})


def test_schedules_are_values() -> None:
    assert parse("1h") == parse("1h") and hash(parse("1h")) == hash(parse("1h"))
    with pytest.raises(AttributeError):
        parse("1h").period = timedelta(minutes=5)  # type: ignore[misc]


# ---------------------------------------------------------------------------------------
# Interval digests: aligned on the Unix epoch


@pytest.mark.parametrize(
    ("text", "after", "due"),
    [
        ("1h", utc(2026, 11, 5, 12, 34, 56), utc(2026, 11, 5, 13)),
        ("1h", utc(2026, 11, 5, 23, 59, 59, 999999), utc(2026, 11, 6)),
        ("30m", utc(2026, 11, 5, 12, 0, 1), utc(2026, 11, 5, 12, 30)),
        ("15m", utc(2026, 11, 5, 12, 44), utc(2026, 11, 5, 12, 45)),
        ("1d", utc(2026, 11, 5, 12), utc(2026, 11, 6)),
    ],
)
def test_interval_digest_is_due_at_the_next_aligned_boundary(
    text: str, after: datetime, due: datetime
) -> None:
    assert parse(text).next_send(after) == due


def test_a_boundary_itself_moves_on_to_the_next_one() -> None:
    schedule = parse("1h")
    assert schedule.next_send(utc(2026, 11, 5, 13)) == utc(2026, 11, 5, 14)


def test_interval_boundaries_do_not_depend_on_when_the_service_started() -> None:
    schedule = parse("7h")  # does not divide a day: still the same boundaries for everyone
    period = timedelta(hours=7)
    starts = [utc(2026, 11, 5, 12) + timedelta(minutes=m) for m in range(0, 7 * 60, 37)]
    boundaries = {schedule.next_send(start) for start in starts}
    for boundary in boundaries:
        assert (boundary - EPOCH) % period == timedelta(0)
    assert all(start < schedule.next_send(start) <= start + period for start in starts)
    assert len(boundaries) == 2  # 37-minute steps over 7 hours cross one boundary


def test_next_send_takes_any_aware_time_and_answers_in_utc() -> None:
    moscow = datetime(2026, 11, 5, 15, 30, tzinfo=ZoneInfo("Europe/Moscow"))  # 12:30 UTC
    due = parse("1h").next_send(moscow)
    assert due == utc(2026, 11, 5, 13) and due.tzinfo is UTC


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        parse("1h").next_send(datetime(2026, 11, 5, 12))
    with pytest.raises(ValueError, match="aware datetime"):
        fold_time(datetime(2026, 11, 5, 12))


# ---------------------------------------------------------------------------------------
# Daily and weekly digests: a wall-clock time in a timezone


@pytest.mark.parametrize(
    ("text", "after", "due"),
    [
        ("daily@08:00", utc(2026, 11, 5, 7, 59), utc(2026, 11, 5, 8)),
        ("daily@08:00", utc(2026, 11, 5, 8), utc(2026, 11, 6, 8)),
        ("daily@08:00", utc(2026, 11, 5, 12), utc(2026, 11, 6, 8)),
        ("daily@08:00 Europe/Moscow", utc(2026, 11, 5, 4, 59), utc(2026, 11, 5, 5)),
        ("daily@08:00 Europe/Moscow", utc(2026, 11, 5, 5), utc(2026, 11, 6, 5)),
        # 23:00 UTC on the 5th is already 05:00 on the 6th in Almaty (UTC+5): due 03:00 UTC.
        ("daily@08:00 Asia/Almaty", utc(2026, 11, 5, 23), utc(2026, 11, 6, 3)),
        ("daily@08:00 America/New_York", utc(2026, 11, 5, 12), utc(2026, 11, 5, 13)),
        # Thursday 2026-11-05 -> Monday 2026-11-09, 08:00 Moscow = 05:00 UTC.
        ("weekly@mon 08:00 Europe/Moscow", utc(2026, 11, 5, 12), utc(2026, 11, 9, 5)),
        ("weekly@mon 08:00 Europe/Moscow", utc(2026, 11, 9, 5), utc(2026, 11, 16, 5)),
        ("weekly@thu 13:00", utc(2026, 11, 5, 12), utc(2026, 11, 5, 13)),
    ],
)
def test_time_of_day_digest_is_due_at_the_next_wall_clock_time(
    text: str, after: datetime, due: datetime
) -> None:
    assert parse(text).next_send(after) == due


def test_daily_digest_keeps_local_time_across_the_spring_change() -> None:
    schedule = parse("daily@08:00 Europe/Berlin")
    saturday = schedule.next_send(utc(2026, 3, 28, 6))
    sunday = schedule.next_send(saturday)
    assert saturday == utc(2026, 3, 28, 7)  # 08:00 CET (UTC+1)
    assert sunday == utc(2026, 3, 29, 6)  # 08:00 CEST (UTC+2): 23 hours later
    assert sunday.astimezone(BERLIN).time() == time(8, 0)


def test_daily_digest_keeps_local_time_across_the_autumn_change() -> None:
    schedule = parse("daily@08:00 Europe/Berlin")
    saturday = schedule.next_send(utc(2026, 10, 24, 5))
    sunday = schedule.next_send(saturday)
    assert saturday == utc(2026, 10, 24, 6)  # 08:00 CEST
    assert sunday == utc(2026, 10, 25, 7)  # 08:00 CET: 25 hours later


def test_a_skipped_wall_time_is_sent_once_just_after_the_gap() -> None:
    schedule = parse("daily@02:30 Europe/Berlin")  # 02:30 does not exist on Mar 29
    day_of_change = schedule.next_send(utc(2026, 3, 28, 1, 30))
    assert day_of_change == utc(2026, 3, 29, 1, 30)  # 03:30 CEST, an hour after 01:30 CET
    assert schedule.next_send(day_of_change) == utc(2026, 3, 30, 0, 30)  # 02:30 CEST


def test_a_repeated_wall_time_is_sent_once_at_its_first_occurrence() -> None:
    schedule = parse("daily@02:30 Europe/Berlin")  # 02:30 happens twice on Oct 25
    first = schedule.next_send(utc(2026, 10, 24, 12))
    assert first == utc(2026, 10, 25, 0, 30)  # 02:30 CEST
    assert schedule.next_send(first) == utc(2026, 10, 26, 1, 30)  # not 01:30 UTC on the 25th
    second_occurrence = utc(2026, 10, 25, 1, 15)  # 02:15 CET, between the two 02:30s
    assert schedule.next_send(second_occurrence) == utc(2026, 10, 26, 1, 30)


def test_daily_digest_is_due_once_per_local_day_all_year() -> None:
    schedule = parse("daily@08:00 Europe/Berlin")
    due = schedule.next_send(utc(2026, 1, 1))
    for _ in range(366):
        following = schedule.next_send(due)
        local, next_local = due.astimezone(BERLIN), following.astimezone(BERLIN)
        assert next_local.time() == time(8, 0)
        assert next_local.date() - local.date() == timedelta(days=1)
        due = following


# ---------------------------------------------------------------------------------------
# Rate limit folding


@pytest.mark.parametrize(
    ("now", "due"),
    [
        (utc(2026, 11, 5, 12, 34, 56), utc(2026, 11, 5, 13)),
        (utc(2026, 11, 5, 12), utc(2026, 11, 5, 13)),
        (utc(2026, 11, 5, 23, 59), utc(2026, 11, 6)),
    ],
)
def test_without_a_digest_held_back_alerts_go_at_the_start_of_the_next_hour(
    now: datetime, due: datetime
) -> None:
    assert fold_time(now) == due
    assert rate_window_start(now) == due - timedelta(hours=1)  # the hour being counted


def test_with_a_digest_held_back_alerts_join_the_next_digest() -> None:
    now = utc(2026, 11, 5, 12, 34)
    assert fold_time(now, parse("daily@08:00 Europe/Moscow")) == utc(2026, 11, 6, 5)
    assert fold_time(now, parse("15m")) == utc(2026, 11, 5, 12, 45)


def test_fold_time_in_another_zone_is_the_utc_hour() -> None:
    kolkata = datetime(2026, 11, 5, 18, 10, tzinfo=ZoneInfo("Asia/Kolkata"))  # 12:40 UTC
    assert fold_time(kolkata) == utc(2026, 11, 5, 13)
