"""Nothing from a feed reaches a terminal raw: command output and the service log."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from feedserver import FeedServer
from test_service import NOW, rss

from monitor.app import poll_once
from monitor.cli import app
from monitor.cli.terminal import (
    SafeFormatter,
    SafeJsonFormatter,
    echo_json,
    safe_line,
    safe_text,
)
from monitor.config import load_settings

HOSTILE = "A\x1b]0;pwned\x07B\x1b[31mC\x9b2JD\u202eE\u2066F\x00G\ud800H"
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\u2066", "\x00", "\ud800")


def test_controls_are_escaped_and_the_rest_kept() -> None:
    shown = safe_text(HOSTILE + "\nТоқаев\tok")
    assert not any(c in shown for c in RAW)
    assert shown.startswith("A\\x1b]0;pwned\\x07B\\x1b[31mC\\x9b2JD\\u202eE\\u2066F\\x00G\\ud800H")
    assert shown.endswith("\nТоқаев\tok")  # our own line breaks and any script stay
    assert safe_line("a\nforged line\tx") == "a\\x0aforged line\\x09x"


def test_json_output_escapes_controls_and_still_reads_back(capsys: object) -> None:
    echo_json({"title": HOSTILE, "name": "ОДКБ"})
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert not any(c in out for c in RAW)
    assert "ОДКБ" in out  # readable, not \\u-escaped
    assert json.loads(out) == {"title": HOSTILE, "name": "ОДКБ"}


def test_a_log_record_stays_on_one_line_with_controls_escaped() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("test.terminal")
    logger.addHandler(handler)
    try:
        logger.warning("feed=%s", "x\n2026-12-01 INFO forged " + HOSTILE)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert text.count("\n") == 1 and not any(c in text for c in RAW)


async def test_feed_text_with_escapes_reaches_command_output_escaped(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """A hostile title, link and advertised feed URL, through polling, `monitor alerts`,
    `monitor feeds` and their JSON forms."""
    title = "CSTO \x1b]0;owned\x07 summit \x9b2J \u202eevil"
    feed_server.set_feed("/feed.xml", rss(("g1", title, "CSTO", NOW)))
    page = b'<html><head><link rel="alternate" type="application/rss+xml" href="/x\x1b[2J.xml">'
    feed_server.set_response("/page", 200, page, {"Content-Type": "text/html"})
    config = tmp_path / "monitor.yaml"
    config.write_text(
        f"""
database: sqlite:///{tmp_path / "m.db"}
polling: {{parse_workers: 0}}
feeds: [{{url: "{feed_server.url("/feed.xml")}"}}, {{url: "{feed_server.url("/page")}"}}]
watchlists: [{{name: csto, terms: [CSTO], notify: [log]}}]
channels: [{{name: log, type: log}}]
""",
        encoding="utf-8",
    )
    await poll_once(load_settings(config, {}))
    for command in (["alerts"], ["alerts", "--json"], ["feeds"], ["feeds", "--json"]):
        result = CliRunner().invoke(app, [*command, "--config", str(config)])
        assert result.exit_code == 0, result.output
        assert not any(c in result.output for c in RAW), (command, result.output)


def test_a_json_log_record_is_one_object_with_the_text_lines_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeJsonFormatter())
    logger = logging.getLogger("test.terminal.json")
    logger.addHandler(handler)
    try:
        logger.warning("feed=%s", "x\n" + HOSTILE + " Тоқаев")
        try:
            raise ValueError("boom\x1b[2J")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and not any(c in stream.getvalue() for c in RAW)
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "feed=x\n" + HOSTILE + " Тоқаев"  # the value survives
    assert "Тоқаев" in lines[0]  # readable, not \\u-escaped
    assert first["level"] == "WARNING" and first["logger"] == "test.terminal.json"
    assert first["time"][:2] == "20"
    assert "ValueError: boom" in second["exc_info"]


async def test_the_service_logs_json_when_configured(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """``log: {format: json}`` through the real command: every stderr line is an object."""
    feed_server.set_feed("/feed.xml", rss(("g1", "CSTO \x1b[2J summit", "CSTO", NOW)))
    config = tmp_path / "monitor.yaml"
    config.write_text(
        f"""
database: sqlite:///{tmp_path / "m.db"}
polling: {{parse_workers: 0}}
log: {{format: json}}
feeds: [{{url: "{feed_server.url("/feed.xml")}"}}]
watchlists: [{{name: csto, terms: [CSTO], notify: [log]}}]
channels: [{{name: log, type: log}}]
""",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "poll", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert records and all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert any(r["logger"] == "monitor.poll" for r in records)
    assert "\x1b" not in result.stderr
