"""The settings of running it for months: the HTTP server, retention, feed health, logs.

Separate from :mod:`monitor.config` only to keep each module short; ``Settings`` holds one
of each. The same rules apply: every field bounded, errors naming the field, secrets never
quoted.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from alerts.durations import DAY, HOUR, YEAR, Duration, within

DEFAULT_LISTEN = "127.0.0.1:8080"
TOKEN_MIN = 16  # a shorter bearer token is guessable over a network
# a DNS name: labels of letters, digits and inner hyphens, dot-separated
HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?", re.I)
PASSWORD_MIN = 10  # the login form slows guessing down; a short password still falls


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8080`` for IPv6) as a host and a port; port 0 picks a free one."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("expected host:port, e.g. 127.0.0.1:8080")
    host = host.removeprefix("[").removesuffix("]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ValueError("the host must be an IP address or localhost") from None
    return host, int(port)


class HttpConfig(_Model):
    """``http:``: health, metrics, the JSON API and the dashboard on one server.
    ``http: null`` turns it off. Without a token the API is off (and says so); without a
    token or a password the dashboard is read-only (and says so)."""

    listen: str = DEFAULT_LISTEN
    token: str | None = Field(default=None, max_length=4096)
    # the dashboard's sign-in: this password (or the token) in its login form; with
    # neither set the dashboard is read-only and says so
    password: str | None = Field(default=None, min_length=PASSWORD_MIN, max_length=1024)
    # how long a dashboard sign-in lasts
    session: Annotated[Duration, within(300, 30 * DAY)] = 12 * HOUR
    # host names the dashboard answers to besides IP addresses and localhost (a reverse
    # proxy's public name); any other Host header is refused, which defeats DNS rebinding
    hosts: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(
        default=[], max_length=100
    )
    # /readyz answers 503 when the scheduler has not ticked for this long
    max_lag: Annotated[Duration, within(1, DAY)] = 60.0

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        split_listen(value)
        return value

    @field_validator("password")
    @classmethod
    def _password(cls, value: str | None) -> str | None:
        if value is not None and not value.isprintable():
            raise ValueError("must be printable characters (no control characters)")
        return value

    @property
    def credentials(self) -> tuple[str, ...]:
        """What signs in to the dashboard: the password and the token, those set."""
        return tuple(secret for secret in (self.password, self.token) if secret)

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if not HOST_NAME.fullmatch(host):
                raise ValueError(f"{host!r} is not a host name (no scheme, port or path)")
        return [host.lower().rstrip(".") for host in value]

    @field_validator("token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value) < TOKEN_MIN or not value.isascii() or not value.isprintable():
            raise ValueError(
                f"must be at least {TOKEN_MIN} printable ASCII characters "
                "(e.g. the output of `openssl rand -hex 32`)"
            )
        return value


class RetentionConfig(_Model):
    """``retention: {items: 180d}``: items first seen longer ago are pruned (null keeps
    them for ever). An item whose alert is still to be delivered is never pruned."""

    items: Annotated[Duration, within(DAY, 100 * YEAR)] | None = None
    # rows deleted per transaction: a prune never holds the database for long
    batch: int = Field(default=500, ge=1, le=100_000)
    every: Annotated[Duration, within(60, DAY)] = HOUR


class HealthConfig(_Model):
    """``health:``: tell a channel when a feed fails for long, goes silent, is gone or has
    moved, and when it recovers."""

    notify: list[str] = []
    failing_after: Annotated[Duration, within(60, YEAR)] = DAY
    # silent: no new item for this many times the feed's usual gap between new items ...
    silent_factor: float = Field(default=5.0, ge=1.5, le=1000, allow_inf_nan=False)
    # ... and never less than this (a feed that posts hourly is not silent after 5 hours)
    silent_after: Annotated[Duration, within(HOUR, YEAR)] = 2 * DAY
    every: Annotated[Duration, within(10, DAY)] = 300.0


class StoriesConfig(_Model):
    """``stories:``: the same news from several feeds within ``window`` is one story, and
    alerts once per watchlist and channel (a route with ``stories: separate`` still gets
    every item). When a story's distinct sources reach a step of ``updates``, one update
    goes out (``updates: []``: never)."""

    enabled: bool = True
    window: Annotated[Duration, within(HOUR, 30 * DAY)] = 2 * DAY
    updates: list[Annotated[int, Field(ge=2, le=10_000)]] = Field(default=[5, 15], max_length=20)

    @field_validator("updates")
    @classmethod
    def _increasing(cls, steps: list[int]) -> list[int]:
        if steps != sorted(set(steps)):
            raise ValueError("steps must be increasing, without repeats (e.g. [5, 15])")
        return steps


class LogSettings(_Model):
    """``log: {format: json}``: one JSON object per line for log shippers."""

    format: Literal["text", "json"] = "text"
