"""Settings: the YAML file and the environment, validated once at start.

This is the only module that reads the environment or the configuration file. Everything
below it receives a ``Settings`` value. Errors name the file, the field and the problem
(``ConfigError``); they never surface as a traceback.

``${VAR}`` anywhere in a string value is replaced from the environment before validation;
``$${`` writes a literal ``${``. A missing variable is an error naming the field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alerts.digest import DigestSetting
from alerts.durations import Duration, parse_duration
from alerts.registry import CHANNELS, ChannelConfig
from monitor.errors import ConfigError, QueryError
from monitor.match.query import compile_query, terms_to_query
from monitor.types import Watchlist

DEFAULT_CONFIG = "monitor.yaml"
DEFAULT_DATABASE = "sqlite:///monitor.db"
_ENV_REF = re.compile(r"\$(\$?)\{([^}]*)\}")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 10**6, "gb": 10**9}
_SIZE_UNITS |= {"kib": 1024, "mib": 1024**2, "gib": 1024**3}


def _parse_size(value: object) -> int:
    """Byte sizes as users write them: ``10MiB``, ``500KB``, ``1048576``."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a size: {value!r} (use e.g. 10MiB, 512KiB, 1000000)")
    return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])


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


Size = Annotated[int, Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Model):
    """Per-feed settings that a feed may override."""

    interval: Duration = 900.0
    backlog: float | None = 86400.0  # seconds; None = "all"

    @field_validator("backlog", mode="before")
    @classmethod
    def _backlog(cls, value: object) -> float | None:
        return _parse_backlog(value)

    @field_validator("interval")
    @classmethod
    def _positive_interval(cls, value: float) -> float:
        if value < 1:
            raise ValueError("interval must be at least 1s")
        return value


class Polling(_Model):
    """How the monitor treats servers: limits, timeouts, back-off."""

    timeout: Duration = 10.0
    deadline: Duration = 30.0
    max_body: Size = 10 * 1024 * 1024
    max_redirects: int = Field(default=5, ge=0, le=20)
    per_host: int = Field(default=2, ge=1)
    max_concurrency: int = Field(default=50, ge=1)
    allow_private_networks: bool = True
    max_interval: Duration = 6 * 3600.0
    max_backoff: Duration = 86400.0
    jitter: float = Field(default=0.1, ge=0, le=0.5)
    # parse in this many processes; 0 = in a thread of the service; null = one per core
    parse_workers: int | None = Field(default=None, ge=0)

    @field_validator("max_body", mode="before")
    @classmethod
    def _size(cls, value: object) -> int:
        return _parse_size(value)

    @property
    def max_inflight(self) -> int:
        """Polls under way at once, fetching or parsing: fetching outruns parsing, and
        unbounded, hundreds of bodies would wait in memory for a parse worker."""
        return self.max_concurrency * 2


class Service(_Model):
    """The service's own rhythm."""

    tick: Duration = 1.0  # how often due feeds and due deliveries are claimed
    lease: Duration = 120.0  # a claim on a feed or delivery expires after this


class FeedConfig(_Model):
    url: str
    name: str | None = None
    interval: Duration | None = None
    backlog: float | Literal["default"] | None = "default"
    tags: frozenset[str] = frozenset()
    headers: dict[str, str] = {}

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].lower() if ":" in value else ""
        if scheme not in {"http", "https"}:
            raise ValueError(f"feed URL must be http or https, got {value!r}")
        return value.strip()

    @field_validator("backlog", mode="before")
    @classmethod
    def _backlog(cls, value: object) -> object:
        return "default" if value == "default" else _parse_backlog(value)


class NotifyRoute(_Model):
    """A watchlist's route to a channel, optionally with its own digest schedule
    (``{channel: analyst, digest: daily@08:00 Asia/Almaty}``)."""

    channel: str
    digest: DigestSetting | None = None


class WatchlistConfig(_Model):
    name: str
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
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, [f"cannot read file: {exc}"]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"{where}invalid YAML: {problem}"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(source, ["the top level must be a mapping of keys (database, feeds ...)"])
    missing: list[str] = []
    raw = _substitute(raw, env, (), missing)
    if missing:
        raise ConfigError(source, missing)
    if env.get("MONITOR_DATABASE_URL"):
        raw["database"] = env["MONITOR_DATABASE_URL"]
    raw["source"] = source
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(err) for err in exc.errors()]) from None
    problems = check_references(settings)
    if problems:
        raise ConfigError(source, problems)
    return settings


def _substitute(node: Any, env: Mapping[str, str], loc: tuple, missing: list[str]) -> Any:
    """Replace ``${VAR}`` in every string of the YAML tree, noting each missing variable."""
    if isinstance(node, dict):
        return {k: _substitute(v, env, (*loc, k), missing) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, env, (*loc, i), missing) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def replace(match: re.Match[str]) -> str:
        if match.group(1):  # $${ is an escaped literal ${
            return "${" + match.group(2) + "}"
        name = match.group(2)
        if name not in env:
            missing.append(f"{_path(loc)}: environment variable {name} is not set")
            return ""
        return env[name]

    return _ENV_REF.sub(replace, node)


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _describe(error: Mapping[str, Any]) -> str:
    """One pydantic error as ``field.path: message``, without the union tag in the path."""
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
    return f"{_path(loc) or '(top level)'}: {message}"


def _duplicates(names: list[str]) -> set[str]:
    seen: set[str] = set()
    return {n for n in names if n in seen or seen.add(n)}  # type: ignore[func-returns-value]


def check_references(settings: Settings) -> list[str]:
    """Problems across sections: duplicates, dangling names, malformed queries."""
    problems: list[str] = []
    for section, names in (
        ("feeds", [f.url for f in settings.feeds]),
        ("feeds", [f.name for f in settings.feeds if f.name]),
        ("watchlists", [w.name for w in settings.watchlists]),
        ("channels", [c.name for c in settings.channels]),
    ):
        problems += [f"{section}: duplicate name {n!r}" for n in sorted(_duplicates(names))]
    channel_names = {c.name for c in settings.channels}
    feed_names = {f.name for f in settings.feeds if f.name}
    feed_tags = {t for f in settings.feeds for t in f.tags}
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
        problems += [
            f"{where}.feeds: unknown feed name {n!r}" for n in sorted(wl.feeds - feed_names)
        ]
        problems += [f"{where}.tags: no feed has tag {t!r}" for t in sorted(wl.tags - feed_tags)]
        field = "query" if wl.query is not None else "terms"
        try:
            compile_query(wl.to_watchlist().query)
        except QueryError as exc:
            problems.append(f"{where}.{field}: {exc}")
    return problems
