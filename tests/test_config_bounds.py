"""Configuration bounds: what would break at run time is refused at load, naming the field.

Durations have a range per field and a century at most anywhere (no timedelta overflow);
counts stay below what a process can open; headers, URLs, names and credentials are ones
the service can send; and no message quotes a secret.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.durations import MAX_DURATION, parse_duration
from monitor.config import load_settings
from monitor.errors import ConfigError

FEED = "feeds: [{url: 'https://example.org/feed', name: Wire}]\n"
SECRET = "hunter2-very-secret"


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    path = tmp_path / "monitor.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env or {})
    return str(info.value)


def loads(tmp_path: Path, text: str) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(text, encoding="utf-8")
    load_settings(path, {})


@pytest.mark.parametrize("value", ["99999999999w", "36501d", 10**400, "5" * 20])
def test_durations_beyond_a_century_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="at most 36500d"):
        parse_duration(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["1" + "0" * 400, "1e400", "inf", float("inf")])
def test_infinite_durations_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="finite"):
        parse_duration(value)  # type: ignore[arg-type]


def test_a_century_is_the_longest_duration() -> None:
    assert parse_duration("36500d") == MAX_DURATION


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("service: {lease: 0}", "service.lease: must be at least 2s, got 0s"),
        ("service: {lease: 2d}", "service.lease: must be at most 1d, got 2d"),
        ("service: {tick: 0}", "service.tick: must be at least 0.1s, got 0s"),
        ("service: {tick: 2h}", "service.tick: must be at most 1h, got 2h"),
        ("defaults: {interval: 0}", "defaults.interval: must be at least 1s, got 0s"),
        ("defaults: {interval: 400d}", "defaults.interval: must be at most 365d"),
        (
            FEED.replace("Wire", "Wire, interval: 0"),
            "feeds[0] (Wire).interval: must be at least 1s",
        ),
        (FEED.replace("Wire", "Wire, interval: 0.5s"), "feeds[0] (Wire).interval"),
        ("defaults: {interval: 99999999999w}", "defaults.interval: invalid duration"),
        ("defaults: {backlog: 99999999999w}", "defaults.backlog: invalid duration"),
        ("polling: {timeout: 0}", "polling.timeout: must be more than 0s, got 0s"),
        ("polling: {deadline: 2h}", "polling.deadline: must be at most 1h, got 2h"),
        ("polling: {max_interval: 0}", "polling.max_interval: must be at least 1s"),
        ("polling: {max_backoff: 999d}", "polling.max_backoff: must be at most 365d"),
        ("polling: {max_body: 0}", "polling.max_body: must be between 1KiB and 1GiB, got 0"),
        ("polling: {max_body: 2GiB}", "polling.max_body: must be between 1KiB and 1GiB"),
        ("polling: {max_body: " + "9" * 400 + "KiB}", "polling.max_body: not a size: too large"),
        ("polling: {max_body: yes}", "polling.max_body: not a size"),
        ("polling: {max_concurrency: 100000000000000000000}", "polling.max_concurrency"),
        ("polling: {per_host: 5000}", "polling.per_host"),
        ("polling: {parse_workers: 100000}", "polling.parse_workers"),
        ("polling: {jitter: .nan}", "polling.jitter"),
    ],
)
def test_each_setting_has_a_range(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in problems(tmp_path, text + "\n")


def channel(extra: str) -> str:
    return f"channels: [{{name: hook, type: webhook, url: 'https://h.example/x', {extra}}}]\n"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("retry: [31d]", "channels[0] (hook).retry[0]: must be at most 30d"),
        ("retry: [99999999999w]", "channels[0] (hook).retry[0]: invalid duration"),
        ("timeout: 0", "channels[0] (hook).timeout: must be more than 0s"),
        ("timeout: 2h", "channels[0] (hook).timeout: must be at most 1h"),
        ("digest: 99999999999w", "channels[0] (hook).digest: invalid digest"),
    ],
)
def test_channel_durations_are_bounded(tmp_path: Path, extra: str, expected: str) -> None:
    assert expected in problems(tmp_path, channel(extra))


def test_smtp_timeout_is_bounded(tmp_path: Path) -> None:
    text = (
        "channels: [{name: mail, type: email, to: [a@example.org], from: m@example.org,"
        " smtp: {host: smtp.example.org, timeout: 0}}]\n"
    )
    assert "channels[0] (mail).smtp.timeout: must be more than 0s" in problems(tmp_path, text)


def test_lease_must_outlast_the_deadline_of_a_poll(tmp_path: Path) -> None:
    message = problems(tmp_path, "polling: {deadline: 30s}\nservice: {lease: 30s}\n")
    expected = "service.lease: must be longer than polling.deadline + polling.parse_budget (50s)"
    assert expected in message
    loads(tmp_path, "polling: {deadline: 20s, parse_budget: 9s}\nservice: {lease: 30s}\n")


def test_a_send_must_end_before_the_outbox_stops_waiting(tmp_path: Path) -> None:
    text = """
service: {lease: 40s}
polling: {deadline: 20s}
channels:
  - {name: hook, type: webhook, url: 'https://h.example/x', timeout: 11s}
  - {name: mail, type: email, to: [a@example.org], from: m@example.org, smtp: {host: h}}
"""
    message = problems(tmp_path, text)
    assert "channels[0] (hook).timeout: must be at most a quarter of service.lease (10s)" in message
    assert "channels[1] (mail).smtp.timeout: must be at most a quarter of service.lease" in message


def test_zero_retry_waits_and_short_settings_in_range_still_load(tmp_path: Path) -> None:
    loads(
        tmp_path,
        "defaults: {interval: 1s}\nservice: {tick: 0.1s, lease: 3s}\n"
        "polling: {deadline: 2s, parse_budget: 0.5s, timeout: 0.5s, max_body: 1KiB,"
        " parse_workers: 0}\n" + channel("retry: [0s, 0s, 30d], timeout: 0.3"),
    )


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ('{X-Key: "a\\r\\nEvil: 1"}', "header 'X-Key': the value contains a line break"),
        ('{X-Key: "a\\u0000"}', "header 'X-Key': the value contains a control character"),
        ('{X-Key: "ключ"}', "header 'X-Key': the value contains characters outside ASCII"),
        ('{"X Key": v}', "header 'X Key': the name is not an HTTP field name"),
        ('{"X-Key:": v}', "header 'X-Key:': the name is not an HTTP field name"),
        ("{X-Key: a, x-key: b}", "header 'x-key' is given twice"),
        ("{Content-Length: '5'}", "headers ['Content-Length'] are set by the fetcher itself"),
    ],
)
def test_feed_headers_that_cannot_be_sent_are_refused_naming_feed_and_header(
    tmp_path: Path, headers: str, expected: str
) -> None:
    message = problems(tmp_path, FEED.replace("Wire", f"Wire, headers: {headers}"))
    assert f"feeds[0] (Wire).headers: {expected}" in message


def test_header_values_are_never_quoted(tmp_path: Path) -> None:
    text = FEED.replace("Wire", "Wire, headers: {Authorization: 'Bearer ${TOKEN}\\n'}")
    hook = channel("headers: {Authorization: 'Bearer ${TOKEN}é'}")
    message = problems(tmp_path, text + hook, {"TOKEN": SECRET})
    assert "header 'Authorization'" in message and "channels[0] (hook).headers" in message
    assert SECRET not in message and "Bearer" not in message


def test_spaces_around_a_header_value_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(FEED.replace("Wire", 'Wire, headers: {X-Key: " k\\t"}'), encoding="utf-8")
    assert load_settings(path, {}).feeds[0].headers == {"X-Key": "k"}


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/a feed",
        "https://example.org/\\x01",
        "ftp://example.org/feed",
        "https:///feed",
        "https://example.org:99999/feed",
        "https://example.org/" + "a" * 2100,
    ],
)
def test_feed_urls_the_fetcher_cannot_request_are_refused(tmp_path: Path, url: str) -> None:
    assert "feeds[0].url:" in problems(tmp_path, f'feeds: [{{url: "{url}"}}]\n')


def test_urls_with_credentials_are_not_quoted(tmp_path: Path) -> None:
    feed = f'{{url: "https://u:{SECRET}@example.org/f?key={SECRET}"}}'
    message = problems(tmp_path, f"feeds: [{feed}, {feed}]\n")
    assert "feeds[1]: the same url as feeds[0]" in message and SECRET not in message
    hook = f'{{name: h, type: webhook, url: "ftp://hooks.example.org/services/{SECRET}"}}'
    message = problems(tmp_path, f"channels: [{hook}]\n")
    assert "channels[0] (h).url: must be an absolute http(s) URL" in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("feeds: [{url: 'https://e.org/f', name: \"a\\e[31mb\"}]", "feeds[0].name: 'a\\x1b[31mb'"),
        ('watchlists: [{name: "a\\nb", terms: [x]}]', "watchlists[0].name: 'a\\nb' contains"),
        ('channels: [{name: "a\\u202eb", type: log}]', "channels[0].name:"),
        (f"channels: [{{name: {'n' * 201}, type: log}}]", "at most 200 characters"),
    ],
)
def test_names_that_would_reach_logs_raw_are_refused(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert expected in problems(tmp_path, text + "\n")


@pytest.mark.parametrize(
    ("smtp", "field"),
    [
        ("username: u, password: 'pässwörd'", "smtp.password"),
        ("username: 'üser', password: p", "smtp.username"),
        ('username: u, password: "a\\0b"', "smtp.password"),
        ("host: 'smtp example'", "smtp.host"),
        ('ca_file: "/etc/ca\\0.pem"', "smtp.ca_file"),
    ],
)
def test_smtp_settings_a_server_may_not_read_are_refused(
    tmp_path: Path, smtp: str, field: str
) -> None:
    smtp = smtp if "host:" in smtp else f"host: smtp.example.org, {smtp}"
    text = (
        "channels: [{name: mail, type: email, to: [a@example.org], from: m@example.org,"
        f" smtp: {{{smtp}}}}}]\n"
    )
    message = problems(tmp_path, text)
    assert f"channels[0] (mail).{field}:" in message
    assert "pässwörd" not in message and "üser" not in message


def test_values_from_the_environment_are_never_echoed(tmp_path: Path) -> None:
    text = "defaults: {interval: '${INTERVAL}'}\n"
    text += "feeds: [{url: 'https://e.org/f', name: '${NAME}'}]\n"
    env = {"INTERVAL": SECRET, "NAME": f"{SECRET}\n"}
    message = problems(tmp_path, text, env)
    assert "defaults.interval: invalid duration '${INTERVAL}'" in message
    assert "feeds[0].name: '${NAME}' contains a control character" in message
    assert SECRET not in message
