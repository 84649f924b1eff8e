"""The log channel's settings: only those every channel has (alerts/settings.py).

Input: one channel's mapping from the configuration file; output: a ``LogConfig``. Kept
apart from the channel (alerts/log.py), as every channel type's settings are in a
``config_<type>`` module: validating a configuration never loads a channel's code.
"""

from __future__ import annotations

from typing import Literal

from alerts.settings import ChannelSettings


class LogConfig(ChannelSettings):
    type: Literal["log"]
