"""The email channel's settings: the recipients, the sender and the SMTP server to hand to.

Input: one channel's mapping from the configuration file; output: an ``EmailConfig``, or
pydantic's errors naming the field (never quoting the password). The channel itself is
alerts/email.py, imported only when an email channel is built: it brings the SMTP client
and the stdlib's mail composition, which validation does not need.
Does not connect to the server: ``monitor channels test`` does, through the channel.
"""

from __future__ import annotations

from email.utils import parseaddr
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from alerts.settings import ChannelSettings, Timeout


def _check_address(value: str) -> str:
    _, address = parseaddr(value)
    if "@" not in address or "\n" in value or "\r" in value:
        raise ValueError(f"not an email address: {value!r}")
    return value


class SmtpConfig(BaseModel):
    """``tls`` is implicit TLS (port 465); ``starttls`` upgrades a plain connection (587).
    ``timeout`` bounds the whole transaction, connect to the DATA reply: it must end before
    the outbox stops waiting (a quarter of the service's lease), or the outbox counts as
    failed a mail the server may still accept, and sends it again."""

    # Pydantic's text for a failed field quotes its input: not for a password.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    starttls: bool = False
    tls: bool = False
    username: str | None = None
    password: SecretStr | None = None
    timeout: Timeout = 15.0
    verify: bool = True
    ca_file: str | None = None

    @field_validator("host")
    @classmethod
    def _host_name(cls, host: str) -> str:
        if any(c.isspace() or not c.isprintable() for c in host):
            raise ValueError("the host name contains spaces or control characters")
        return host

    @field_validator("ca_file")
    @classmethod
    def _path_name(cls, ca_file: str | None) -> str | None:
        if ca_file is not None and not ca_file.isprintable():  # ssl raises on a NUL
            raise ValueError("the path contains control characters")
        return ca_file

    @field_validator("username", "password")
    @classmethod
    def _sendable_credential(cls, value: str | SecretStr | None) -> str | SecretStr | None:
        """Printable ASCII only: servers differ on how they decode anything else in AUTH
        (and PLAIN separates the fields with NUL), so it would fail only at the first login,
        unread by ``check``. The value is never quoted."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is not None and not (text.isascii() and text.isprintable()):
            raise ValueError("only printable ASCII can be sent to an SMTP server (not shown)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SmtpConfig:
        if self.starttls and self.tls:
            raise ValueError("set either starttls (port 587) or tls (port 465), not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.port is None:
            self.port = 465 if self.tls else 587
        return self


class EmailConfig(ChannelSettings):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, hide_input_in_errors=True)

    type: Literal["email"]
    to: list[str] = Field(min_length=1)
    from_: str = Field(alias="from")
    smtp: SmtpConfig

    @field_validator("to")
    @classmethod
    def _recipients(cls, to: list[str]) -> list[str]:
        return [_check_address(address) for address in to]

    @field_validator("from_")
    @classmethod
    def _sender(cls, sender: str) -> str:
        return _check_address(sender)
