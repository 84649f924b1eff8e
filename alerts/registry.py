"""Channel types by name: the one place that lists them (an explicit dict, no plug-in scan).

Input: a validated channel config; output: a ready ``Channel``. Adding a channel type means
a ``config_<type>`` module with its config model, a ``<type>`` module with its class, and
one line in CHANNELS and ChannelConfig. Does not read configuration files; the monitor's
config module validates into ChannelConfig.

Validation needs only the config models, which import nothing heavy. A channel's own
module (its client library, its renderers, Jinja2 for mail) is imported by CHANNELS' entry
for its type, the first time a channel of that type is built: a service holds in memory
only the code of the channel types it is configured to use.

A configured channel is delivered through one or more targets (``delivery_targets``): itself,
or for an apprise channel one per URL, each a channel of its own to the outbox.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from pydantic import Field

from alerts.base import Channel
from alerts.config_apprise import AppriseConfig
from alerts.config_email import EmailConfig
from alerts.config_log import LogConfig
from alerts.config_webhook import WebhookConfig


def _webhook(config: WebhookConfig) -> Channel:
    from alerts.webhook import WebhookChannel

    return WebhookChannel(config)


def _email(config: EmailConfig) -> Channel:
    from alerts.email import EmailChannel

    return EmailChannel(config)


def _log(config: LogConfig) -> Channel:
    from alerts.log import LogChannel

    return LogChannel(config)


def _apprise(config: AppriseConfig) -> Channel:
    from alerts.apprise import AppriseChannel

    return AppriseChannel(config)


CHANNELS: dict[str, Callable[[Any], Channel]] = {
    "webhook": _webhook,
    "email": _email,
    "log": _log,
    "apprise": _apprise,
}

ChannelConfig = Annotated[
    WebhookConfig | EmailConfig | LogConfig | AppriseConfig, Field(discriminator="type")
]


def build_channel(config: ChannelConfig) -> Channel:
    """May raise ChannelConfigError (a CA file that cannot be read, for instance)."""
    return CHANNELS[config.type](config)


def delivery_targets(config: ChannelConfig) -> tuple[ChannelConfig, ...]:
    """The channels the outbox delivers to for one configured channel, each with its own
    deliveries, retries, digest and rate limit: the channel itself, or an apprise
    channel's one per URL (``phones#1``, ``phones#2``)."""
    return config.targets() if isinstance(config, AppriseConfig) else (config,)


def taken_names(configs: Sequence[ChannelConfig]) -> list[str]:
    """Every name a channel takes, its targets' included: none may be given twice."""
    names: list[str] = []
    for config in configs:
        targets = [t.name for t in delivery_targets(config)]
        names += [config.name] + [t for t in targets if t != config.name]
    return names


def send_timeouts(config: ChannelConfig) -> list[tuple[str, float]]:
    """Each timeout one send of the channel runs under, by its field."""
    if isinstance(config, WebhookConfig | AppriseConfig):
        return [("timeout", config.timeout)]
    if isinstance(config, EmailConfig):
        return [("smtp.timeout", config.smtp.timeout)]
    return []
