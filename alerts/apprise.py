"""The apprise channel: one alert, digest or notice -> one message through one Apprise URL.

Input: an ``Alert``, a ``Digest`` or a ``Notice``; output: a ``DeliveryResult`` or a
``DeliveryError`` saying whether to retry. The configuration lists several URLs
(``tgram://…``, ``ntfy://…``, ``mailto://…``); :meth:`AppriseConfig.targets` makes one
channel of each, named ``<name>#1`` … ``<name>#N`` by position, so the outbox keeps a
delivery, a retry schedule, a digest and a ``max_per_hour`` per URL: one URL failing
never sends again to the others. Does not retry, queue or record anything: the outbox does.

Apprise's plugins are synchronous and answer only "sent" or "not sent". The send runs in
the channel's own thread under ``timeout`` (the plugin's socket timeouts are lowered to
it); a send still under way there when the next one comes is refused, retryably, rather
than run twice. Why a send failed is read from what the plugin logged while it ran (the
records are captured for this thread, never printed): ``error=NNN`` is the HTTP status,
judged as the webhook channel judges it (408, 425, 429, 3xx and 5xx retryable, other 4xx
permanent), a refused connection or a timeout is retryable, and a failure the plugin does
not explain is retryable (the retry schedule bounds it).

Throttling is honoured where Apprise reports it, and never slept through in the thread: a
plugin that keeps a service's rate-limit state (Discord, Revolt, Reddit, Twitter, Bluesky,
Fluxer read ``X-RateLimit-*`` or ``Retry-After``) asks its ``throttle`` to sleep until the
window reopens before it sends; a wait longer than ``WAIT_ALLOWANCE`` ends the send there,
nothing sent, as a retryable error whose ``retry_after`` is that wait, so the outbox holds the
delivery until then instead of a thread sleeping past the timeout. ``retry after N`` or
``again in Ns`` in the plugin's words (Telegram's 429 description, LFG Alarm's) is read the
same way. A plain 429 with no such word (Apprise does not pass other services'
``Retry-After`` on) is a retryable failure on the channel's schedule.

An Apprise URL is a credential from end to end (a bot token as the host, a password, a
topic): messages show ``where``, the scheme and host of Apprise's own privacy form, and
never quote the plugin's log lines. Apprise's logger stops propagating to the service's
log for the same reason (its lines quote URL parts).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import re
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from alerts.base import DeliveryResult, Digest, Message, frozen
from alerts.durations import format_duration
from alerts.errors import ChannelConfigError, DeliveryError, unexpected
from alerts.render_apprise import Limits, Markup, fit_message
from alerts.settings import NAME_MAX, ChannelSettings, Timeout

URLS_MAX = 50  # one channel's URLs: each is a target with its own deliveries
RECORDS_MAX = 50  # log records of one send kept for its verdict
RETRYABLE_4XX = frozenset({408, 425, 429})
_STATUS = re.compile(r"\berror=(\d{3})\b")
_RETRY_AFTER = re.compile(r"\b(?:retry after|again in) (\d{1,6})(?!\d)", re.IGNORECASE)
WAIT_ALLOWANCE = 1.0  # seconds of a service's forced wait slept in the send; longer: retry_after
_REFUSED = re.compile(r"Connection refused|Errno 111|ConnectionRefusedError", re.IGNORECASE)
_TIMED_OUT = re.compile(r"timed out|Timeout", re.IGNORECASE)
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


class _Throttled(Exception):
    """A plugin would sleep ``wait`` seconds (the service's rate limit) before it sends."""

    def __init__(self, wait: float) -> None:
        super().__init__(wait)
        self.wait = wait


def _throttle_without_long_waits(plugin: Any) -> None:
    """Make the plugin's ``throttle`` raise :class:`_Throttled` instead of sleeping through
    a forced wait over ``WAIT_ALLOWANCE``. Plugins call it before any request (Apprise's
    convention: ``self.throttle(wait=...)``), so nothing has been sent to the service when
    it raises. Its pacing between requests (``request_rate_per_sec``, no ``wait``) is kept."""
    throttle = plugin.throttle

    def guarded(*args: Any, **kwargs: Any) -> Any:
        wait = kwargs.get("wait", args[1] if len(args) > 1 else None)
        if isinstance(wait, int | float) and wait > WAIT_ALLOWANCE:
            raise _Throttled(float(wait))
        return throttle(*args, **kwargs)

    plugin.throttle = guarded  # this instance only: the channel owns its plugin


@frozen
class _Outcome:
    sent: bool
    records: tuple[str, ...]
    error: BaseException | None = None


class AppriseChannel:
    """One Apprise URL (a target of an apprise channel); one send at a time, in its own
    thread."""

    def __init__(self, config: AppriseConfig) -> None:
        if len(config.urls) != 1:
            raise ChannelConfigError(f"{config.name}: one URL per channel (use targets())")
        self.name = config.name
        self._timeout = config.timeout
        plugin = instantiate(config.urls[0])
        if plugin is None:
            raise ChannelConfigError(f"{config.name}: Apprise cannot use the URL (not shown)")
        # Apprise's own waits are bounded by ours, so the thread ends soon after a timeout.
        plugin.socket_connect_timeout = min(plugin.socket_connect_timeout, config.timeout)
        plugin.socket_read_timeout = min(plugin.socket_read_timeout, config.timeout)
        _throttle_without_long_waits(plugin)
        self._plugin = plugin
        self.where = display(plugin)
        self.limits = service_limits(plugin)
        self._executor: ThreadPoolExecutor | None = None
        self._running: Future[_Outcome] | None = None

    async def send(self, message: Message) -> DeliveryResult:
        if isinstance(message, Digest) and not message.alerts:
            raise DeliveryError(self.name, "empty digest: nothing to send", retryable=False)
        if self._running is not None and not self._running.done():
            message_ = f"the previous delivery to {self.where} is still under way"
            raise DeliveryError(self.name, message_)
        fitted = fit_message(message, self.limits)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="apprise")
        context = contextvars.copy_context()
        self._running = self._executor.submit(context.run, self._notify, fitted.title, fitted.body)
        try:
            async with asyncio.timeout(self._timeout):
                outcome = await asyncio.wrap_future(self._running)
        except TimeoutError:
            raise DeliveryError(
                self.name, f"timed out after {format_duration(self._timeout)} with {self.where}"
            ) from None
        if outcome.sent:
            return DeliveryResult(detail=f"accepted by {self.where}")
        raise self._failure(outcome)

    async def aclose(self) -> None:
        """The thread is left to finish a send under way (it cannot be interrupted)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    def _notify(self, title: str, body: str) -> _Outcome:
        from apprise.common import NotifyFormat, OverflowMode

        records: list[str] = []
        _captured.set(records)  # this thread's context is a copy: no reset needed
        try:
            sent = self._plugin.notify(
                body=body,
                title=title,
                body_format=NotifyFormat(self.limits.markup),
                overflow=OverflowMode.TRUNCATE,  # never split: fit_message kept it whole
            )
        except Exception as exc:
            return _Outcome(sent=False, records=tuple(records), error=exc)
        return _Outcome(sent=bool(sent), records=tuple(records))

    def _failure(self, outcome: _Outcome) -> DeliveryError:
        """The verdict from what the plugin logged; its words are never quoted."""
        from apprise.exception import AppriseException

        if isinstance(outcome.error, _Throttled):
            wait = outcome.error.wait
            text = f"rate limited by {self.where} for {format_duration(math.ceil(wait))}: not sent"
            return DeliveryError(self.name, text, retry_after=wait)
        if outcome.error is not None:
            if isinstance(outcome.error, AppriseException):
                text = f"Apprise refused the message for {self.where} ({unexpected(outcome.error)})"
                return DeliveryError(self.name, text, retryable=False)
            return DeliveryError(self.name, f"{unexpected(outcome.error)} with {self.where}")
        text = "\n".join(outcome.records)
        statuses = [int(s) for s in _STATUS.findall(text)]
        if statuses:
            status = statuses[-1]
            retryable = status >= 500 or status in RETRYABLE_4XX or 300 <= status < 400
            retry_after = None
            if retryable and (wait := _RETRY_AFTER.search(text)):
                retry_after = float(wait.group(1))
            return DeliveryError(
                self.name,
                f"HTTP {status} from {self.where}",
                retryable=retryable,
                retry_after=retry_after,
            )
        if _REFUSED.search(text):
            return DeliveryError(self.name, f"connection refused by {self.where}")
        if _TIMED_OUT.search(text):
            waited = format_duration(self._timeout)
            return DeliveryError(self.name, f"timed out after {waited} with {self.where}")
        return DeliveryError(self.name, f"{self.where} did not take the message (no reason given)")


def target_address(config: object) -> str | None:
    """Where an apprise target sends, for listings (``tgram://1...z/…``); None for any
    other channel."""
    if not isinstance(config, AppriseConfig) or len(config.urls) != 1:
        return None
    plugin = instantiate(config.urls[0])
    return display(plugin) if plugin is not None else "(an unusable URL)"


def service_limits(plugin: Any) -> Limits:
    """The service's maxima and the markup it gets: plain text where it takes it, else
    HTML (Telegram), else Markdown; Apprise then converts nothing, so nothing grows."""
    from apprise.common import NotifyFormat

    formats = plugin.notify_format
    supported = set(formats) if isinstance(formats, tuple) else {formats}
    preferred = next(
        (
            f
            for f in (NotifyFormat.TEXT, NotifyFormat.HTML, NotifyFormat.MARKDOWN)
            if f in supported
        ),
        NotifyFormat.TEXT,
    )
    markup: Markup = plugin.resolve_format(preferred).value  # a ?format= in the URL wins
    return Limits(
        title_max=max(0, int(plugin.title_maxlen)),
        body_max=max(1, int(plugin.body_maxlen)),
        shared=bool(plugin.overflow_amalgamate_title),
        markup=markup,
    )


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
