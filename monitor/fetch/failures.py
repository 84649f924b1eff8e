"""What went wrong below HTTP, in one line: httpx's exceptions as messages for the feed.

Input: an ``httpx.HTTPError`` raised while connecting, sending or reading, the host and
the per-operation timeout. Output: a one-line message (no reprs, no tracebacks) and
whether trying again later can help: DNS, refused or reset connections, timeouts and TLS
failures are retryable; a request httpx or h11 refuses to send (an invalid URL, a header
that is not a legal field) is not, since it fails the same way every time.
Does not: raise, log, or interpret HTTP statuses (the fetcher does).
"""

from __future__ import annotations

import socket
import ssl

import httpx


def describe_error(exc: httpx.HTTPError, host: str, timeout: float) -> tuple[str, bool]:
    """A one-line message and retryability for an httpx failure."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connect timed out after {timeout:g}s", True
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g}s waiting for the server", True
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        return f"invalid request: {exc}", False
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"protocol error: {exc}", True
    cause = _root_cause(exc)
    if isinstance(cause, socket.gaierror | UnicodeError):  # UnicodeError: a label IDNA refuses
        return f"cannot resolve host {host}", True
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused", True
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {cause.verify_message}", True
    if isinstance(cause, ssl.SSLError):  # reason is OpenSSL's code, e.g. WRONG_VERSION_NUMBER
        return f"TLS error: {(cause.reason or 'handshake failed').lower().replace('_', ' ')}", True
    if isinstance(cause, OSError) and cause.strerror:
        return f"connection failed: {cause.strerror.lower()}", True
    if isinstance(exc, httpx.ReadError):
        return "connection lost while reading the response", True
    detail = str(exc)
    return (f"connection failed: {detail}" if detail else "connection failed"), True


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception: httpx wraps httpcore, which wraps the OS error."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    return exc
