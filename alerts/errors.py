"""Delivery errors. Each says whether the outbox should try again, and when."""

from __future__ import annotations


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
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.disable_channel = disable_channel
        super().__init__(f"{channel}: {message}")


class ChannelConfigError(AlertError):
    """A channel's settings are unusable (raised while building the channel)."""
