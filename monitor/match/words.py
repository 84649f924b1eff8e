"""What a word is, in any script: character classes and the words of normalised text.

Input: normalised text (and, for the classes, nothing: they are computed once, at import,
from :mod:`unicodedata`). Output: the character classes as regex classes and ranges
(:data:`JOINER`, :data:`NOSPACE`, :data:`SEPARATOR`, and the :data:`MARKS` and
:data:`FORMATS` normalisation needs), the words of a text (:func:`tokenize`,
:func:`word_starts`) and the word boundaries around an offset (:func:`word_end`,
:func:`word_before`, :func:`skip_separators`). The rules are the "Words and normalisation"
section of :mod:`monitor.match`'s docstring. It does not normalise text
(:mod:`monitor.match.fold`), decide which words a query word stands for
(:mod:`monitor.match.inflect`) or look for terms, and touches neither network nor database.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from typing import Final

# Scripts written without spaces between words: each letter is a word of its own, so a term
# in these scripts is found inside longer runs of letters (no segmenter is involved).
_NOSPACE_BLOCKS: Final = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi radicals
    (0x3005, 0x3007),  # ideographic iteration mark, closing mark, number zero
    (0x3021, 0x3029),  # Hangzhou numerals
    (0x3038, 0x303C),
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x312F),  # Bopomofo
    (0x31A0, 0x31BF),
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x323AF),  # CJK extensions B-H
)


ASTRAL: Final = "\U00010000-\U0010ffff"


def fast_class(ranges: list[tuple[int, int]], negate: bool = False) -> str:
    """A regex matching one character of ``ranges`` (or, negated, any other character).

    ``re`` tests a class of BMP characters with a bitmap, but walks astral ranges one by one
    for every character tested; so the astral ranges are behind a one-range guard.
    """

    def body(part: list[tuple[int, int]]) -> str:
        return "".join(
            re.escape(chr(lo)) + (f"-{re.escape(chr(hi))}" if hi > lo else "") for lo, hi in part
        )

    bmp = body([(lo, min(hi, 0xFFFF)) for lo, hi in ranges if lo <= 0xFFFF])
    astral = body([(max(lo, 0x10000), hi) for lo, hi in ranges if hi > 0xFFFF])
    if negate:
        rest = f"|(?=[{ASTRAL}])(?![{astral}])[\\s\\S]" if astral else f"|[{ASTRAL}]"
        return f"(?:[^{bmp}{ASTRAL}]{rest})"
    return f"(?:[{bmp}]|(?=[{ASTRAL}])[{astral}])" if astral else f"[{bmp}]"


def _scan_unicode() -> dict[str, list[tuple[int, int]]]:
    """Ranges of word characters, no-space letters, combining marks and format characters.

    A range runs across unassigned code points, which keeps the classes short.
    """
    blocks = bytearray(0x110000)
    for lo, hi in _NOSPACE_BLOCKS:
        blocks[lo : hi + 1] = b"\x01" * (hi - lo + 1)
    found: dict[str, list[tuple[int, int]]] = {"J": [], "N": [], "M": [], "F": []}
    previous = dict.fromkeys(found, False)  # was the last assigned character in the class?
    # Ranges, not a list: a list of the code points' ints would leave some 10 MB of freed
    # objects in the allocator's arenas for the life of the process.
    for cp in itertools.chain(range(0x40000), range(0xE0000, 0xE1000)):
        c = chr(cp)
        category = unicodedata.category(c)
        if category == "Cn":
            continue
        mark = category[0] == "M"
        word = mark or c.isalnum()
        member = {
            "J": word and not blocks[cp],
            "N": word and bool(blocks[cp]),
            "M": mark and not blocks[cp],
            "F": category == "Cf",
        }
        for name, ranges in found.items():
            if member[name] and previous[name]:
                ranges[-1] = (ranges[-1][0], cp)
            elif member[name]:
                ranges.append((cp, cp))
            previous[name] = member[name]
    return found


_CLASSES = _scan_unicode()
# A character that continues a word: a letter, digit or combining mark outside the no-space
# scripts. Underscore is not one (``kazakhstan_protests`` in a link holds two words).
JOINER: Final = fast_class(_CLASSES["J"])
# A letter of a no-space script: a word by itself.
NOSPACE: Final = fast_class(_CLASSES["N"])
# Joins the fields of an item into one text to scan; no term is found across it.
BARRIER: Final = "\x00"
# Anything between words: neither a joiner nor a no-space letter (nor the barrier).
SEPARATOR: Final = fast_class(sorted([(0, 0), *_CLASSES["J"], *_CLASSES["N"]]), negate=True)
# Combining marks and format characters (category Cf), as ranges, for normalisation.
MARKS: Final = tuple(_CLASSES["M"])
FORMATS: Final = tuple(_CLASSES["F"])
# One folded Latin letter (not ÷); one Cyrillic letter (not the signs and combining marks
# U+0482-U+0489 among them: a letter is always a word character, which look-alike repair
# relies on to keep each word it rewrites apart from the next).
LATIN_LETTER: Final = "[a-z\u00e0-\u00f6\u00f8-\u024f]"
CYRILLIC_LETTER: Final = "[\u0400-\u0481\u048a-\u04ff]"

_TOKEN = re.compile(f"{JOINER}+|{NOSPACE}")
_JOINS = re.compile(JOINER).match
_IS_NOSPACE = re.compile(NOSPACE).fullmatch
_REST = re.compile(f"{JOINER}*").match
_SKIP = re.compile(f"(?:{SEPARATOR})*").match
_NOSPACE_AT = re.compile(NOSPACE).match
_SEPARATOR_AT = re.compile(SEPARATOR).match


def joins(text: str, index: int) -> bool:
    """Whether ``text[index]`` continues a word (so a word boundary is not there)."""
    return _JOINS(text, index) is not None


def is_nospace(char: str) -> bool:
    """Whether ``char`` is a letter of a script written without spaces (a word by itself)."""
    return _IS_NOSPACE(char) is not None


def tokenize(text: str) -> list[str]:
    """The words of normalised text, in order."""
    return _TOKEN.findall(text)


def word_starts(text: str) -> list[int]:
    """Where each word of normalised text starts, in order."""
    return [m.start() for m in _TOKEN.finditer(text)]


def joiner_bitmap() -> bytes:
    """:data:`JOINER` as one bit per code point (for monitor.match._speedups.collect)."""
    bits = bytearray(0x110000 // 8)
    for lo, hi in _CLASSES["J"]:
        for cp in range(lo, hi + 1):
            bits[cp >> 3] |= 1 << (cp & 7)
    return bytes(bits)


# Characters that surely end a word, tested before the (slower) regex.
WORD_STOPS: Final = frozenset(" \n\t\r.,;:!?()[]{}<>\"'/\\-–—«»“”‘’…|*+=#@&%$\x00")


def word_end(text: str, pos: int) -> int:
    """The end of the word that goes on at ``pos`` (``pos`` itself when none does)."""
    if pos >= len(text) or text[pos] in WORD_STOPS:
        return pos
    return _REST(text, pos).end()


def skip_separators(text: str, pos: int) -> int:
    """Where the next word (or barrier) after ``pos`` starts: past what separates words."""
    return _SKIP(text, pos).end()


def word_before(text: str, end: int) -> tuple[int, int] | None:
    """The span of the last word that ends at or before ``end`` (not across a barrier)."""
    while end > 0 and _SEPARATOR_AT(text, end - 1):
        end -= 1
    if end == 0 or text[end - 1] == BARRIER:
        return None
    if _NOSPACE_AT(text, end - 1):
        return end - 1, end
    start = end - 1
    while start > 0 and _JOINS(text, start - 1):
        start -= 1
    return start, end
