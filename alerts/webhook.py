"""The webhook channel: POST one alert or digest to a URL (ours, Slack's, Discord's or a template).

Input: an ``Alert``, a ``Digest`` or a ``Notice``; output: a ``DeliveryResult`` or a
``DeliveryError`` that says whether to retry, when (Retry-After) and whether the receiver
asked us to stop (410). A digest or a notice follows the same rules as an alert: one
request, its id as ``webhook-id``.
Signs the body per the Standard Webhooks spec when a secret is set. Its settings are
alerts/config_webhook.py's; a configured template is alerts/webhook_template.py's, imported
only then (it brings Jinja2). Does not retry, queue or record anything: the outbox does
that with the error's verdict.

The URL's path and query, the headers and the secret are credentials (Slack and Discord
keep their token in the path): messages show ``display_url`` and an exception's own text
only with those taken out; an exception nobody foresaw is named by its type alone. What the
receiver controls is bounded: an error body is read up to ERROR_BODY_MAX bytes and never
decompressed (a small compressed body can expand without limit); a success's is not read.

Status codes (decided here, documented in the README's configuration reference):
2xx delivered. 408, 425, 429 and 5xx retryable. 3xx retryable but never followed: a
redirect may be a maintenance page, and following it would send the payload (and its
signature) to a host the operator did not configure. Every other 4xx is permanent
(the same request will be refused again); 410 also disables the channel.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import httpx
from standardwebhooks.webhooks import Webhook

from alerts.base import DeliveryResult, Digest, Message, Notice
from alerts.config_webhook import WebhookConfig
from alerts.durations import format_duration
from alerts.errors import DeliveryError, caused_by, unexpected
from alerts.render import render_discord, render_payload, render_slack, spread_story
from alerts.render_digest import (
    render_digest_discord,
    render_digest_payload,
    render_digest_slack,
)
from alerts.render_notice import render_notice_discord, render_notice_payload, render_notice_slack
from alerts.render_story import render_story_discord, render_story_slack
from httpfields import retry_after_seconds

if TYPE_CHECKING:
    from alerts.webhook_template import WebhookTemplate

USER_AGENT = "feed-monitor (+https://github.com/feed-monitor/feed-monitor)"
RETRYABLE_4XX = frozenset({408, 425, 429})
ERROR_BODY_MAX = 200  # bytes of a refusal's body kept for the message ("invalid_payload")
RenderedBody = tuple[str, str]  # (body, content type)
_ALERT_FORMATS = {"json": render_payload, "slack": render_slack, "discord": render_discord}
_DIGEST_FORMATS = {
    "json": render_digest_payload,
    "slack": render_digest_slack,
    "discord": render_digest_discord,
}
# A spread update in JSON is render_payload's (feed.story.updated).
_STORY_FORMATS = {"slack": render_story_slack, "discord": render_story_discord}
_NOTICE_FORMATS = {
    "json": render_notice_payload,
    "slack": render_notice_slack,
    "discord": render_notice_discord,
}


class WebhookChannel:
    """One configured webhook; holds one HTTP client for its connection pool."""

    def __init__(self, config: WebhookConfig, *, client: httpx.AsyncClient | None = None) -> None:
        self.name = config.name
        self._config = config
        self._url_shown = display_url(config.url)
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            follow_redirects=False,
            timeout=config.timeout,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        )
        self._signer = Webhook(config.secret.get_secret_value()) if config.secret else None
        parts = urlsplit(config.url)
        secret = config.secret.get_secret_value() if config.secret else ""
        userinfo = parts.netloc.rpartition("@")[0]
        hidden = [parts.path, parts.query, userinfo, *config.headers.values(), secret]
        self._hidden = sorted((h for h in hidden if len(h) > 1), key=len, reverse=True)
        self._template: WebhookTemplate | None = None
        if config.template is not None:
            # Here, not at the top: only a templated webhook needs Jinja2.
            from alerts.webhook_template import WebhookTemplate

            self._template = WebhookTemplate(config.name, config.template, timeout=config.timeout)

    async def send(self, message: Message) -> DeliveryResult:
        if isinstance(message, Digest) and not message.alerts:
            raise DeliveryError(self.name, "empty digest: nothing to send", retryable=False)
        # ``timeout`` bounds the whole send, the template's render included: the outbox
        # waits that long for an outcome, and not longer.
        deadline = asyncio.get_running_loop().time() + self._config.timeout
        body, content_type = await self._render(message)
        headers = {**self._config.headers, "Content-Type": content_type}
        if self._signer is not None:
            headers.update(_signature_headers(self._signer, message.id, body))
        try:
            request = self._client.build_request(
                "POST", self._config.url, content=body.encode("utf-8"), headers=headers
            )
            async with asyncio.timeout_at(deadline):
                response = await self._client.send(request, stream=True)
                try:
                    excerpt = await _read_excerpt(response)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException) as exc:
            message = f"timed out after {format_duration(self._config.timeout)}"
            raise DeliveryError(self.name, message) from exc
        except (httpx.HTTPError, OSError) as exc:
            raise DeliveryError(self.name, self._network_message(exc)) from exc
        except Exception as exc:  # its text could quote a header or the URL: type only
            raise DeliveryError(self.name, f"{unexpected(exc)} with {self._url_shown}") from None
        return self._outcome(response, excerpt)

    async def aclose(self) -> None:
        if self._template is not None:
            self._template.close()
        if self._owns_client:
            await self._client.aclose()

    async def _render(self, message: Message) -> RenderedBody:
        if self._template is not None:
            body = await self._template.render(message)
            return body, self._config.content_type
        if isinstance(message, Digest):
            payload = _DIGEST_FORMATS[self._config.format](message)
        elif isinstance(message, Notice):
            payload = _NOTICE_FORMATS[self._config.format](message)
        elif (story := spread_story(message)) is not None and self._config.format != "json":
            payload = _STORY_FORMATS[self._config.format](message, story)
        else:  # render_payload gives a spread update its own type
            payload = _ALERT_FORMATS[self._config.format](message)
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")), "application/json"

    def _outcome(self, response: httpx.Response, excerpt: str) -> DeliveryResult:
        status = response.status_code
        if 200 <= status < 300:
            return DeliveryResult(detail=f"HTTP {status}")
        message = f"HTTP {status} from {self._url_shown}"
        if 300 <= status < 400:
            location = response.headers.get("location")
            where = f" to {display_url(urljoin(self._config.url, location))}" if location else ""
            advice = ": update the url" if status in (301, 308) else ""
            message += f" (redirect{where} not followed{advice})"
            raise DeliveryError(self.name, message)
        if status == 410:
            message += ": the receiver asked to stop sending (410 Gone); channel disabled"
            raise DeliveryError(self.name, message, retryable=False, disable_channel=True)
        if excerpt:
            message += f": {excerpt}"
        retryable = status >= 500 or status in RETRYABLE_4XX
        retry_after = None
        if retryable:
            retry_after = retry_after_seconds(
                response.headers.get("retry-after"), datetime.now(UTC)
            )
        raise DeliveryError(self.name, message, retryable=retryable, retry_after=retry_after)

    def _network_message(self, exc: BaseException) -> str:
        where = self._url_shown
        text = self._hide(str(exc))
        if caused_by(exc, ConnectionRefusedError):
            return f"connection refused by {where}"
        if caused_by(exc, ssl.SSLError):
            return f"TLS error with {where}: {text}"
        if isinstance(exc, httpx.RemoteProtocolError):
            return f"{where} closed the connection: {text}"
        return f"network error with {where}: {text or type(exc).__name__}"

    def _hide(self, text: str) -> str:
        """A library's message without the URL's credentials, a header value or the secret
        (h11 quotes a header it refuses; httpx quotes the URL it cannot parse)."""
        for hidden in self._hidden:
            text = text.replace(hidden, "…")
        return text


def _signature_headers(signer: Webhook, message_id: str, body: str) -> dict[str, str]:
    """Standard Webhooks: sign ``id.timestamp.body``; the id is the alert's (or the
    digest's) id, so a receiver can drop a retry it already processed (the spec's
    idempotency key)."""
    now = datetime.now(UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signer.sign(message_id, now, body),
    }


async def _read_excerpt(response: httpx.Response) -> str:
    """The start of an error response's body, on one line; a success's body is not read."""
    if response.is_success:
        return ""
    if response.headers.get("content-encoding", "identity").strip().lower() != "identity":
        return ""  # asked for identity; decoding what came anyway could expand without bound
    chunks = bytearray()
    async for chunk in response.aiter_raw():
        chunks += chunk[: ERROR_BODY_MAX - len(chunks)]
        if len(chunks) >= ERROR_BODY_MAX:
            break
    text = chunks.decode("utf-8", "replace")
    return " ".join(text.split())


def display_url(url: str) -> str:
    """The URL for messages and logs: no credentials, query or deep path. Slack and Discord
    webhook URLs carry their token in the path, and messages end up in logs and the DB."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    segments = [s for s in parts.path.split("/") if s]
    path = f"/{segments[0]}" if segments else ""
    if len(segments) > 1 or parts.query:
        path += "/…"
    return f"{parts.scheme}://{host}{path}"
