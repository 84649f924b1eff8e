"""Text on its way to a terminal: the one place that makes it safe to show.

Feeds are written by strangers, and their titles, links, guids and error texts reach
``monitor`` output and the service log. A terminal obeys what such text may carry: escape
sequences that move the cursor, clear the screen, retitle the window or fake a prompt
(C0 and C1 controls, DEL), and bidi controls that make text read differently from what it
is. These are shown escaped (``\\x1b``, ``\\u202e``), never raw. Input: any text; output:
text with only printable characters, line feeds (between our own lines) and tabs.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import click
from pythonjsonlogger.json import JsonFormatter

from alerts.controls import UNSAFE

# The one set of characters that steer a terminal (``alerts.controls``, the lowest floor):
# all of it for a log line; in command output our own line feeds and tabs stay.
_UNSAFE_LINE = UNSAFE
_UNSAFE_TEXT = re.compile(f"(?![\n\t]){UNSAFE.pattern}")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def safe_text(text: str) -> str:
    """``text`` with every control escaped but line feeds and tabs."""
    return _UNSAFE_TEXT.sub(_escaped, text)


def safe_line(text: str) -> str:
    """``text`` on one line: line feeds and tabs escaped too (a log record is one line, and
    a feed must not be able to forge the next one)."""
    return _UNSAFE_LINE.sub(_escaped, text)


def echo(text: str = "", *, err: bool = False) -> None:
    click.echo(safe_text(text), err=err)


def safe_json(text: str) -> str:
    """JSON text with readable Unicode and every control as a ``\\u`` escape: json.dumps
    escapes C0 itself but leaves C1 and bidi controls raw, and outside strings JSON has
    none of these characters, so escaping them all keeps the same value."""
    return _UNSAFE_TEXT.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


def echo_json(value: Any) -> None:
    """JSON for scripts (:func:`safe_json`)."""
    click.echo(safe_json(json.dumps(value, indent=2, ensure_ascii=False)))


class SafeFormatter(logging.Formatter):
    """Log records with feed text escaped: each message on one line, and tracebacks (our
    own, multi-line) with their controls escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = safe_line(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return safe_text(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return safe_text(super().formatStack(stack_info))


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class SafeJsonFormatter(JsonFormatter):
    """``log: {format: json}``: one JSON object per line for log shippers, with the fields
    of the text line (``time``, ``level``, ``logger``, ``message``, and ``exc_info`` for a
    traceback). JSON strings carry any text safely once C1 and bidi controls are escaped
    too."""

    def __init__(self) -> None:
        super().__init__(
            LOG_FORMAT,
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )

    def jsonify_log_record(self, log_data: Any) -> str:
        return safe_json(super().jsonify_log_record(log_data))
