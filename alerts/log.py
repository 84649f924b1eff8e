"""The log channel: one INFO line per alert on the ``alerts.log`` logger.

Input: an ``Alert``; output: a ``DeliveryResult``, always (logging does not fail in a way
a retry could fix). Useful as a first channel while writing watchlists, and in tests.
Does not format for humans beyond one key=value line; the email channel does that.
"""

from __future__ import annotations

import json
import logging
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from alerts.base import Alert, DeliveryResult
from alerts.durations import Duration
from alerts.render import item_link

logger = logging.getLogger("alerts.log")


class LogConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["log"]
    name: str = Field(min_length=1)
    retry: list[Duration] | None = None


def _value(text: str) -> str:
    """key=value stays parseable: a value with spaces, quotes or ``=`` is JSON-quoted."""
    text = " ".join(text.split())
    if text and not any(c in text for c in ' "=\\'):
        return text
    return json.dumps(text, ensure_ascii=False)


def format_line(alert: Alert) -> str:
    terms = ",".join(dict.fromkeys(match.term for match in alert.matches))
    fields = {
        "watchlist": alert.watchlist,
        "title": alert.item.title,
        "link": item_link(alert) or "",
        "feed": alert.feed.name,
        "terms": terms,
        "alert": alert.id,
    }
    return "alert " + " ".join(f"{key}={_value(value)}" for key, value in fields.items())


class LogChannel:
    def __init__(self, config: LogConfig) -> None:
        self.name = config.name

    async def send(self, alert: Alert) -> DeliveryResult:
        logger.info("%s", format_line(alert))
        return DeliveryResult(detail="logged")

    async def aclose(self) -> None:
        """Nothing to release."""
