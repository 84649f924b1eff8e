"""The apprise channel's settings: its Apprise URLs, checked, split into targets, and shown.

Input: one channel's mapping from the configuration file; output: an ``AppriseConfig``
whose every URL Apprise can use, or pydantic's errors (never quoting a URL).
:meth:`AppriseConfig.targets` makes one channel of each URL, named ``<name>#1`` …
``<name>#N`` by position, so the outbox keeps a delivery, a retry schedule, a digest and a
``max_per_hour`` per URL. The channel itself is alerts/apprise.py, imported only when an
apprise channel is built.

An Apprise URL is a credential from end to end (a bot token as the host, a password, a
topic): ``display`` shows only the scheme and host of Apprise's own privacy form. Apprise
is imported the first time a URL is checked (a configuration without apprise channels
never loads it), and its logger is first routed to a capture that never prints, since its
lines quote URL parts; a send reads its own records from there (``capture_records``).
Does not send anything.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from alerts.settings import NAME_MAX, ChannelSettings, Timeout

URLS_MAX = 50  # one channel's URLs: each is a target with its own deliveries
RECORDS_MAX = 50  # log records of one send kept for its verdict
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,31})://")
_captured: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "apprise_records", default=None
)


class _Capture(logging.Handler):
    """Appends each Apprise record to the list of the send running in this context."""

    def emit(self, record: logging.LogRecord) -> None:
        records = _captured.get()
        if records is None or len(records) >= RECORDS_MAX:
            return
        # A plugin's bad format string raises here: nothing to learn from that record.
        with contextlib.suppress(Exception):
            records.append(record.getMessage())


_HANDLER = _Capture(logging.DEBUG)


def quiet_apprise() -> None:
    """Apprise's records go to the capture only: they quote URL parts (a user, a token's
    first and last letters) at WARNING and more at DEBUG. Idempotent."""
    logger = logging.getLogger("apprise")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    if _HANDLER not in logger.handlers:
        logger.addHandler(_HANDLER)


def capture_records(records: list[str]) -> None:
    """Apprise's records in this context go to ``records`` (up to RECORDS_MAX) from now
    on: a send calls it in its thread's copy of the context, which ends with the send."""
    _captured.set(records)


def instantiate(url: str) -> Any:
    """Apprise's plugin object for ``url``, or None if Apprise cannot use it."""
    import apprise  # here, not at the top: a service without apprise channels never loads it

    quiet_apprise()
    try:
        return apprise.Apprise.instantiate(url, suppress_exceptions=True)
    except Exception:  # suppress_exceptions covers the plugins; this covers the parser
        return None


def _check_url(url: str) -> str:
    """Apprise can build a service from the URL. The URL is never quoted: it holds the
    service's credentials; its scheme is shown when it is one."""
    url = url.strip()
    scheme = _SCHEME.match(url)
    plugin = instantiate(url) if scheme else None
    if plugin is None:
        named = f" {scheme.group(1)!r}" if scheme else ""
        raise ValueError(
            f"Apprise cannot use this{named} URL: an unknown scheme or a missing or "
            "malformed part (the URL is not shown: it holds credentials)"
        )
    if not plugin.enabled:
        raise ValueError(f"Apprise's {scheme.group(1)!r} service is not available here")
    return url


AppriseUrl = Annotated[str, AfterValidator(_check_url)]


class AppriseConfig(ChannelSettings):
    """``urls``: Apprise URLs, each a target of its own (``<name>#1`` … by position).
    ``timeout`` bounds one send to one URL."""

    # A failed field's input is an Apprise URL: a credential, never quoted.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    type: Literal["apprise"]
    urls: list[AppriseUrl] = Field(min_length=1, max_length=URLS_MAX)
    timeout: Timeout = 15.0

    @model_validator(mode="after")
    def _target_names_fit(self) -> AppriseConfig:
        if len(target_name(self.name, len(self.urls))) > NAME_MAX:
            raise ValueError(
                f"name: with '#{len(self.urls)}' added for its targets it must stay within "
                f"{NAME_MAX} characters"
            )
        return self

    def targets(self) -> tuple[AppriseConfig, ...]:
        """One channel per URL, named by position: stable while the list is unchanged.
        Appending keeps the others' names; removing or reordering moves a name to another
        URL (its waiting deliveries go to the URL now at that position)."""
        return tuple(
            self.model_copy(update={"name": target_name(self.name, index), "urls": [url]})
            for index, url in enumerate(self.urls, start=1)
        )


def target_name(channel: str, index: int) -> str:
    return f"{channel}#{index}"


def target_address(config: object) -> str | None:
    """Where an apprise target sends, for listings (``tgram://1...z/…``); None for any
    other channel."""
    if not isinstance(config, AppriseConfig) or len(config.urls) != 1:
        return None
    plugin = instantiate(config.urls[0])
    return display(plugin) if plugin is not None else "(an unusable URL)"


def display(plugin: Any) -> str:
    """``scheme://host:port/…`` from Apprise's privacy form of the URL: no user, password,
    path or query (a topic, a chat id, a webhook token); a host that is a token is
    Apprise's masked form (``1...z``)."""
    try:
        parts = urlsplit(plugin.url(privacy=True))
        host = parts.hostname or ""
        port = parts.port
    except Exception:  # a plugin's own url() failing must not cost the message
        return f"{type(plugin).__name__} (address not shown)"
    where = f"{parts.scheme}://{host}{f':{port}' if port else ''}"
    return where + ("/…" if parts.path.strip("/") else "")
