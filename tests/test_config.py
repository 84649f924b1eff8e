"""Configuration: a valid file loads; every class of mistake is named, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import load_settings
from monitor.errors import ConfigError

VALID = """
database: sqlite:///x.db
defaults: {interval: 10m, backlog: 2h}
feeds:
  - url: https://example.org/feed
    name: Example
    interval: 30s
    tags: [kz]
  - url: https://example.org/other
    backlog: all
watchlists:
  - name: csto
    terms: [CSTO, ОДКБ]
    notify: [hook, mail]
  - name: kz
    query: 'Kazakhstan AND (protest* OR unrest)'
    tags: [kz]
    notify: [console]
channels:
  - name: hook
    type: webhook
    url: https://hooks.example.org/x
    headers: {Authorization: "Bearer ${HOOK_TOKEN}"}
  - name: mail
    type: email
    to: [a@example.org]
    from: m@example.org
    smtp: {host: smtp.example.org, port: 587, starttls: true, username: u, password: p}
  - name: console
    type: log
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), env if env is not None else {"HOOK_TOKEN": "t"})
    return str(info.value)


def test_valid_config_loads_with_env_and_durations(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, VALID), {"HOOK_TOKEN": "secret"})
    assert settings.defaults.interval == 600 and settings.defaults.backlog == 7200
    first, second = settings.feeds
    assert settings.feed_interval(first) == 30 and settings.feed_interval(second) == 600
    assert settings.feed_backlog(first) == 7200 and settings.feed_backlog(second) is None
    hook = settings.channels[0]
    assert hook.headers == {"Authorization": "Bearer secret"}  # type: ignore[union-attr]


def test_database_url_from_environment_overrides_file(tmp_path: Path) -> None:
    env = {"HOOK_TOKEN": "t", "MONITOR_DATABASE_URL": "postgresql+psycopg://u@h/db"}
    assert load_settings(write(tmp_path, VALID), env).database == "postgresql+psycopg://u@h/db"


def test_escaped_dollar_brace_is_literal(tmp_path: Path) -> None:
    text = VALID.replace("Bearer ${HOOK_TOKEN}", "Bearer $${HOOK_TOKEN}")
    hook = load_settings(write(tmp_path, text), {}).channels[0]
    assert hook.headers == {"Authorization": "Bearer ${HOOK_TOKEN}"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("name: Example", "name: Example\n    colour: red"),
            "feeds[0] (Example).colour: unknown key",
        ),
        (("database:", "databse: x\ndatabase:"), "databse: unknown key"),
        (("name: kz\n", "name: csto\n"), "watchlists: duplicate name 'csto'"),
        (("name: console", "name: hook"), "channels: duplicate name 'hook'"),
        (("notify: [console]", "notify: [pager]"), "notify: unknown channel 'pager'"),
        (("interval: 30s", "interval: soon"), "feeds[0] (Example).interval"),
        (("type: log", "type: carrier-pigeon"), "channels[2] (console): unknown channel type"),
        (("port: 587", "port: many"), "channels[1] (mail).smtp.port"),
        (
            ("url: https://example.org/other", "url: ftp://example.org/x"),
            "feeds[1].url: must be an absolute http(s) URL",
        ),
        (("query: 'Kazakhstan AND (protest* OR unrest)'", "query: 'Kazakhstan AND ('"), "query:"),
        (("terms: [CSTO, ОДКБ]", "terms: []"), "needs at least one term"),
    ],
)
def test_each_mistake_is_named(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in VALID
    message = problems(tmp_path, VALID.replace(old, new, 1))
    assert str(tmp_path / "monitor.yaml") in message
    assert expected in message


def test_malformed_query_names_position(tmp_path: Path) -> None:
    message = problems(tmp_path, VALID.replace("(protest* OR unrest)", "(protest* OR unrest"))
    assert "watchlists[1] (kz).query" in message and "position" in message


def test_a_query_that_exhausts_the_parser_is_a_problem_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the query parser's own limits, check reports the field, never a traceback."""

    def exhausted(query: str) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("monitor.config.compile_query", exhausted)
    message = problems(tmp_path, VALID)
    assert "watchlists[1] (kz).query: nested too deeply" in message
    assert "watchlists[0] (csto).terms: nested too deeply" in message


def test_missing_environment_variable_names_the_field(tmp_path: Path) -> None:
    message = problems(tmp_path, VALID, env={})
    assert (
        "channels[0].headers.Authorization: environment variable HOOK_TOKEN is not set" in message
    )


def test_yaml_syntax_error_gives_line(tmp_path: Path) -> None:
    message = problems(tmp_path, "feeds:\n  - url: [unclosed\n")
    assert "line" in message and "invalid YAML" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.yaml", {})


def run_check(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        timeout=60,
    )


def test_check_command_reports_without_traceback(tmp_path: Path) -> None:
    broken = write(tmp_path, VALID.replace("notify: [console]", "notify: [pager]"))
    result = run_check(broken, {"HOOK_TOKEN": "t"})
    assert result.returncode == 2
    assert "unknown channel 'pager'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_check_command_accepts_valid_config(tmp_path: Path) -> None:
    result = run_check(write(tmp_path, VALID), {"HOOK_TOKEN": "t"})
    assert result.returncode == 0, result.stderr
    assert "ok (2 feeds, 2 watchlists, 3 channels)" in result.stdout


def test_check_accepts_the_example_config() -> None:
    example = Path(__file__).parent.parent / "examples" / "monitor.yaml"
    result = run_check(example)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("http", "expected"),
    [
        ("{password: short}", "http.password"),
        ('{password: "ten chars\\u0007!!"}', "http.password: must be printable"),
        ("{session: 1m}", "http.session"),
        ("{session: 90d}", "http.session"),
        ("{hosts: ['https://monitor.example.org']}", "http.hosts: 'https://monitor.example.org'"),
        ("{hosts: ['monitor.example.org:8080']}", "is not a host name"),
    ],
)
def test_dashboard_sign_in_settings_are_checked(tmp_path: Path, http: str, expected: str) -> None:
    message = problems(tmp_path, f"{VALID}\nhttp: {http}\n")
    assert expected in message


def test_the_dashboard_signs_in_with_the_password_or_the_token(tmp_path: Path) -> None:
    text = f'{VALID}\nhttp: {{password: "a long passphrase", token: "{"t" * 16}"}}\n'
    http = load_settings(write(tmp_path, text), {"HOOK_TOKEN": "t"}).http
    assert http is not None and http.credentials == ("a long passphrase", "t" * 16)
    assert http.session == 12 * 3600
