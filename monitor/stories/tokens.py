"""The words and numbers of one text, as the story features count them.

Input: a title or a summary, plain text, already cut to a bounded length. Output: a list of
:class:`Word` in text order (repeats included): each word's token (a stem, ``_`` and a stem
for a common word, ``#``/``%`` and a number), whether case marks it as a name, its consonant
skeleton when it is capitalised, and the name it forms with the word before it ("Nawaz
Sharif"). The token kinds are :mod:`monitor.stories.features`'s docstring. It does not choose
which tokens an item keeps and compares nothing.

Case is read from the text before folding: a capitalised word inside a sentence of a
sentence-case text is a name; in a title-case headline ("Fed Raises Rates") or a shouting one
case tells nothing. Words are analysed once per process (a bounded cache): news repeats its
vocabulary, and folding and stemming a word costs more than looking it up.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Final, NamedTuple

from monitor.match.fold import cased, normalize
from monitor.match.words import JOINER, NOSPACE
from monitor.stories.aliases import alias_at
from monitor.stories.lexicon import (
    COMMON_STEMS,
    STEM_LENGTH,
    STOP_WORDS,
    WORDS_KEPT,
    base,
    number_word,
    skeleton,
)
from monitor.stories.synonyms import same_word

_MAX_DIGITS: Final = 12
_MAX_SKELETON: Final = 8

# Numbers are read before the words: thousands separators out ("1,455" = "1 455" = "1455"),
# a decimal comma as a point ("3,5" = "3.5"), an amount with its scale ("$6 million" = "6m"),
# a share with its unit: "0.75%" = "0.75 percent" = "75 basis points" (a central bank's move
# is written either way; a percentage point is a percent).
_NUMBER = re.compile(
    r"(?<!\w)(\d{1,3}(?:[ \u00a0\u202f\u2009]\d{3})+(?![\d.,])|\d+(?:[.,\u00a0\u202f\u2009]\d+)*)"
    r"(?:[\s\u00a0]?(million|billion|trillion|bn|[mbk]|млн|млрд|тыс)(?![^\W\d_])"
    r"|[\s\u00a0-]?(%|percent(?:age[\s-]points?)?|per[\s-]cent|pct|(?-i:bps|bp)|basis[\s-]points?"
    r"|процентн\w*\s+пункт\w*|базисн\w*\s+пункт\w*|процент\w*|пп|бп)(?![^\W\d_]))?",
    re.IGNORECASE,
)
_BASIS_POINTS: Final = frozenset({"bps", "bp", "бп"})
_THOUSANDS = re.compile(r"^\d{1,3}(?:[, \u00a0\u202f\u2009]\d{3})+$")
_SEPARATOR = re.compile(r"[., \u00a0\u202f\u2009]")
_SCALES: Final = {
    "million": "m",
    "m": "m",
    "млн": "m",
    "billion": "b",
    "bn": "b",
    "b": "b",
    "млрд": "b",
    "trillion": "t",
    "k": "k",
    "тыс": "k",
}
_DOTTED = re.compile(r"\b((?:[^\W\d_]\.){2,})")  # U.S., U.N.
_WORD = re.compile(f"{JOINER}+|{NOSPACE}")  # a word, as monitor.match.words.tokenize reads it
_OPENERS: Final = frozenset(".!?:;•|…")
_QUOTES: Final = " \t\r\n\"'“”‘’«»„()[]-–—"
_ADJACENT: Final = frozenset({" ", "-", "‑", "’s ", "'s "})
# A wire dateline ("MOSUL, Iraq/BAGHDAD (Reuters) - ", "ISLAMABAD: "): where a report was
# filed, the same for unrelated reports from one bureau.
_DATELINE = re.compile(
    r"^\s*[A-Z][A-Z.'’ -]{2,}(?:,[^:()\n]{1,30}?)?(?:/[A-Z][A-Z.'’ -]+)*\s*"
    r"(?:\([^()\n]{1,30}\))?\s*(?:[-–—]\s|:\s)"
)


class Word(NamedTuple):
    token: str
    name: bool  # capitalised inside a sentence, or an acronym: a name, as far as case tells
    skeleton: str | None  # "~" and the consonants of a capitalised word
    pair: str | None = None  # "+a+b": this word and the one right before it are one name


def read_words(text: str, *, summary: bool = False) -> list[Word]:
    """The tokens of each word and number of ``text``, in order, repeats included; a
    summary's dateline is left out."""
    if not text:
        return []
    text = cased(text)
    if summary:
        text = _DATELINE.sub("", text, count=1)
    text = _DOTTED.sub(lambda m: m.group(1).replace(".", "") + " ", text)
    out = [Word(_number_token(*found.groups()), False, None) for found in _NUMBER.finditer(text)]
    text = _NUMBER.sub(" ", text)
    words = _WORD.findall(text)
    title_case, shouting = _case_style(words)
    analyse = _analyse_shouting if shouting else _analyse
    before: tuple[str, int] | None = None  # the last capitalised telling token, its end
    end = 0
    for n, word in enumerate(words):
        start = text.find(word, end)  # where findall found it: the first place after the last
        end = start + len(word)
        alias = alias_at(words, n)
        if alias is not None and alias[1] > 1:
            extra = _phrase_alias(alias[0], words[n : n + alias[1]], analyse)
            if extra is not None:
                named = word[0].isupper() and not title_case and not _initial(text, start)
                out.append(extra._replace(name=extra.name or named))
        elif alias is not None:
            word = alias[0]
        found = analyse(word)
        if found is None:
            before = None
            continue
        if word[0].isupper() and not title_case and found.token[0] != "_":
            if not found.name and not _initial(text, start):
                found = found._replace(name=True)
            if before is not None and text[before[1] : start] in _ADJACENT:
                found = found._replace(pair=f"+{before[0]}+{found.token}")
            before = (found.token, end)
        else:
            before = None
        out.append(found)
    return out


def _phrase_alias(canonical: str, phrase: list[str], analyse: Callable) -> Word | None:
    """The word of an alias written as a phrase ("Federal Reserve": "Fed"). The phrase's
    words are kept too ("space station" is still said of the International Space Station),
    so the name is tied to its first telling word (a ``+`` token, as a name of two words
    is, and the phrase's capitalised words are to each other): two items naming it either
    way have one name in common, not two or three."""
    word = analyse(canonical)
    if word is None:
        return None
    for part in map(analyse, phrase):
        if part is not None and part.token[0] != "_":
            return word._replace(pair=f"+{word.token}+{part.token}")
    return word


def read_numbered(text: str) -> list[str]:
    """The numbers of a headline with the word right before and right after each (nothing
    but a space or a hyphen between), as ``&word=number`` tokens ("drill 2": ``&dril=2``;
    "6.1-magnitude": ``&magnit=6.1``): a numbered thing ("drill 1", "Apollo 13", "magnitude
    5.8") is another thing under another number. A run of numbers joined by ``-/.:`` is one
    ("2026-01-03", "7/26/22")."""
    if not text:
        return []
    text = _DOTTED.sub(lambda m: m.group(1).replace(".", "") + " ", cased(text))
    found: list[tuple[int, int, str]] = []  # (start, end, token): numbers as "#n"
    for hit in _NUMBER.finditer(text):
        found.append((hit.start(), hit.end(), "#" + _number_token(*hit.groups())[1:]))
    blank = _NUMBER.sub(lambda m: " " * len(m.group(0)), text)
    for hit in _WORD.finditer(blank):
        word = _analyse(hit.group())
        if word is not None:
            token = "#" + word.token[1:] if word.token[0] in "#%" else word.token
            found.append((hit.start(), hit.end(), token))
    found.sort()
    runs: list[list] = []
    for start, end, token in found:
        last = runs[-1] if runs else None
        if last and token[0] == last[2][0] == "#" and text[last[1] : start] in _RUN:
            last[1:] = [end, f"{last[2]}-{token[1:]}"]
        else:
            runs.append([start, end, token])
    out = []
    for n, (start, end, token) in enumerate(runs):
        if token[0] != "#":
            continue
        for near in runs[max(0, n - 1) : n] + runs[n + 1 : n + 2]:
            gap = text[near[1] : start] if near[0] < start else text[end : near[0]]
            if near[2][0] != "#" and gap.strip(" -‑ ") == "" and len(gap) <= 3:
                out.append(f"&{near[2][:_MAX_LABEL]}={token[1 : 1 + _MAX_LABEL]}")
    return list(dict.fromkeys(out))


_MAX_LABEL: Final = 10
_RUN: Final = frozenset("-/.:")


def _initial(text: str, start: int) -> bool:
    """Whether the word at ``start`` starts a sentence (or a headline's part)."""
    before = text[max(0, start - 6) : start].rstrip(_QUOTES)
    return before[-1:] in _OPENERS if before else start < 6


def case_blind(text: str) -> bool:
    """Whether case tells no name in ``text`` (title case or capitals): then that it shares
    no name with another item is no evidence."""
    return any(_case_style(_WORD.findall(cased(text))))


def _case_style(words: list[str]) -> tuple[bool, bool]:
    """(title case, all capitals): then case tells no name from another word."""
    long = [w for w in words if len(w) >= 4 and w[0].isalpha() and w.lower() not in STOP_WORDS]
    if len(long) < 3:
        return False, False
    capitalised = sum(1 for w in long if w[0].isupper())
    upper = sum(1 for w in long if w.isupper())
    return capitalised >= 0.7 * len(long), upper >= 0.5 * len(long)


def _number_token(found: str, scale: str | None, unit: str | None = None) -> str:
    """``#`` or ``%`` and the number; "$6 million" = "6m" and "$1B" = "1b" are amounts, which
    a small count or a year is not. A share is in percent, as few digits as it takes
    ("75 basis points" = "0.75%" = "0.750%")."""
    parts = _SEPARATOR.split(found)
    if _THOUSANDS.match(found):
        digits = str(int("".join(parts)[:_MAX_DIGITS]))
    else:
        digits = str(int(parts[0][:_MAX_DIGITS])) + (f".{parts[1][:4]}" if len(parts) > 1 else "")
    if scale:
        return "#" + digits + _SCALES.get(scale.lower(), "")
    if unit:
        share = Decimal(digits)
        if unit.lower() in _BASIS_POINTS or unit.lower().startswith(("basis", "базисн")):
            share /= 100
        digits = format(share.normalize(), "f")
    return number(digits)


def number(digits: str) -> str:
    """The token of a number: ``%`` for a year or a count up to 12 (weak), else ``#``."""
    weak = digits.isdigit() and (len(digits) <= 1 or int(digits) <= 12 or _is_year(digits))
    return ("%" if weak else "#") + digits


def _is_year(digits: str) -> bool:
    return len(digits) == 4 and 1900 <= int(digits) <= 2100


@lru_cache(maxsize=WORDS_KEPT)
def _analyse(word: str) -> Word | None:
    """A word's token, out of context: a name only when it is an acronym ("NATO"); the
    caller marks a capitalised word inside a sentence as a name."""
    return _analyse_shouting(word, acronyms=True)


def _analyse_shouting(word: str, *, acronyms: bool = False) -> Word | None:
    """:func:`_analyse` for text in capitals, where "NATO" and "SAYS" look alike."""
    folded = word.lower() if word.isascii() else normalize(word)
    acronym = acronyms and 2 <= len(word) <= 5 and word.isupper()
    if len(folded) < 2 or (folded in STOP_WORDS and not acronym):
        return None
    value = number_word(folded)
    if value is not None:
        return Word(number(str(value)), False, None)
    if len(folded) < 3 and not acronym:
        return None
    folded = _plain_letters(folded)
    root = folded if acronym else same_word(base(folded))
    stemmed = root[:STEM_LENGTH]
    if stemmed in COMMON_STEMS:
        return Word("_" + stemmed, False, None)
    shape = skeleton(root) if word[0].isupper() else ""
    mark = "~" + shape[:_MAX_SKELETON] if len(shape) >= 3 else None
    return Word(stemmed, acronym, mark)


def _plain_letters(word: str) -> str:
    """Latin letters without accents (Jerí = Jeri); Cyrillic untouched (й is not и)."""
    if word.isascii() or any("\u0400" <= c <= "\u04ff" for c in word):
        return word
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))
