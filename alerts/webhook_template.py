"""A webhook's own template: what it sees of a message, and its failures as delivery verdicts.

Input: an ``Alert``, a ``Digest`` or a ``Notice``; output: the request body the config
author's template makes of it, or a ``DeliveryError`` saying whether to retry. The template
runs in alerts.sandbox (bounded size, time and threads). Imported by the webhook channel
only when a ``template`` is configured: it brings Jinja2 and the email-style text
renderers, which a webhook that sends JSON, Slack or Discord bodies never needs.
Does not send anything: alerts/webhook.py does.
"""

from __future__ import annotations

from typing import Any

import jinja2

from alerts.base import Digest, Message, Notice
from alerts.errors import ChannelConfigError, DeliveryError
from alerts.render import (
    STORY_UPDATED_TYPE,
    render_payload,
    render_subject,
    render_text,
    spread_story,
)
from alerts.render_digest import render_digest_payload, render_digest_subject, render_digest_text
from alerts.render_notice import render_notice_payload, render_notice_subject, render_notice_text
from alerts.render_story import render_story_text
from alerts.sandbox import RENDER_TIMEOUT, BoundedTemplate, TemplateBusyError, TemplateLimitError


class WebhookTemplate:
    """One channel's compiled template and its render thread."""

    def __init__(self, channel: str, source: str, *, timeout: float) -> None:
        """``timeout``: the channel's, which bounds the whole send, this render included.
        May raise ChannelConfigError (a template that no longer compiles)."""
        self._channel = channel
        try:
            self._template = BoundedTemplate(source, timeout=min(RENDER_TIMEOUT, timeout))
        except jinja2.TemplateError as exc:
            raise ChannelConfigError(f"{channel}: template: {exc}") from exc

    async def render(self, message: Message) -> str:
        try:
            return await self._template.render(template_context(message))
        except TemplateBusyError as exc:  # the next attempt finds the thread free
            raise DeliveryError(self._channel, f"template: {exc}") from None
        except TemplateLimitError as exc:  # the same data will hit the same bound
            message_ = f"template failed: {exc}"
            raise DeliveryError(self._channel, message_, retryable=False) from None
        except Exception as exc:  # a user's template can fail in any way; none heals
            # Its context is the alert's payload, no credential: the text helps its author.
            message_ = f"template failed: {type(exc).__name__}: {exc}"
            raise DeliveryError(self._channel, message_, retryable=False) from exc

    def close(self) -> None:
        self._template.close()


def template_context(message: Message) -> dict[str, Any]:
    """What a template sees: the JSON payload's keys, the whole ``payload`` (use
    ``{{ payload | tojson }}``), ready-made ``subject`` and ``text``, ``is_digest``, and
    ``alerts``: every alert's payload (a digest's list; a one-item list for an alert), so
    one ``{% for alert in alerts %}`` template serves both kinds of message. A notice (feed
    health) has no alerts: ``is_notice`` tells it apart, its payload's keys are its own.
    A spread update's payload is ``feed.story.updated``: ``is_story_update`` tells it
    apart. ``story`` is an alert's payload's, or None (no story, a digest, a notice), so
    ``{% if story %}`` works anywhere; in a digest's ``alerts`` an entry without one has no
    ``story`` key, as in the JSON (``alert.story is defined``)."""
    if isinstance(message, Digest):
        payload = render_digest_payload(message)
        subject, text = render_digest_subject(message), render_digest_text(message)
        alerts = payload["alerts"]
    elif isinstance(message, Notice):
        payload = render_notice_payload(message)
        subject, text = render_notice_subject(message), render_notice_text(message)
        alerts = []
    else:
        payload = render_payload(message)
        story = spread_story(message)
        subject = render_subject(message)
        text = render_text(message) if story is None else render_story_text(message, story)
        alerts = [payload]
    extra = {"payload": payload, "subject": subject, "text": text, "alerts": alerts}
    extra["story"] = payload.get("story")
    kinds = {
        "is_digest": isinstance(message, Digest),
        "is_notice": isinstance(message, Notice),
        "is_story_update": payload["type"] == STORY_UPDATED_TYPE,
    }
    return {**payload, **extra, **kinds}
