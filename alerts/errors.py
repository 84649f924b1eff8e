"""Delivery errors. Each says whether the outbox should try again, and when.

A ``DeliveryError``'s message is stored with the delivery and printed by ``monitor alerts``
and the service's log, and parts of it come from receivers (an SMTP reply, an HTTP error
body, a Location header). So the message is made safe here, once for every channel: control
characters escaped (alerts.controls) and its length bounded.
"""

from __future__ import annotations

from alerts.controls import escape_controls

MESSAGE_MAX = 1000  # characters of a delivery error kept: a receiver's essay is not needed


class AlertError(Exception):
    """Root of the alerts package's errors."""


class DeliveryError(AlertError):
    """One attempt to deliver an alert to a channel failed.

    ``retryable`` False makes the delivery dead at once (a 404 will not heal by itself).
    ``retry_after`` (seconds) is the receiver's own wish and overrides the schedule when later.
    ``disable_channel`` is set when the receiver said to stop sending (HTTP 410).
    """

    def __init__(
        self,
        channel: str,
        message: str,
        *,
        retryable: bool = True,
        retry_after: float | None = None,
        disable_channel: bool = False,
    ) -> None:
        self.channel = channel
        self.message = bounded_message(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.disable_channel = disable_channel
        super().__init__(f"{channel}: {self.message}")


class ChannelConfigError(AlertError):
    """A channel's settings are unusable (raised while building the channel)."""


def bounded_message(text: str) -> str:
    """``text`` on one safe line of at most MESSAGE_MAX characters."""
    text = escape_controls(text)
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 1] + "…"


def unexpected(exc: BaseException) -> str:
    """An exception nobody foresaw, by its type only: its text or repr may hold what it
    was working on, and for a channel that can be a password or a token."""
    kind = type(exc)
    module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
    return f"unexpected {module}{kind.__qualname__}"


def caused_by(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first ``kind`` in the cause chain (libraries wrap the OSError that says what
    really happened: httpx wraps anyio wraps it, aiosmtplib wraps it), or None."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return None
