"""Words and their forms: what a word is in any script, and which words a query word stands for.

Input: normalised text; a query term (its words normalised, and as written) with a
watchlist's language. Output: the words of a text (:func:`tokenize`), the
:class:`WordForm` of each word of a term (:func:`term_forms`), which word of a term to look
for and how to check it (:func:`anchor_check`), and where a term's words occur around a
found anchor (:func:`match_words`). The rules are specified in the "Words and normalisation"
and "Inflection" sections of :mod:`monitor.match`'s docstring; this module implements them.
The character classes (also those normalisation needs: marks, format characters) are
computed once, at import, from :mod:`unicodedata`. It does not normalise text, scan for
anchors or evaluate queries, and touches neither network nor database.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # the query module imports this one
    from monitor.match.query import Term

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
# One folded Latin letter (not ÷); one Cyrillic letter.
LATIN_LETTER: Final = "[a-z\u00e0-\u00f6\u00f8-\u024f]"
CYRILLIC_LETTER: Final = "[\u0400-\u04ff]"

_TOKEN = re.compile(f"{JOINER}+|{NOSPACE}")
_JOINS = re.compile(JOINER).match
_IS_NOSPACE = re.compile(NOSPACE).fullmatch
_REST = re.compile(f"{JOINER}*").match
_SKIP = re.compile(f"(?:{SEPARATOR})*").match
_NOSPACE_AT = re.compile(NOSPACE).match
_SEPARATOR_AT = re.compile(SEPARATOR).match
_IS_LATIN = re.compile(LATIN_LETTER).match
_IS_CYRILLIC = re.compile(CYRILLIC_LETTER).match


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


# --- Forms ----------------------------------------------------------------------------------


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


def term_forms(term: Term, language: str | None) -> tuple[WordForm, ...]:
    """The word forms a term stands for under a watchlist's language."""
    if term.case_sensitive:
        return tuple(WordForm(stem=w) for w in term.words)
    forms = [word_form(w, raw, language) for w, raw in zip(term.words, term.written, strict=True)]
    if term.prefix:
        forms[-1] = WordForm(stem=term.words[-1], prefix=True)
    return tuple(forms)


# How a found anchor is checked against a term (cheapest first): the word at the anchor is
# the stem exactly; the stem plus one of the endings; any word starting with the stem; or
# the general case (phrases, no-space scripts, case-sensitive terms).
EXACT, ENDINGS, PREFIX, WORDS = range(4)


def anchor_check(forms: tuple[WordForm, ...], case_sensitive: bool) -> tuple[int, int]:
    """Which word of a term to look for (the longest stem: the rarest, likely) and how to
    check the text where it is found (one of EXACT, ENDINGS, PREFIX, WORDS)."""
    anchor = max(range(len(forms)), key=lambda i: (len(forms[i].stem), -i))
    if len(forms) > 1 or forms[0].letter or case_sensitive:
        return anchor, WORDS
    form = forms[0]
    return anchor, PREFIX if form.prefix else EXACT if form.endings == {""} else ENDINGS


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
WORD_STOPS: Final = frozenset(" \n\t\r.,;:!?()[]{}<>\"'/\\-–—«»“”‘’…|*+=#@&%$\x00")


def word_end(text: str, pos: int) -> int:
    """The end of the word that goes on at ``pos`` (``pos`` itself when none does)."""
    if pos >= len(text) or text[pos] in WORD_STOPS:
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
LANGUAGES: Final = frozenset({"ru", "kk", "en", "none"})

# Kazakh: endings as folded text has them (қ ғ ң ә ө ұ ү -> к г н а о у у; і stays), front
# and back vowels and every consonant variant alike. Case endings, after nothing, a plural,
# a third-person possessive, or both: Тоқаевтың, Қазақстанда, Алматыдағы, елдерінің.
_KK_CASES: Final = (
    *("нын", "нін", "дын", "дін", "тын", "тін"),  # genitive
    *("га", "ге", "ка", "ке", "на", "не", "а", "е"),  # dative
    *("ны", "ні", "ды", "ді", "ты", "ті", "н"),  # accusative
    *("да", "де", "та", "те", "нда", "нде"),  # locative
    *("дан", "ден", "тан", "тен", "нан", "нен", "ндан", "нден"),  # ablative
    *("мен", "бен", "пен"),  # instrumental
    *("дагы", "дегі", "тагы", "тегі", "ндагы", "ндегі"),  # "the one in"
)
_KK_PLURALS: Final = ("лар", "лер", "дар", "дер", "тар", "тер")
_KK_POSSESSIVES: Final = ("ы", "і", "сы", "сі")
KK_ENDINGS: Final = frozenset(
    before + case
    for before in ("", *_KK_PLURALS, *_KK_POSSESSIVES, *(p + s for p in _KK_PLURALS for s in "ыі"))
    for case in ("", *_KK_CASES)
)
# Letters of Kazakh that Russian does not use (і aside: Ukrainian has it too): a query word
# written with one gets the Kazakh endings without ``language: kk``.
_KAZAKH_LETTERS: Final = frozenset("әғқңөұүһӘҒҚҢӨҰҮҺ")


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


def _kazakh(word: str) -> WordForm:
    """The Russian forms (a Kazakh name in Russian text), and the word followed by Kazakh
    endings (:data:`KK_ENDINGS`)."""
    russian = _russian(word)
    if len(word) < RU_MIN_STEM:
        return russian
    endings = _kazakh_endings(word[len(russian.stem) :], russian.endings)
    return WordForm(stem=russian.stem, endings=endings)


@cache
def _kazakh_endings(rest: str, russian: frozenset[str]) -> frozenset[str]:
    """Shared by every word with the same rest after its stem (a set is ~1,000 strings)."""
    return russian | {rest + ending for ending in KK_ENDINGS}


def _english(word: str) -> WordForm:
    if len(word) < EN_MIN_WORD:
        return WordForm(stem=word)
    if len(word) > EN_MIN_WORD and word[-1] == "y" and word[-2] not in "aeiou":
        return WordForm(stem=word[:-1], endings=frozenset({"y", "ies"}))
    return WordForm(stem=word, endings=EN_ENDINGS)


_RULES: Final[dict[str, Callable[[str], WordForm]]] = {
    "ru": _russian,
    "kk": _kazakh,
    "en": _english,
}
_LANGUAGE_SCRIPT: Final = {"ru": "cyrillic", "kk": "cyrillic", "en": "latin"}


def word_form(word: str, written: str, language: str | None) -> WordForm:
    """The inflection rule for one normalised query word; ``written`` is it before folding.

    Acronyms (two or more letters, all upper case as written) and words with digits stay
    exact; ``language`` None picks the rule by script (Kazakh for a Cyrillic word written
    with a Kazakh letter), "none" turns inflection off.
    """
    if (len(written) >= 2 and written.isupper()) or any(c.isdigit() for c in word):
        return WordForm(stem=word)
    script = _script(word)
    if script is None or language == "none":
        return WordForm(stem=word)
    if language is None:
        kazakh = script == "cyrillic" and not _KAZAKH_LETTERS.isdisjoint(written)
        language = "kk" if kazakh else "ru" if script == "cyrillic" else "en"
    if _LANGUAGE_SCRIPT.get(language) != script:
        return WordForm(stem=word)
    return _RULES[language](word)
