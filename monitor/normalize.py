"""Text normalisation for matching: one canonical form for feed text and for query terms.

Input: plain text (a feed item's field, or a term of a query). Output: the normalised text
(:func:`normalize`), its words (:func:`tokenize`), the inflection rule of a query word
(:func:`word_form`) and highlighted snippets of the original text (:func:`make_snippet`).
The semantics are specified in the docstring of :mod:`monitor.match`; this module implements
them. It does not parse queries, does not match, and touches neither network nor database.

Why the steps are in this order: NFKC first (a decomposed ``й`` is ``и`` + U+0306 otherwise),
then format characters (category Cf: soft hyphen, zero-width joiner) are dropped, then
``casefold`` (which can lengthen the text: ``ß`` -> ``ss``), then NFKC again when case folding
left something decomposed, then ``ё`` -> ``е``, then mixed-script look-alikes are repaired.
Only the last two steps keep every offset; matches are therefore found on the normalised text
and mapped back to the original only to cut snippets (:class:`NormText`).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Final

# The highlight markers of a snippet. Private-use characters, removed from feed text during
# normalisation and from snippet context, so a feed cannot forge a highlight.
HIGHLIGHT_START: Final = "\ue000"
HIGHLIGHT_END: Final = "\ue001"

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


_ASTRAL = "\U00010000-\U0010ffff"


def _fast_class(ranges: list[tuple[int, int]], negate: bool = False) -> str:
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
        rest = f"|(?=[{_ASTRAL}])(?![{astral}])[\\s\\S]" if astral else f"|[{_ASTRAL}]"
        return f"(?:[^{bmp}{_ASTRAL}]{rest})"
    return f"(?:[{bmp}]|(?=[{_ASTRAL}])[{astral}])" if astral else f"[{bmp}]"


def _scan_unicode() -> dict[str, list[tuple[int, int]]]:
    """Ranges of word characters, no-space letters, combining marks and format characters.

    A range runs across unassigned code points, which keeps the classes short.
    """
    blocks = bytearray(0x110000)
    for lo, hi in _NOSPACE_BLOCKS:
        blocks[lo : hi + 1] = b"\x01" * (hi - lo + 1)
    found: dict[str, list[tuple[int, int]]] = {"J": [], "N": [], "M": [], "F": []}
    previous = dict.fromkeys(found, False)  # was the last assigned character in the class?
    for cp in [*range(0x40000), *range(0xE0000, 0xE1000)]:
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
JOINER: Final = _fast_class(_CLASSES["J"])
# A letter of a no-space script: a word by itself.
NOSPACE: Final = _fast_class(_CLASSES["N"])
# Joins the fields of an item into one text to scan; no term is found across it.
BARRIER: Final = "\x00"
# Anything between words: neither a joiner nor a no-space letter (nor the barrier).
SEPARATOR: Final = _fast_class(sorted([(0, 0), *_CLASSES["J"], *_CLASSES["N"]]), negate=True)
_MARK: Final = _fast_class(_CLASSES["M"])
_MARKERS_CLASS = f"{HIGHLIGHT_START}{HIGHLIGHT_END}"
_DROPPED: Final = _fast_class(sorted([*_CLASSES["F"], (ord(HIGHLIGHT_START), ord(HIGHLIGHT_END))]))

_TOKEN = re.compile(f"{JOINER}+|{NOSPACE}")
_JOINS = re.compile(JOINER).match
_IS_NOSPACE = re.compile(NOSPACE).fullmatch
_MARK_FIRST = re.compile(_MARK).match
_REST = re.compile(f"{JOINER}*").match
_SKIP = re.compile(f"(?:{SEPARATOR})*").match
_NOSPACE_AT = re.compile(NOSPACE).match
_SEPARATOR_AT = re.compile(SEPARATOR).match
_DROP = re.compile(_DROPPED)
_MARKERS = re.compile(f"[{_MARKERS_CLASS}]")


def joins(text: str, index: int) -> bool:
    """Whether ``text[index]`` continues a word (so a word boundary is not there)."""
    return _JOINS(text, index) is not None


def is_nospace(char: str) -> bool:
    """Whether ``char`` is a letter of a script written without spaces (a word by itself)."""
    return _IS_NOSPACE(char) is not None


def tokenize(text: str) -> list[str]:
    """The words of normalised text, in order."""
    return _TOKEN.findall(text)


def _fold(text: str) -> tuple[str, bool]:
    """NFKC, drop format characters, casefold, ё -> е. The flag: every offset was kept."""
    if text.isascii():
        return text.lower(), True
    if "\xa0" in text:  # NFKC's most common change by far, one for one: do it cheaply
        text = text.replace("\xa0", " ")
    same = unicodedata.is_normalized("NFKC", text)
    if not same:
        text = unicodedata.normalize("NFKC", text)
    if not _printable(text) and _DROP.search(text):
        text, same = _DROP.sub("", text), False
    folded = text.casefold()
    if len(folded) != len(text):
        same = False
    if not unicodedata.is_normalized("NFKC", folded):
        folded, same = unicodedata.normalize("NFKC", folded), False
    return folded.replace("ё", "е"), same


def _printable(text: str) -> bool:
    """True when ``text`` surely has no format character (str methods run far faster than a
    regex scan; format characters are not printable, and neither are line breaks)."""
    if text.isprintable():
        return True
    return text.replace("\n", " ").replace("\t", " ").replace(BARRIER, " ").isprintable()


def cased(text: str) -> str:
    """The normal form without case folding or look-alike repair, for case-sensitive terms."""
    text = _DROP.sub("", unicodedata.normalize("NFKC", text))
    return text.replace("ё", "е").replace("Ё", "Е")


# Latin and Cyrillic letters that look alike once case-folded (the pairs of upper-case
# look-alikes such as В/B are listed by their folded forms).
_CYR_TO_LAT: Final = dict(zip("авекмнорстухіјѕԁԛԝһ", "abekmhopctyxijsdqwh", strict=True))
_LAT_TO_CYR: Final = dict(zip("abekmhopctyxijs", "авекмнорстухіјѕ", strict=True))
_LATIN = "a-z\u00e0-\u00f6\u00f8-\u024f"  # folded: no capitals; not ÷
_CYRILLIC = "\u0400-\u04ff"
_MIXED = re.compile(f"[{_LATIN}][{_CYRILLIC}]|[{_CYRILLIC}][{_LATIN}]")
_IS_LATIN = re.compile(f"[{_LATIN}]").match
_IS_CYRILLIC = re.compile(f"[{_CYRILLIC}]").match


def _one_script(word: str) -> str:
    """Rewrite a word mixing Latin and Cyrillic look-alikes in one script, if it can be.

    The script with more letters in the word is tried first (Latin on a tie); a letter with
    no look-alike in the target script makes that script impossible.
    """
    latin = sum(1 for c in word if _IS_LATIN(c))
    cyrillic = sum(1 for c in word if _IS_CYRILLIC(c))
    tries = [(_CYR_TO_LAT, _IS_CYRILLIC), (_LAT_TO_CYR, _IS_LATIN)]
    if cyrillic > latin:
        tries.reverse()
    for table, is_other in tries:
        if all(c in table for c in word if is_other(c)):
            return "".join(table.get(c, c) if is_other(c) else c for c in word)
    return word


# UTF-8 bytes -> one letter per character: L for a Latin letter, C for a Cyrillic one, a space
# for anything else; continuation bytes are deleted. Two bytes.translate calls and a find run
# ten times faster than a regex over the text, and mixed words are rare.
_SCRIPT_BYTES: Final = bytes(
    ord("L")
    if (chr(b).isascii() and chr(b).isalpha()) or 0xC3 <= b <= 0xC9
    else ord("C")
    if 0xD0 <= b <= 0xD3
    else 32
    for b in range(256)
)
_CONTINUATION: Final = bytes(range(0x80, 0xC0))


def _has_mixed(text: str) -> bool:
    scripts = text.encode().translate(_SCRIPT_BYTES, _CONTINUATION)
    if b"C" not in scripts or b"L" not in scripts:
        return False  # one byte is found far faster than two
    return b"LC" in scripts or b"CL" in scripts


def _unmix(text: str) -> str:
    """Repair every word that mixes Latin and Cyrillic letters (offsets are kept)."""
    if not _has_mixed(text):
        return text
    found = _MIXED.search(text)
    pieces: list[str] = []
    done = 0
    while found is not None:
        start = found.start()
        while start > 0 and joins(text, start - 1):
            start -= 1
        end = found.end()
        while end < len(text) and joins(text, end):
            end += 1
        pieces += [text[done:start], _one_script(text[start:end])]
        done = end
        found = _MIXED.search(text, end)
    pieces.append(text[done:])
    return "".join(pieces)


def normalize(text: str) -> str:
    """The normal form in which feed text and query terms are compared."""
    folded, _ = _fold(text)
    return folded if folded.isascii() else _unmix(folded)


@cache
def _unstable() -> re.Pattern[str]:
    """Runs of characters that do not normalise to exactly one character (ligatures, "…",
    format characters, ``ß``) or that may compose with the one before (combining marks).
    Built on first use: it costs a tenth of a second."""
    nfkc = unicodedata.normalize
    ranges = [(ord(HIGHLIGHT_START), ord(HIGHLIGHT_END)), *_CLASSES["F"], *_CLASSES["M"]]
    for cp in range(0x80, 0x40000):
        if len(nfkc("NFKC", nfkc("NFKC", chr(cp)).casefold())) != 1:
            ranges.append((cp, cp))
    return re.compile(_fast_class(sorted(ranges)) + "+")


class NormText:
    """One field's text, normalised once, with offsets back into the original on demand.

    The offset map is built only when a snippet or a case-sensitive check needs it, and only
    when normalisation moved offsets: most matched fields never pay for it. It is a list of
    segments: runs copied one character for one, and the runs in between (normalised as a
    whole, so a match inside one maps to all of it).
    """

    __slots__ = ("_map", "_tokens", "original", "text")

    def __init__(self, original: str) -> None:
        self.original = original
        folded, same = _fold(original)
        self.text = folded if folded.isascii() else _unmix(folded)
        # None: not built yet; (): identity; else (text starts, original starts, ends, exact)
        self._map: tuple[list[int], ...] | None = () if same else None
        self._tokens: list[int] | None = None

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that became ``text[start:end]``."""
        if self._map is None:
            self._map = self._build_map()
        if not self._map:
            return start, end
        starts, originals, ends, exact = self._map
        i = bisect_right(starts, start) - 1
        j = bisect_right(starts, max(start, end - 1)) - 1
        begin = originals[i] + (start - starts[i]) if exact[i] else originals[i]
        stop = originals[j] + (end - starts[j]) if exact[j] else ends[j]
        return begin, max(begin, min(stop, len(self.original)))

    def _build_map(self) -> tuple[list[int], ...]:
        starts, originals, ends, exact = [0], [0], [0], [1]
        done = size = 0  # original offset, normalised length so far

        def add(begin: int, stop: int, length: int, one_for_one: int) -> None:
            nonlocal size
            starts.append(size)
            originals.append(begin)
            ends.append(stop)
            exact.append(one_for_one)
            size += length

        for run in _unstable().finditer(self.original):
            begin, stop = run.span()
            if begin > done and _MARK_FIRST(self.original, begin):
                begin -= 1  # the base character a mark may compose with
            if begin > done:
                add(done, begin, begin - done, 1)
            add(begin, stop, len(_fold(self.original[begin:stop])[0]), 0)
            done = stop
        add(done, len(self.original), len(self.original) - done, 1)
        if size != len(self.text):
            # Normalising the whole text composed across a run (rare: Hangul jamo). One
            # inexact segment: a snippet then shows the whole field, cut to its width.
            return [0], [0], [len(self.original)], [0]
        return starts, originals, ends, exact

    def token_index(self, offset: int) -> int:
        """The index of the word containing (or preceding) normalised offset ``offset``."""
        if self._tokens is None:
            self._tokens = [m.start() for m in _TOKEN.finditer(self.text)]
        return bisect_right(self._tokens, offset) - 1


def normalize_fields(texts: Sequence[str]) -> tuple[NormText, list[int], list[tuple[int, int]]]:
    """Several texts normalised as one, joined by :data:`BARRIER` (one scan per item, not
    per field). Returns the text, where each one starts in the normalised text, and each
    one's span in the original (joined) text."""
    texts = [t.replace(BARRIER, " ") if BARRIER in t else t for t in texts]
    norm = NormText(BARRIER.join(texts))
    starts, found = [0], norm.text.find(BARRIER)
    while found >= 0:  # normalisation never makes or removes the barrier
        starts.append(found + 1)
        found = norm.text.find(BARRIER, found + 1)
    spans, offset = [], 0
    for text in texts:
        spans.append((offset, offset + len(text)))
        offset += len(text) + 1
    return norm, starts, spans


def make_snippet(
    original: str, start: int, end: int, width: int = 80, bounds: tuple[int, int] | None = None
) -> str:
    """About ``width`` characters of ``original`` around ``[start, end)``, the match marked.

    ``bounds`` limits the window to one field of a joined text. A word cut by the window is
    dropped when another word is left on that side (a text without spaces keeps its cut
    run); an ellipsis shows a cut; whitespace runs become one space; highlight markers
    already in the text are removed.
    """
    first, last = bounds or (0, len(original))
    room = max(0, width - (end - start))
    before = max(room // 2, room - (last - end))  # room the other side cannot use
    after = max(room - room // 2, room - (start - first))
    low, high = max(first, start - before), min(last, end + after)
    left, right = original[low:start].split(), original[end:high].split()
    if low > first and len(left) > 1 and not original[low - 1].isspace():
        del left[0]
    if high < last and len(right) > 1 and not original[high].isspace():
        del right[-1]
    head = " ".join(left) + (" " if left and original[start - 1].isspace() else "")
    tail = (" " if right and original[end].isspace() else "") + " ".join(right)
    return (
        ("…" if low > first else "")
        + _unmark(head)
        + HIGHLIGHT_START
        + _unmark(" ".join(original[start:end].split()))
        + HIGHLIGHT_END
        + _unmark(tail)
        + ("…" if high < last else "")
    )


def _unmark(text: str) -> str:
    if HIGHLIGHT_START in text or HIGHLIGHT_END in text:
        return _MARKERS.sub("", text)
    return text


# --- Inflection -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class WordForm:
    """The words one query word stands for: ``stem`` + one of ``endings``, or ``stem``*."""

    stem: str
    endings: frozenset[str] = frozenset({""})
    prefix: bool = False
    letter: bool = field(init=False, compare=False)  # a no-space letter: a whole word

    def __post_init__(self) -> None:
        object.__setattr__(self, "letter", is_nospace(self.stem))

    def matches(self, word: str) -> bool:
        """Whether a normalised text word is one of the forms (the reference semantics)."""
        if not word.startswith(self.stem):
            return False
        return self.prefix or word[len(self.stem) :] in self.endings


def match_words(
    text: str, start: int, forms: Sequence[WordForm], anchor: int
) -> tuple[int, int] | None:
    """Where consecutive words of ``text`` are ``forms``, given that a word starting at
    ``start`` begins with the stem of ``forms[anchor]``; None if they are not there."""
    end = start
    for form in forms[anchor:]:
        if end != start:  # every word after the anchor: skip what separates it
            end = _SKIP(text, end).end()
            if not text.startswith(form.stem, end):
                return None
        end += len(form.stem)
        if form.letter:
            continue  # a no-space letter is a whole word
        rest = word_end(text, end)
        if not form.prefix and text[end:rest] not in form.endings:
            return None
        end = rest
    begin = start
    for form in reversed(forms[:anchor]):
        word = _word_before(text, begin)
        if word is None or not form.matches(text[word[0] : word[1]]):
            return None
        begin = word[0]
    return begin, end


# Characters that surely end a word, tested before the (slower) regex.
_STOPS: Final = frozenset(" \n\t\r.,;:!?()[]{}<>\"'/\\-–—«»“”‘’…|*+=#@&%$\x00")


def word_end(text: str, pos: int) -> int:
    """The end of the word that goes on at ``pos`` (``pos`` itself when none does)."""
    if pos >= len(text) or text[pos] in _STOPS:
        return pos
    return _REST(text, pos).end()


def _word_before(text: str, end: int) -> tuple[int, int] | None:
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


# Russian noun, adjective and surname endings, at most three letters (with ё folded to е).
RU_ENDINGS: Final = frozenset(
    {
        *("", "а", "я", "о", "е", "у", "ю", "ы", "и", "й", "ь"),
        *("ом", "ем", "ой", "ей", "ою", "ею", "ам", "ям", "ах", "ях", "ов", "ев"),
        *("ью", "ья", "ье", "ьи", "ым", "им", "ых", "их", "ая", "яя", "ое", "ее"),
        *("ую", "юю", "ые", "ие", "ий", "ый", "ого", "его", "ому", "ему", "ами", "ями"),
    }
)
# Endings removed from a Russian query word to find its stem, longest first.
RU_STEM_ENDINGS: Final = (
    *("ий", "ый", "ой", "ая", "яя", "ое", "ее", "ые", "ие"),
    *("а", "я", "о", "е", "ы", "и", "й", "ь", "у", "ю"),
)
RU_MIN_STEM: Final = 4
EN_MIN_WORD: Final = 3
EN_ENDINGS: Final = frozenset({"", "s", "es"})
LANGUAGES: Final = frozenset({"ru", "en", "none"})


def _script(word: str) -> str | None:
    """ "latin" or "cyrillic" when every letter is of that script; None otherwise."""
    letters = [c for c in word if c.isalpha()]
    if letters and all(_IS_CYRILLIC(c) for c in letters):
        return "cyrillic"
    if letters and all(_IS_LATIN(c) for c in letters):
        return "latin"
    return None


def _russian(word: str) -> WordForm:
    if len(word) < RU_MIN_STEM:
        return WordForm(stem=word)
    for ending in RU_STEM_ENDINGS:
        if word.endswith(ending):
            if len(word) - len(ending) >= RU_MIN_STEM:
                return WordForm(stem=word[: -len(ending)], endings=RU_ENDINGS)
            if len(ending) == 1:
                return WordForm(stem=word)  # "Мали", "Баку": too short to inflect safely
    return WordForm(stem=word, endings=RU_ENDINGS)


def _english(word: str) -> WordForm:
    if len(word) < EN_MIN_WORD:
        return WordForm(stem=word)
    if len(word) > EN_MIN_WORD and word[-1] == "y" and word[-2] not in "aeiou":
        return WordForm(stem=word[:-1], endings=frozenset({"y", "ies"}))
    return WordForm(stem=word, endings=EN_ENDINGS)


_RULES: Final[dict[str, Callable[[str], WordForm]]] = {"cyrillic": _russian, "latin": _english}
_LANGUAGE_SCRIPT: Final = {"ru": "cyrillic", "en": "latin"}


def word_form(word: str, written: str, language: str | None) -> WordForm:
    """The inflection rule for one normalised query word; ``written`` is it before folding.

    Acronyms (two or more letters, all upper case as written) and words with digits stay
    exact; ``language`` None picks the rule by script, "none" turns inflection off.
    """
    if (len(written) >= 2 and written.isupper()) or any(c.isdigit() for c in word):
        return WordForm(stem=word)
    script = _script(word)
    if script is None or language == "none":
        return WordForm(stem=word)
    if language is not None and _LANGUAGE_SCRIPT.get(language) != script:
        return WordForm(stem=word)
    return _RULES[script](word)
