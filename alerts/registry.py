"""Channel types by name: the one place that lists them (an explicit dict, no plug-in scan).

Input: a validated channel config; output: a ready ``Channel``. Adding a channel type means
a module with a config model and a class, and one line in CHANNELS and ChannelConfig.
Does not read configuration files; the monitor's config module validates into ChannelConfig.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field

from alerts.base import Channel
from alerts.email import EmailChannel, EmailConfig
from alerts.log import LogChannel, LogConfig
from alerts.webhook import WebhookChannel, WebhookConfig

CHANNELS: dict[str, Callable[[Any], Channel]] = {
    "webhook": WebhookChannel,
    "email": EmailChannel,
    "log": LogChannel,
}

ChannelConfig = Annotated[WebhookConfig | EmailConfig | LogConfig, Field(discriminator="type")]


def build_channel(config: ChannelConfig) -> Channel:
    """May raise ChannelConfigError (a CA file that cannot be read, for instance)."""
    return CHANNELS[config.type](config)
