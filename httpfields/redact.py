"""URLs with their credentials taken out, for every place a URL is shown or handed on.

A feed URL may carry credentials (``user:password@``, ``?token=``): it is logged on every
poll, stored in error texts, shown by commands and sent to alert receivers. Input: a URL as
text (it need not parse). Output: the same URL without userinfo, with ``***`` for the values
of query and fragment parameters whose names say they are secrets. What cannot be
recognised (a token inside the path) is left as it is.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

# Query parameters named with one of these words (or a word ending in one of the endings)
# carry credentials: API keys, signed-URL signatures, session and access tokens.
_SECRET_WORDS = frozenset(
    {"auth", "hmac", "key", "otp", "pass", "passphrase", "pwd", "sid", "sig", "session"}
)
_SECRET_ENDINGS = (
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "signature",
    "credential",
    "credentials",
    "sessionid",
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_WORD_BREAK = re.compile(r"[^a-z0-9]+")


def redact_url(url: str) -> str:
    """``url`` without its userinfo (``user:password@``), and with ``***`` for the values of
    query (and fragment) parameters whose names say they are secrets.

    Works on text, so that a URL that does not parse is redacted as well; what cannot be
    recognised (a token in the path) is left as it is.
    """
    rest, hash_mark, fragment = url.partition("#")
    rest, question_mark, query = rest.partition("?")
    head, slashes, tail = rest.partition("//")
    if slashes and (not head or _SCHEME.fullmatch(head)):
        authority, slash, path = tail.partition("/")
        rest = head + slashes + authority.rpartition("@")[2] + slash + path
    return (
        rest + question_mark + _redact_parameters(query) + hash_mark + _redact_parameters(fragment)
    )


def _redact_parameters(text: str) -> str:
    if not text:
        return text
    parts = []
    for part in text.split("&"):
        name, equals, value = part.partition("=")
        parts.append(name + "=***" if equals and value and _is_secret(name) else part)
    return "&".join(parts)


def _is_secret(name: str) -> bool:
    words = _WORD_BREAK.split(unquote_plus(name).lower())
    return any(word in _SECRET_WORDS or word.endswith(_SECRET_ENDINGS) for word in words)
