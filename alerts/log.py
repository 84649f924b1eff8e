"""The log channel: one INFO line per alert on the ``alerts.log`` logger.

Input: an ``Alert`` (a spread update is an ``update`` line: watchlist, count, story
title), a ``Digest`` (one line for the digest with its count, then one
line per alert carrying the digest's id) or a ``Notice`` (one line, WARNING unless the feed
recovered: a feed's health is the operator's business); output: a ``DeliveryResult``
(logging does not fail in a way a retry could fix; only an empty digest, a caller's bug,
is refused).
Useful as a first channel while writing watchlists, and in tests.
Does not format for humans beyond one key=value line; the email channel does that.

Every value comes from a feed or the configuration and ends up on a terminal: control
characters, bidi overrides and lone surrogates are escaped (alerts.controls), so a title
cannot move the cursor, retitle the window or reorder the line it is printed on.
"""

from __future__ import annotations

import json
import logging

from alerts.base import Alert, DeliveryResult, Digest, Message, Notice, NoticeKind
from alerts.config_log import LogConfig
from alerts.controls import UNSAFE, escape_controls
from alerts.errors import DeliveryError
from alerts.render import item_link, spread_story
from alerts.render_digest import group_alerts

logger = logging.getLogger("alerts.log")


def _value(text: str) -> str:
    """key=value stays parseable: a value with spaces, quotes, ``=`` or an unsafe character
    is JSON-quoted. ``json.dumps`` escapes C0 but leaves C1, bidi controls and surrogates
    raw when ``ensure_ascii`` is off, so those are escaped after it (still valid JSON)."""
    text = " ".join(text.split())
    if text and not any(c in text for c in ' "=\\') and not UNSAFE.search(text):
        return text
    return escape_controls(json.dumps(text, ensure_ascii=False))


def _line(kind: str, fields: dict[str, str]) -> str:
    return f"{kind} " + " ".join(f"{key}={_value(value)}" for key, value in fields.items())


def format_line(alert: Alert, digest: Digest | None = None) -> str:
    story = spread_story(alert)
    if story is not None:
        fields = {
            "watchlist": alert.watchlist,
            "count": str(story.source_count),
            "title": story.title,
            "story": story.id,
        }
        kind = "update"
    else:
        terms = ",".join(dict.fromkeys(match.term for match in alert.matches))
        fields = {
            "watchlist": alert.watchlist,
            "title": alert.item.title,
            "link": item_link(alert) or "",
            "feed": alert.feed.name,
            "terms": terms,
        }
        if alert.story is not None:
            fields |= {"story": alert.story.id, "sources": str(alert.story.source_count)}
        kind = "alert"
    fields["alert"] = alert.id
    if digest is not None:
        fields["digest"] = digest.id
    return _line(kind, fields)


def format_digest_line(digest: Digest) -> str:
    """The digest's own line: how many alerts, from which watchlists (newest first)."""
    watchlists = ",".join(group.watchlist for group in group_alerts(digest))
    fields = {"channel": digest.channel, "count": str(len(digest.alerts))}
    return _line("digest", fields | {"watchlists": watchlists, "digest": digest.id})


def format_notice_line(notice: Notice) -> str:
    fields = {
        "kind": notice.kind.value,
        "feed": notice.feed.name,
        "url": notice.feed.url,
        "since": notice.since.isoformat(),
    }
    if notice.previous_url:
        fields["previous_url"] = notice.previous_url
    if notice.recovered_from:
        fields["recovered_from"] = notice.recovered_from.value
    return _line("notice", fields | {"detail": notice.detail, "notice": notice.id})


class LogChannel:
    def __init__(self, config: LogConfig) -> None:
        self.name = config.name

    async def send(self, message: Message) -> DeliveryResult:
        if isinstance(message, Alert):
            logger.info("%s", format_line(message))
            return DeliveryResult(detail="logged")
        if isinstance(message, Notice):
            level = logging.INFO if message.kind == NoticeKind.RECOVERED else logging.WARNING
            logger.log(level, "%s", format_notice_line(message))
            return DeliveryResult(detail="logged")
        if not message.alerts:
            raise DeliveryError(self.name, "empty digest: nothing to send", retryable=False)
        logger.info("%s", format_digest_line(message))
        for alert in message.alerts:
            logger.info("%s", format_line(alert, message))
        return DeliveryResult(detail=f"logged {len(message.alerts)} alerts")

    async def aclose(self) -> None:
        """Nothing to release."""
