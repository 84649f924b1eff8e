"""The retry schedule (alerts/retry.py) and duration parsing (alerts/durations.py)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel, ValidationError

from alerts.durations import Duration, format_duration, parse_duration
from alerts.retry import DEFAULT_SCHEDULE, MAX_RETRY_AFTER, RetryPolicy

NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)


def delays(policy: RetryPolicy, retry_after: float | None = None) -> list[float | None]:
    out: list[float | None] = []
    for made in range(policy.max_attempts + 1):
        when = policy.next_attempt(made, NOW, retry_after)
        out.append(None if when is None else (when - NOW).total_seconds())
    return out


def test_default_schedule_is_svix_like_then_dead() -> None:
    assert DEFAULT_SCHEDULE == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert delays(RetryPolicy(jitter=0)) == [*DEFAULT_SCHEDULE, None]


def test_first_attempt_is_immediate_even_with_jitter() -> None:
    assert RetryPolicy().next_attempt(0, NOW, None) == NOW


def test_jitter_stays_within_its_fraction_and_varies() -> None:
    policy = RetryPolicy(jitter=0.1)
    rng = random.Random(7)
    seen = {(policy.next_attempt(3, NOW, None, rng) - NOW).total_seconds() for _ in range(500)}  # type: ignore[operator]
    assert all(1800 * 0.9 <= delay <= 1800 * 1.1 for delay in seen)
    assert len(seen) > 400
    assert min(seen) < 1800 * 0.92 and max(seen) > 1800 * 1.08


def test_retry_after_wins_when_later_and_never_shortens() -> None:
    policy = RetryPolicy(jitter=0)
    assert policy.next_attempt(1, NOW, 60) == NOW + timedelta(seconds=60)
    assert policy.next_attempt(2, NOW, 60) == NOW + timedelta(seconds=300)
    assert policy.next_attempt(1, NOW, 0) == NOW + timedelta(seconds=5)


def test_retry_after_is_capped_at_one_day() -> None:
    when = RetryPolicy(jitter=0).next_attempt(1, NOW, 10**9)
    assert when == NOW + timedelta(seconds=MAX_RETRY_AFTER) == NOW + timedelta(days=1)


def test_retry_after_does_not_revive_an_exhausted_schedule() -> None:
    policy = RetryPolicy([0, 5], jitter=0)
    assert policy.next_attempt(2, NOW, 30) is None


def test_channel_retry_setting_lists_waits_after_the_first_attempt() -> None:
    policy = RetryPolicy.from_retries([60, 600], jitter=0)
    assert delays(policy) == [0, 60, 600, None]
    assert RetryPolicy.from_retries([]).max_attempts == 1
    assert RetryPolicy.from_retries(None).schedule == DEFAULT_SCHEDULE


@pytest.mark.parametrize(
    ("schedule", "jitter"), [((), 0.1), ((0, -5), 0.1), ((0, 5), 1.0), ((0,), -0.1)]
)
def test_invalid_policy_is_refused(schedule: tuple[float, ...], jitter: float) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(schedule, jitter)


def test_negative_attempt_count_is_a_bug() -> None:
    with pytest.raises(ValueError):
        RetryPolicy().next_attempt(-1, NOW, None)


# ---------------------------------------------------------------------------------------
# Durations


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("1h", 3600),
        ("1d", 86400),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("2w", 1209600),
        ("500ms", 0.5),
        ("1.5h", 5400),
        ("0", 0),
        ("45", 45),
        (" 90 ", 90),
        (15, 15),
        (2.5, 2.5),
        ("10M", 600),
    ],
)
def test_durations_parse_to_seconds(value: str | float, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "soon", "10 minutes", "1x", "h", "1h30", "-5", "-1m", "nan"])
def test_bad_durations_raise_value_error_naming_the_value(value: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


def test_bool_is_not_a_duration() -> None:
    with pytest.raises(ValueError):
        parse_duration(True)


def test_duration_is_a_pydantic_field_type() -> None:
    class Settings(BaseModel):
        interval: Duration = 60.0

    assert Settings().interval == 60.0
    assert Settings.model_validate({"interval": "5m"}).interval == 300.0
    with pytest.raises(ValidationError, match="invalid duration 'often'"):
        Settings.model_validate({"interval": "often"})


@pytest.mark.parametrize(
    ("seconds", "text"), [(15, "15s"), (0.3, "0.3s"), (90, "1m30s"), (5400, "1h30m"), (86400, "1d")]
)
def test_durations_format_for_messages(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
