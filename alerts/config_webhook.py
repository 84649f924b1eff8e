"""The webhook channel's settings: where to POST, how to sign, in which format or template.

Input: one channel's mapping from the configuration file; output: a ``WebhookConfig``, or
pydantic's errors naming the field (never quoting a URL, a header or the secret). The
channel itself is alerts/webhook.py, imported only when a webhook channel is built.

Validation needs the libraries that sign and render only for the fields that use them:
standardwebhooks when a ``secret`` is set, Jinja2 (through alerts.sandbox) when a
``template`` is, so a configuration without them never loads either. Does not send
anything.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from alerts.settings import ChannelSettings, HeaderFields, HttpUrl, Timeout, check_header_fields

# Headers the channel sets itself; letting the config override them would break signing or
# framing.
_RESERVED_HEADERS = frozenset(
    {"webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "content-length"}
    | {"host", "transfer-encoding"}
)


class WebhookConfig(ChannelSettings):
    """``template`` comes from the config file, so it runs in alerts.sandbox: no attribute
    walks to ``__class__``/``__globals__``, no mutation of its data, bounded size and time."""

    # A failed field's input (a URL, a header) may be a credential: pydantic's own text for
    # the error would quote it, so it is left out there too.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    type: Literal["webhook"]
    url: HttpUrl
    headers: HeaderFields = Field(default_factory=dict)
    secret: SecretStr | None = None
    format: Literal["json", "slack", "discord"] = "json"
    template: str | None = None
    content_type: str = "application/json"
    timeout: Timeout = 15.0

    @field_validator("content_type")
    @classmethod
    def _one_line_content_type(cls, content_type: str) -> str:
        check_header_fields({"Content-Type": content_type})
        return content_type

    @field_validator("headers")
    @classmethod
    def _no_reserved_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        clash = sorted(name for name in headers if name.lower() in _RESERVED_HEADERS)
        if clash:
            raise ValueError(f"headers {clash} are set by the channel itself (see content_type)")
        return headers

    @field_validator("secret")
    @classmethod
    def _usable_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None:
            from standardwebhooks.webhooks import Webhook  # only for a signed webhook

            try:
                Webhook(secret.get_secret_value())
            except Exception as exc:
                raise ValueError("secret must be 'whsec_' followed by base64") from exc
        return secret

    @field_validator("template")
    @classmethod
    def _template_compiles(cls, template: str | None) -> str | None:
        if template is not None:
            from jinja2 import TemplateSyntaxError  # only for a templated webhook

            from alerts.sandbox import compile_template

            try:
                compile_template(template)
            except TemplateSyntaxError as exc:
                raise ValueError(f"template line {exc.lineno}: {exc.message}") from exc
        return template

    @model_validator(mode="after")
    def _template_or_format(self) -> WebhookConfig:
        if self.template is not None and self.format != "json":
            raise ValueError("set either 'template' or 'format', not both")
        return self
