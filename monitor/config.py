"""Settings: the YAML file and the environment, validated once at start.

This is the only module that reads the environment or the configuration file (through
``monitor.config_file``, which reads the YAML within bounds and substitutes ``${VAR}``).
Everything below it receives a ``Settings`` value. Errors name the file, the field and the
problem (``ConfigError``); they never surface as a traceback, and never quote a value taken
from the environment, a header value, a password or a URL.

Every setting is bounded to what works at run time: a duration field has its range (an
interval of 0 would poll on every tick, a lease of 0 would spin), counts stay below what
the system can open, and the lease outlasts a poll's deadline. ``${VAR}`` anywhere in a
string value is replaced from the environment before validation; ``$${`` writes a literal
``${``. A missing variable is an error naming the field.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from alerts.digest import DigestSetting
from alerts.durations import DAY, HOUR, YEAR, Duration, format_duration, parse_duration, within
from alerts.registry import CHANNELS, ChannelConfig, send_timeouts, taken_names
from alerts.settings import NAME_MAX, HeaderFields, HttpUrl, Name, Timeout
from monitor.config_file import Substitution, field_path, read_config
from monitor.config_ops import (
    HealthConfig,
    HttpConfig,
    LogSettings,
    RetentionConfig,
    StoriesConfig,
)
from monitor.errors import ConfigError, QueryError
from monitor.match.query import compile_query, terms_to_query
from monitor.types import Watchlist

DEFAULT_CONFIG = "monitor.yaml"
DEFAULT_DATABASE = "sqlite:///monitor.db"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 10**6, "gb": 10**9}
_SIZE_UNITS |= {"kib": 1024, "mib": 1024**2, "gib": 1024**3}
_SIZE_HINT = "use e.g. 10MiB, 512KiB, 1000000"
# A body is held in memory while it is read and parsed, once per poll under way.
MAX_BODY = 1024**3
MIN_BODY = 1024  # below this no feed fits, and every poll would fail
MAX_CONNECTIONS = 1000  # each is a file descriptor; the usual limit is 1024 per process
MAX_PARSE_WORKERS = 256  # processes, all started at once
MAX_URL = 2048  # the database keeps a feed's URL in 2048 characters
SEND_SHARE = 4  # the outbox waits lease / SEND_SHARE for one send (monitor/outbox.py)
# Headers that frame the request: set in a feed's headers they would make it hang or lie.
_FEED_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding"})


def _parse_size(value: object) -> int:
    """Byte sizes as users write them: ``10MiB``, ``500KB``, ``1048576``."""
    if isinstance(value, bool):  # YAML's yes/no; bool is an int subclass
        raise ValueError(f"not a size: {value!r} ({_SIZE_HINT})")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a size: {value!r} ({_SIZE_HINT})")
    size = float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
    if not math.isfinite(size):  # a few hundred digits read as a float
        raise ValueError(f"not a size: too large ({_SIZE_HINT})")
    return int(size)


def _body_size(size: int) -> int:
    """Below a kilobyte no feed fits and every poll fails; above a gigabyte one poll can
    take the memory of the whole service."""
    if not MIN_BODY <= size <= MAX_BODY:
        raise ValueError(f"must be between 1KiB and 1GiB, got {size} bytes")
    return size


def _parse_backlog(value: object) -> float | None:
    """``all`` -> None (no limit), ``none`` -> 0, else a duration in seconds."""
    if value is None:
        return None
    word = str(value).strip().lower()
    if word == "all":
        return None
    if word == "none":
        return 0.0
    return parse_duration(value)  # type: ignore[arg-type]


Size = Annotated[int, BeforeValidator(_parse_size), AfterValidator(_body_size)]
# How often to poll, and the ceilings of hints and back-off: from a second to a year.
Interval = Annotated[Duration, within(1, YEAR)]
Connections = Annotated[int, Field(ge=1, le=MAX_CONNECTIONS)]


class _Model(BaseModel):
    # hide_input_in_errors: a ValidationError printed anywhere never shows a secret
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Defaults(_Model):
    """Per-feed settings that a feed may override."""

    interval: Interval = 900.0
    backlog: float | None = 86400.0  # seconds; None = "all"

    @field_validator("backlog", mode="before")
    @classmethod
    def _backlog(cls, value: object) -> float | None:
        return _parse_backlog(value)


class Polling(_Model):
    """How the monitor treats servers: limits, timeouts, back-off."""

    timeout: Timeout = 10.0
    deadline: Timeout = 30.0
    max_body: Size = 10 * 1024 * 1024
    max_redirects: int = Field(default=5, ge=0, le=20)
    per_host: Connections = 2
    max_concurrency: Connections = 50
    allow_private_networks: bool = True
    max_interval: Interval = 6 * 3600.0
    max_backoff: Interval = 86400.0
    jitter: float = Field(default=0.1, ge=0, le=0.5, allow_inf_nan=False)
    # parse in this many processes; 0 = in a thread of the service; null = one per core
    parse_workers: int | None = Field(default=None, ge=0, le=MAX_PARSE_WORKERS)
    parse_budget: Timeout = 20.0  # one document's parse; a worker over it is replaced
    fulltext_wait: Timeout = 15.0  # a poll's wait for its article pages (monitor.fulltext)

    @property
    def max_inflight(self) -> int:
        """Polls under way at once in one pass of ``monitor poll``: fetching outruns
        parsing, and unbounded, hundreds of bodies would wait in memory for a parse worker.
        (The service claims only ``max_concurrency``, leaving the rest to other instances.)"""
        return self.max_concurrency * 2


class Service(_Model):
    """The service's own rhythm."""

    # how often due feeds and due deliveries are claimed
    tick: Annotated[Duration, within(0.1, HOUR)] = 1.0
    # a claim on a feed or delivery expires after this; one send may take a quarter of it
    lease: Annotated[Duration, within(2, DAY)] = 120.0


class FeedConfig(_Model):
    url: Annotated[HttpUrl, Field(max_length=MAX_URL)]
    name: Name | None = None
    interval: Interval | None = None
    backlog: float | Literal["default"] | None = "default"
    tags: frozenset[str] = frozenset()
    headers: HeaderFields = {}
    fulltext: bool | Literal["auto"] = False  # match new items' article pages too

    @field_validator("headers")
    @classmethod
    def _no_framing_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        clash = sorted(name for name in headers if name.lower() in _FEED_RESERVED_HEADERS)
        if clash:
            raise ValueError(f"headers {clash} are set by the fetcher itself")
        return headers

    @field_validator("backlog", mode="before")
    @classmethod
    def _backlog(cls, value: object) -> object:
        return "default" if value == "default" else _parse_backlog(value)


class NotifyRoute(_Model):
    """A watchlist's route to a channel, optionally with its own digest schedule
    (``{channel: analyst, digest: daily@08:00 Asia/Almaty}``)."""

    channel: str
    digest: DigestSetting | None = None
    # collapse: one alert per story (later items attach to it); separate: one per item
    stories: Literal["collapse", "separate"] = "collapse"


class WatchlistConfig(_Model):
    name: Name
    terms: list[str] | None = None
    query: str | None = None
    notify: list[NotifyRoute] = []
    feeds: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    language: Literal["auto", "ru", "kk", "en", "none"] = "auto"

    @field_validator("notify", mode="before")
    @classmethod
    def _routes(cls, value: object) -> object:
        """A bare channel name is a route with the channel's own settings."""
        if isinstance(value, list):
            return [{"channel": v} if isinstance(v, str) else v for v in value]
        return value

    def to_watchlist(self) -> Watchlist:
        query = self.query if self.query is not None else terms_to_query(self.terms or [])
        return Watchlist(
            name=self.name,
            query=query,
            feeds=self.feeds,
            tags=self.tags,
            language=None if self.language == "auto" else self.language,
        )


class Settings(_Model):
    """The whole configuration. ``source`` is the file it came from (for messages)."""

    source: str = "<defaults>"
    database: str = DEFAULT_DATABASE
    defaults: Defaults = Defaults()
    polling: Polling = Polling()
    service: Service = Service()
    feeds: list[FeedConfig] = []
    watchlists: list[WatchlistConfig] = []
    channels: list[ChannelConfig] = []
    http: HttpConfig | None = HttpConfig()
    retention: RetentionConfig = RetentionConfig()
    health: HealthConfig = HealthConfig()
    stories: StoriesConfig = StoriesConfig()
    log: LogSettings = LogSettings()

    def feed_interval(self, feed: FeedConfig) -> float:
        return feed.interval if feed.interval is not None else self.defaults.interval

    def feed_backlog(self, feed: FeedConfig) -> float | None:
        return self.defaults.backlog if feed.backlog == "default" else feed.backlog

    def watchlists_for(self) -> list[Watchlist]:
        return [w.to_watchlist() for w in self.watchlists]


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("MONITOR_CONFIG") or DEFAULT_CONFIG)


def load_settings(path: Path | str, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, substitute, validate and cross-check the configuration file."""
    env = os.environ if environ is None else environ
    source = str(path)
    substitution = Substitution(env)
    raw = substitution.apply(read_config(path))
    if substitution.missing:
        raise ConfigError(source, substitution.missing)
    if env.get("MONITOR_DATABASE_URL"):
        raw["database"] = substitution.variable("MONITOR_DATABASE_URL")
    if "source" in raw:  # the file's own name, set below: not a key of the file
        raise ConfigError(source, ["source: unknown key"])
    raw["source"] = source
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe(err, raw) for err in exc.errors()]
    else:
        problems = check_references(settings)
    if problems:
        raise ConfigError(source, [substitution.redact(p) for p in problems])
    return settings


def _describe(error: Mapping[str, Any], raw: Mapping[str, Any]) -> str:
    """One pydantic error as ``field.path: message``, without the union tag in the path,
    the entry of a list named as in ``feeds[2] (Kazinform)``. Only ``msg`` is used: the
    input, which may be a secret, never is."""
    loc = tuple(error["loc"])
    if len(loc) >= 3 and loc[0] == "channels" and loc[2] in CHANNELS:
        loc = loc[:2] + loc[3:]
    loc = tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "union_tag_invalid":
        message = f"unknown channel type; expected one of: {', '.join(sorted(CHANNELS))}"
    elif error["type"] == "union_tag_not_found":
        message = f"missing 'type' (one of: {', '.join(sorted(CHANNELS))})"
    message = message.removeprefix("Value error, ")
    where = field_path(loc) or "(top level)"
    if len(loc) >= 2 and isinstance(loc[1], int):
        where = where.replace(f"[{loc[1]}]", f"[{loc[1]}]{_entry_name(raw, loc)}", 1)
    return f"{where}: {message}"


def _entry_name(raw: Mapping[str, Any], loc: tuple[Any, ...]) -> str:
    """`` (name)`` of the list entry at ``loc``, when it has a printable one."""
    entries = raw.get(loc[0])
    if not isinstance(entries, list) or not 0 <= loc[1] < len(entries):
        return ""
    entry = entries[loc[1]]
    name = entry.get("name") if isinstance(entry, dict) else None
    if not isinstance(name, str) or not name.isprintable() or not 0 < len(name) <= NAME_MAX:
        return ""
    return f" ({name})"


def _duplicates(names: list[str]) -> set[str]:
    seen: set[str] = set()
    return {n for n in names if n in seen or seen.add(n)}  # type: ignore[func-returns-value]


def check_references(settings: Settings) -> list[str]:
    """Problems across sections: duplicates, dangling names, malformed queries, a lease
    shorter than a poll or a send may take."""
    problems = _check_timing(settings)
    first_of_url: dict[str, int] = {}
    for i, feed in enumerate(settings.feeds):
        # The URL is not quoted: it may carry a password or a token.
        if first_of_url.setdefault(feed.url, i) != i:
            problems.append(f"feeds[{i}]: the same url as feeds[{first_of_url[feed.url]}]")
    for section, names in (
        ("feeds", [f.name for f in settings.feeds if f.name]),
        ("watchlists", [w.name for w in settings.watchlists]),
        ("channels", taken_names(settings.channels)),
    ):
        problems += [f"{section}: duplicate name {n!r}" for n in sorted(_duplicates(names))]
    channel_names = {c.name for c in settings.channels}
    unknown = [n for n in settings.health.notify if n not in channel_names]
    problems += [f"health.notify: unknown channel {n!r}" for n in unknown]
    for i, wl in enumerate(settings.watchlists):
        where = f"watchlists[{i}] ({wl.name})"
        if (wl.terms is None) == (wl.query is None):
            problems.append(f"{where}: give exactly one of 'terms' or 'query'")
            continue
        if wl.terms is not None and not [t for t in wl.terms if t.strip()]:
            problems.append(f"{where}.terms: needs at least one term")
            continue
        problems += [
            f"{where}.notify: unknown channel {r.channel!r}"
            for r in wl.notify
            if r.channel not in channel_names
        ]
        # `feeds` and `tags` are not checked against the file's feeds: feeds kept in the
        # database (imported) have names and tags of their own. `monitor feeds` names any
        # that no active feed has.
        field = "query" if wl.query is not None else "terms"
        problem = _query_problem(wl)
        if problem:
            problems.append(f"{where}.{field}: {problem}")
    return problems


def _check_timing(settings: Settings) -> list[str]:
    """A poll holds its claim on the feed until its outcome is written, and the outbox waits
    a quarter of the lease for one send: a claim that expires during the fetch lets another
    tick (or instance) poll the feed again, and a send still under way when the outbox
    stops waiting is counted as failed and sent again (a duplicate)."""
    lease, polling = settings.service.lease, settings.polling
    poll, parts = polling.deadline + polling.parse_budget, "deadline + polling.parse_budget"
    if any(f.fulltext for f in settings.feeds):  # such a poll waits for articles too
        poll, parts = poll + polling.fulltext_wait, f"{parts} + polling.fulltext_wait"
    problems: list[str] = []
    if lease <= poll:
        problems.append(
            f"service.lease: must be longer than polling.{parts} "
            f"({format_duration(poll)}), since a poll must finish within its claim; "
            f"got {format_duration(lease)}"
        )
    wait = lease / SEND_SHARE
    for i, channel in enumerate(settings.channels):
        for field, timeout in send_timeouts(channel):
            if timeout > wait:
                problems.append(
                    f"channels[{i}] ({channel.name}).{field}: must be at most a quarter of "
                    f"service.lease ({format_duration(wait)}), the time the outbox waits for "
                    f"one send; got {format_duration(timeout)}"
                )
    return problems


def _query_problem(watchlist: WatchlistConfig) -> str | None:
    """Why the watchlist's query does not compile, or None. Any failure is a problem with
    the query, not a crash of ``monitor check``: a query nested thousands deep exhausts
    the parser's recursion before it can say so."""
    try:
        compile_query(watchlist.to_watchlist().query)
    except QueryError as exc:
        return str(exc)
    except RecursionError:
        return "nested too deeply (use fewer parentheses or NOTs)"
    except Exception as exc:  # a parser bug must not hide the other problems
        return f"cannot be compiled ({type(exc).__name__})"
    return None
