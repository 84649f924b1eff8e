"""The characters feed text may keep, for the parse stage.

Input: text from a feed, decoded (and, for HTML, possibly not yet stripped). Output: the
same text without what no reader wants and what would break storage, hashing or a
terminal. Lone surrogates (JSON can escape them; nothing can encode them) become U+FFFD.
Control characters are dropped: C0 but tab and line feed, DEL and C1, the whitespace ones
(form feed, carriage return, the information separators, next line) becoming a space, so
that the words they separated stay apart. In single-line text (titles, names, categories,
guids, links, messages) the bidirectional overrides and isolates are dropped too: one can
make a line read backwards, and none is needed to show one line. It does not collapse
whitespace or strip markup (:mod:`monitor.parse.html`) and does not touch the network.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote

_SPACES: Final = "\x0b\x0c\r\x1c\x1d\x1e\x1f\x85"  # what str.split() takes for whitespace
_CONTROLS: Final = "".join(
    c for c in map(chr, [*range(0x20), *range(0x7F, 0xA0)]) if c not in "\t\n" and c not in _SPACES
)
_BIDI: Final = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_SURROGATES: Final = "\ud800-\udfff"

_TEXT_TABLE: Final = {
    **{ord(c): " " for c in _SPACES},
    **dict.fromkeys(map(ord, _CONTROLS)),
    **dict.fromkeys(range(0xD800, 0xE000), "\ufffd"),
}
_LINE_TABLE: Final = {**_TEXT_TABLE, **dict.fromkeys(map(ord, _BIDI))}
# A search is far cheaper than a translation, and most text needs none.
_UNCLEAN_TEXT: Final = re.compile(f"[{re.escape(_SPACES + _CONTROLS)}{_SURROGATES}]")
_UNCLEAN_LINE: Final = re.compile(f"[{re.escape(_SPACES + _CONTROLS + _BIDI)}{_SURROGATES}]")


def clean_text(text: str) -> str:
    """Text of any number of lines, with only the characters it may keep."""
    return text.translate(_TEXT_TABLE) if _UNCLEAN_TEXT.search(text) else text


def clean_line(text: str) -> str:
    """Single-line text, with only the characters it may keep (no bidirectional control)."""
    return text.translate(_LINE_TABLE) if _UNCLEAN_LINE.search(text) else text


def one_line(text: str) -> str:
    """Single-line text, cleaned, its whitespace runs made one space."""
    return " ".join(clean_line(text).split())


def clean_link(link: str) -> str:
    """A URL whose control, bidirectional and surrogate characters are percent-encoded
    (as UTF-8, a surrogate as U+FFFD): a link that still leads where it led, and can be
    shown, stored and hashed."""
    if not _UNCLEAN_LINE.search(link):
        return link
    return _UNCLEAN_LINE.sub(lambda found: quote(_encodable(found[0]), safe=""), link)


def _encodable(char: str) -> str:
    return "\ufffd" if "\ud800" <= char <= "\udfff" else char
