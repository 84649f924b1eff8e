"""The settings every channel type shares: its name, retry schedule, digest and rate limit.

Input: one channel's mapping from the configuration file; output: the validated fields
below, inherited by each channel's own config model (WebhookConfig, EmailConfig, LogConfig),
which adds its ``type`` discriminator and its own fields. Unknown keys are refused.
Also the field types the monitor's configuration shares with the channels (``Name``,
``HttpUrl``, ``HeaderFields``, ``Timeout``), so each is held to one rule wherever it is
written. Their messages never quote a URL or a header value: both often carry credentials.
Does not read files or the environment (the monitor's config module does) and does not
decide anything about delivery: the outbox reads ``digest`` and ``max_per_hour``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from alerts.controls import UNSAFE
from alerts.digest import DigestSetting, MaxPerHour
from alerts.durations import DAY, HOUR, Duration, within
from httpfields import header_problem

NAME_MAX = 200  # the database keeps watchlist and channel names in 200 characters


def check_name(name: str) -> str:
    """Names end up in log lines, mail headers and database columns."""
    # A line break or control would split or forge log lines and break mail headers; a
    # bidi override would make the name read as another.
    if UNSAFE.search(name):
        raise ValueError(f"{name!r} contains a control character or line break")
    if len(name) > NAME_MAX:
        raise ValueError(f"must be at most {NAME_MAX} characters, got {len(name)}")
    return name


def check_http_url(url: str) -> str:
    """An absolute http(s) URL that httpx can request, without the spaces around it. Not
    quoted in messages: Slack's and Discord's webhook URLs carry their token in the path,
    and a feed URL may carry a password."""
    url = url.strip()
    if any(c.isspace() or not c.isprintable() for c in url):
        raise ValueError("the URL contains spaces or control characters (percent-encode them)")
    try:
        parts = urlsplit(url)
        usable = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        usable = usable and parts.port != 0  # .port raises ValueError outside 0-65535
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        usable = False
    if not usable:
        raise ValueError("must be an absolute http(s) URL, such as https://example.org/path")
    return url


def check_header_fields(headers: dict[str, str]) -> dict[str, str]:
    """Headers that httpx and the HTTP/1.1 writer will accept, refused here rather than on
    every request. Spaces and tabs around a value are dropped, as HTTP itself does. Never
    quotes a value: header values are often credentials."""
    seen: set[str] = set()
    fields: dict[str, str] = {}
    for name, value in headers.items():
        value = value.strip(" \t")
        problem = header_problem(name, value)
        if problem is not None:
            raise ValueError(f"header {name[:64]!r}: {problem} (value not shown)")
        if name.lower() in seen:
            raise ValueError(f"header {name!r} is given twice (header names ignore case)")
        seen.add(name.lower())
        fields[name] = value
    return fields


Name = Annotated[str, AfterValidator(check_name)]
"""A pydantic field type for names: no control characters, at most NAME_MAX characters."""

HttpUrl = Annotated[str, AfterValidator(check_http_url)]
"""A pydantic field type for the URLs the service requests: absolute http or https."""

HeaderFields = Annotated[dict[str, str], AfterValidator(check_header_fields)]
"""A pydantic field type for extra request headers: token names, one-line ASCII values."""

Timeout = Annotated[Duration, within(0, HOUR, above=True)]
"""A network timeout: more than 0 (0 would be no time at all), at most an hour."""

RetryWait = Annotated[Duration, within(0, 30 * DAY)]
"""One wait of a retry schedule: 0 (again at the next pass) up to 30 days."""


class ChannelSettings(BaseModel):
    """``digest``: None sends each alert at once (the default); a schedule collects the
    channel's alerts and sends them as one message when due.
    ``max_per_hour``: None is unlimited; beyond N messages in a UTC clock hour, further
    alerts fold into the next digest (or, without one, into one digest at the next hour).
    """

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(min_length=1)
    retry: list[RetryWait] | None = None
    digest: DigestSetting | None = None
    max_per_hour: MaxPerHour | None = None
