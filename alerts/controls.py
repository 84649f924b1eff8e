"""Control characters in text bound for a terminal or a log line, made visible.

Input: any text a feed or a receiver controls (a title, a link, an SMTP reply, an error
body); output: the same text with every character that could steer a terminal or reorder
what a reader sees replaced by a ``\\uXXXX`` escape. Those are the C0 controls, DEL, the C1
controls (a lone 0x9b is CSI to many terminals), the line and paragraph separators, the
bidirectional marks, embeddings, overrides and isolates (Unicode TR9, "Trojan Source"), and
lone surrogates (which a UTF-8 log handler cannot even encode).

``\\uXXXX`` is also a JSON string escape, so the same text stays valid inside a
JSON-quoted value. Does not quote, collapse whitespace or shorten: callers do that.
"""

from __future__ import annotations

import re

UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def escape_controls(text: str) -> str:
    """Every unsafe character as ``\\uXXXX``; the rest (any script, emoji) unchanged."""
    return UNSAFE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
