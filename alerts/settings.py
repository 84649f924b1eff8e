"""The settings every channel type shares: its name, retry schedule, digest and rate limit.

Input: one channel's mapping from the configuration file; output: the validated fields
below, inherited by each channel's own config model (WebhookConfig, EmailConfig, LogConfig),
which adds its ``type`` discriminator and its own fields. Unknown keys are refused.
Does not read files or the environment (the monitor's config module does) and does not
decide anything about delivery: the outbox reads ``digest`` and ``max_per_hour``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from alerts.digest import DigestSetting, MaxPerHour
from alerts.durations import Duration


class ChannelSettings(BaseModel):
    """``digest``: None sends each alert at once (the default); a schedule collects the
    channel's alerts and sends them as one message when due.
    ``max_per_hour``: None is unlimited; beyond N messages in a UTC clock hour, further
    alerts fold into the next digest (or, without one, into one digest at the next hour).
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    retry: list[Duration] | None = None
    digest: DigestSetting | None = None
    max_per_hour: MaxPerHour | None = None
