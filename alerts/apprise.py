"""The apprise channel: one alert, digest or notice -> one message through one Apprise URL.

Input: an ``Alert``, a ``Digest`` or a ``Notice``; output: a ``DeliveryResult`` or a
``DeliveryError`` saying whether to retry. The configuration lists several URLs
(``tgram://…``, ``ntfy://…``, ``mailto://…``); alerts/config_apprise.py checks them and
makes one target channel of each (``<name>#1`` …), so one URL failing never sends again
to the others. Does not retry, queue or record anything: the outbox does.

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
topic): messages show ``where`` (config_apprise's ``display``) and never quote the plugin's
log lines, which config_apprise keeps out of the service's log.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import re
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from alerts.base import DeliveryResult, Digest, Message, frozen
from alerts.config_apprise import AppriseConfig, capture_records, display, instantiate
from alerts.durations import format_duration
from alerts.errors import ChannelConfigError, DeliveryError, unexpected
from alerts.render_apprise import Limits, Markup, fit_message

RETRYABLE_4XX = frozenset({408, 425, 429})
_STATUS = re.compile(r"\berror=(\d{3})\b")
_RETRY_AFTER = re.compile(r"\b(?:retry after|again in) (\d{1,6})(?!\d)", re.IGNORECASE)
WAIT_ALLOWANCE = 1.0  # seconds of a service's forced wait slept in the send; longer: retry_after
_REFUSED = re.compile(r"Connection refused|Errno 111|ConnectionRefusedError", re.IGNORECASE)
_TIMED_OUT = re.compile(r"timed out|Timeout", re.IGNORECASE)


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
        capture_records(records)  # this thread's context is a copy: no reset needed
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
