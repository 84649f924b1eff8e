"""HTTP field values shared by the fetcher and the alert channels (httpfields): HTTP-dates
and Retry-After, read from hostile text without raising."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from httpfields import header_problem, parse_http_date, retry_after_seconds

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 02 Jan 2030 03:04:05 GMT",  # IMF-fixdate, the preferred form
        "Wednesday, 02-Jan-30 03:04:05 GMT",  # obsolete RFC 850 form
        "Wed Jan  2 03:04:05 2030",  # obsolete asctime form, no zone: GMT
        "Wed, 02 Jan 2030 03:04:05 -0000",  # no zone either
        "  Wed, 02 Jan 2030 04:04:05 +0100  ",  # not GMT, as some servers send
    ],
)
def test_http_date_forms_read_as_aware_utc(value: str) -> None:
    moment = parse_http_date(value)
    assert moment == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert moment is not None and moment.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [None, "", "0", "soon", "Wed, 32 Jan 2030 03:04:05 GMT", "Fri, 31 Dec 9999 23:59:59 -2359"],
)
def test_unreadable_http_date_is_none(value: str | None) -> None:
    assert parse_http_date(value) is None


def test_parse_retry_after_forms() -> None:
    assert retry_after_seconds(" 30 ", NOW) == 30.0
    assert retry_after_seconds("0", NOW) == 0.0
    assert retry_after_seconds("Wed, 02 Jan 2030 03:04:05 GMT", NOW) == 97445.0
    for junk in (None, "soon", "-5", "", "1.5", "+5", "0x10", "²", "١٢"):
        assert retry_after_seconds(junk, NOW) is None


def test_retry_after_date_in_the_past_means_at_once() -> None:
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", NOW) == 0.0


@pytest.mark.parametrize(("value", "expected"), [("9" * 40, 1e40), ("9" * 5000, math.inf)])
def test_absurdly_large_retry_after_does_not_raise(value: str, expected: float) -> None:
    # int() refuses strings past 4300 digits and float(int) overflows: neither may escape.
    assert retry_after_seconds(value, NOW) == expected


@given(st.text())
def test_http_date_never_raises(value: str) -> None:
    moment = parse_http_date(value)
    assert moment is None or moment.tzinfo is UTC


@given(
    st.one_of(
        st.text(),
        st.from_regex(r"\A[0-9]{1,400}\Z"),
        st.datetimes(timezones=st.just(UTC)).map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT")),
    )
)
def test_retry_after_never_raises_and_is_never_negative(value: str) -> None:
    seconds = retry_after_seconds(value, NOW)
    assert seconds is None or seconds >= 0


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("Authorization", "Bearer t0ken", None),
        ("X-Key", "", None),
        ("X Key", "v", "the name is not an HTTP field name"),
        ("X-Key", "s3cret\r\nEvil: 1", "the value contains a line break"),
        ("X-Key", "s3cret\x00", "the value contains a control character"),
        ("X-Key", "ключ", "the value contains characters outside ASCII"),
        ("X-Key", " s3cret", "the value has leading or trailing whitespace"),
    ],
)
def test_one_rule_for_the_headers_we_send(name: str, value: str, problem: str | None) -> None:
    found = header_problem(name, value)
    assert found == problem if problem is None else (found or "").startswith(problem)
    assert "s3cret" not in (found or "")  # never the value
