"""Text normalisation for matching: one canonical form for feed text and for query terms.

Input: plain text (a feed item's fields, or a term of a query). Output: the normalised text
(:func:`normalize`; :func:`fold` gives a :class:`Folded`, which also says whether offsets
were kept). The semantics are specified in the docstring of :mod:`monitor.match`; this module
implements them. Offsets back into the original and snippets are
:mod:`monitor.match.normtext`'s. It does not parse queries, does not split words
(:mod:`monitor.match.words`) or decide inflection (:mod:`monitor.match.inflect`), does not
match, and touches neither network nor database.

Why the steps are in this order: NFKC first (a decomposed ``й`` is ``и`` + U+0306 otherwise),
then format characters (category Cf: soft hyphen, zero-width joiner) are dropped, then
``casefold`` (which can lengthen the text: ``ß`` -> ``ss``), then NFKC again when case folding
left something decomposed, then ``i`` + combining dot above (what ``casefold`` makes of the
Turkish ``İ``) -> ``i``, ``ё`` -> ``е`` and the Central Asian Cyrillic letters -> Russian
ones (``қ`` -> ``к``: :data:`_RUSSIAN_LETTERS`), then mixed-script look-alikes are repaired.
Only some steps keep every offset; matches are therefore found on the normalised text and
mapped back to the original only to cut snippets (:class:`monitor.match.normtext.NormText`).

Cost: ASCII text is NFKC-stable and ``lower()`` is its case folding. Other text is folded in
C, by one table lookup per character (:mod:`monitor.match._speedups`: far cheaper than
Python's several passes, ``str.casefold`` alone included), when every character folds the
same whatever its neighbours; the table is built here from the Python steps below
(:func:`_slow_fold`), which fold the rest (combining marks, Hangul jamo: rare in feed text).
Look-alikes are repaired only where the fold saw a Latin and a Cyrillic letter meet.
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from functools import cache
from typing import Final

from monitor.match import _speedups
from monitor.match._speedups import Folded, fold_ascii
from monitor.match.words import (
    ASTRAL,
    BARRIER,
    CYRILLIC_LETTER,
    FORMATS,
    LATIN_LETTER,
    fast_class,
    joins,
)

# The highlight markers of a snippet. Private-use characters, removed from feed text during
# normalisation and from snippet context, so a feed cannot forge a highlight.
HIGHLIGHT_START: Final = "\ue000"
HIGHLIGHT_END: Final = "\ue001"

_DROPPED: Final = sorted([*FORMATS, (ord(HIGHLIGHT_START), ord(HIGHLIGHT_END))])
_DROP = re.compile(fast_class(_DROPPED))
# The same for text without astral characters: a plain class, which ``re`` skips to in C.
_DROP_BMP = re.compile(fast_class([(lo, min(hi, 0xFFFF)) for lo, hi in _DROPPED if lo <= 0xFFFF]))
_HAS_ASTRAL = re.compile(f"[{ASTRAL}]").search
_SURROGATE = re.compile("[\ud800-\udfff]")


def fold(text: str) -> Folded:
    """NFKC, drop format characters, casefold, ё -> е, қ -> к. The :class:`Folded` says too
    whether every offset was kept (``offsets_kept``) and whether a Latin and a Cyrillic
    letter may be adjacent (``mixed_scripts``: look-alikes may need repair)."""
    if text.isascii():  # NFKC-stable, no format character: lower() is its case folding
        return fold_ascii(text)  # in C: a Folded costs more to make in Python
    fast = _fast_fold(text)
    if fast is not None:
        return fast
    folded, same = _slow_fold(text)
    return Folded((folded, same, not folded.isascii()))


def _slow_fold(text: str) -> tuple[str, bool]:
    """:func:`fold` by Python's str methods, for any text (the table's source of truth)."""
    if "\xa0" in text:  # NFKC's most common change by far, one for one: do it cheaply
        text = text.replace("\xa0", " ")
    same = unicodedata.is_normalized("NFKC", text)
    if not same:
        text = _nfkc(text)
    if not _printable(text):
        drop = _DROP if _HAS_ASTRAL(text) else _DROP_BMP
        if drop.search(text):
            text, same = drop.sub("", text), False
        text = _SURROGATE.sub("\ufffd", text)  # one for one: no encoding can carry one
    folded = text.casefold()
    if len(folded) != len(text):
        same = False
    if not unicodedata.is_normalized("NFKC", folded):
        folded, same = unicodedata.normalize("NFKC", folded), False
    if _DOT_ABOVE in folded:  # Turkish İ folds to "i" and a dot: the dot goes
        dotless = folded.replace(f"i{_DOT_ABOVE}", "i")
        folded, same = dotless, same and len(dotless) == len(folded)
    return folded.translate(_RUSSIAN_LETTERS), same


_DOT_ABOVE: Final = "\u0307"
# ё = е, and the letters of Kazakh, Kyrgyz, Uzbek and Tajik Cyrillic = the Russian letters
# they are written as in Russian (Тоқаев = Токаев, Өскемен = Оскемен). Russian uses none of
# them, so Russian text is unchanged. (і stays: Ukrainian and Belarusian tell і from и.)
_RUSSIAN_LETTERS: Final = str.maketrans("ёәғқңөұүһўҳӣӯҷ", "еагкноуухухиуч")


def _fast_fold(text: str) -> Folded | None:
    """:func:`fold` by table lookups in C; None when some character's folding depends on its
    neighbours (then Python folds the text)."""
    global _fast_fold
    _speedups.set_tables(*_fast_tables())
    _fast_fold = _speedups.fold  # the tables are built once, on first use
    return _fast_fold(text)


# Hangul vowels and final consonants: they compose with the syllable before them.
_HANGUL_JOINING: Final = ((0x1161, 0x1175), (0x11A8, 0x11C2))
_TABLE_SIZE: Final = 0x20000  # the BMP and the SMP (emoji)
_UNSAFE: Final = 0xFFFFFFFF
_EXPANDS: Final = 0x80000000
_SCRIPT_SHIFT: Final = 24


@cache
def composes_backwards() -> frozenset[str]:
    """Characters that can compose with the one before them (second of a canonical pair):
    combining marks, and the Hangul vowels and final consonants, which are letters."""
    seconds = {chr(lo + k) for lo, hi in _HANGUL_JOINING for k in range(hi - lo + 1)}
    for cp in range(0x110000):
        parts = unicodedata.decomposition(chr(cp)).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            seconds.add(chr(int(parts[1], 16)))
    return frozenset(seconds)


def _fast_tables() -> tuple[bytes, bytes]:
    """What :mod:`monitor.match._speedups` applies: the folded form of each character below
    U+20000 whose folding does not depend on its neighbours, with the script of each letter
    it folds to.

    Such a character is a starter that nothing composes with from behind, its compatibility
    decomposition starts with such a starter, and so does what it folds to. Then nothing
    reorders or composes across the start of its folded form, in any of the steps (NFKC,
    dropping, case folding, NFKC again), and folding a text of such characters is folding
    them one by one. Built on first use: it folds every character of the table.
    """
    seconds = composes_backwards()

    def alone(c: str) -> bool:
        if unicodedata.combining(c) or c in seconds:
            return False
        first = unicodedata.normalize("NFKD", c)[:1]
        return not unicodedata.combining(first) and first not in seconds

    def entry(c: str) -> int:
        script = 1 if _IS_LATIN(c) else 2 if _IS_CYRILLIC(c) else 0
        return ord(c) | script << _SCRIPT_SHIFT

    table = array("I", [_UNSAFE]) * _TABLE_SIZE
    pool = array("I")
    for cp in range(_TABLE_SIZE):
        c = chr(cp)
        if not alone(c):
            continue
        folded, _ = _slow_fold(c)
        if (folded and not alone(folded[0])) or not all(ord(f) < _TABLE_SIZE for f in folded):
            continue
        if len(folded) == 1:
            table[cp] = entry(folded)
        else:
            table[cp] = _EXPANDS | len(pool)
            pool.append(len(folded))
            pool.extend(map(entry, folded))
    return table.tobytes(), pool.tobytes()


def _nfkc(text: str) -> str:
    """NFKC, line by line: a line feed neither composes nor reorders with its neighbours, so
    the lines already in normal form (usually most of them) are only checked, not rebuilt."""
    lines = text.split("\n")
    if len(lines) < 3:
        return unicodedata.normalize("NFKC", text)
    nfkc, stable = unicodedata.normalize, unicodedata.is_normalized
    return "\n".join([line if stable("NFKC", line) else nfkc("NFKC", line) for line in lines])


def _printable(text: str) -> bool:
    """True when ``text`` surely has no format character (str methods run far faster than a
    regex scan; format characters are not printable, and neither are line breaks)."""
    if text.isprintable():
        return True
    text = text.replace("\n", " ").replace("\t", " ").replace("\r", " ")
    return text.replace(BARRIER, " ").isprintable()


def cased(text: str) -> str:
    """The normal form without case folding or look-alike repair, for case-sensitive terms."""
    text = _DROP.sub("", unicodedata.normalize("NFKC", text))
    return text.replace("ё", "е").replace("Ё", "Е")  # Kazakh letters stay: exact spelling


# Latin and Cyrillic letters that look alike once case-folded (the pairs of upper-case
# look-alikes such as В/B are listed by their folded forms).
_CYR_TO_LAT: Final = dict(zip("авекмнорстухіјѕԁԛԝ", "abekmhopctyxijsdqw", strict=True))
_LAT_TO_CYR: Final = dict(zip("abekmhopctyxijs", "авекмнорстухіјѕ", strict=True))
_MIXED = re.compile(f"{LATIN_LETTER}{CYRILLIC_LETTER}|{CYRILLIC_LETTER}{LATIN_LETTER}")
_IS_LATIN = re.compile(LATIN_LETTER).match
_IS_CYRILLIC = re.compile(CYRILLIC_LETTER).match


def _one_script(word: str) -> str:
    """Rewrite a word mixing Latin and Cyrillic look-alikes in one script, if it can be.

    The script with more letters in the word is tried first (Latin on a tie); a letter with
    no look-alike in the target script makes that script impossible. Each character becomes
    exactly one (itself or its look-alike), so the word keeps its length.
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
# far faster than a regex over the text, and mixed words are rare.
_SCRIPT_BYTES: Final = bytes(
    ord("L")
    if (chr(b).isascii() and chr(b).isalpha()) or 0xC3 <= b <= 0xC9
    else ord("C")
    if 0xD0 <= b <= 0xD3
    else 32
    for b in range(256)
)
_CONTINUATION: Final = bytes(range(0x80, 0xC0))
_CYRILLIC_LEADS: Final = (b"\xd0", b"\xd1", b"\xd2", b"\xd3")  # U+0400-U+04FF in UTF-8


def _has_mixed(text: str) -> bool:
    encoded = text.encode()
    if not any(lead in encoded for lead in _CYRILLIC_LEADS):
        return False  # no Cyrillic letter (most non-Russian text): four byte searches
    scripts = encoded.translate(_SCRIPT_BYTES, _CONTINUATION)
    if b"L" not in scripts:
        return False  # one byte is found far faster than two
    return b"LC" in scripts or b"CL" in scripts


def repair_lookalikes(text: str) -> str:
    """Repair every word that mixes Latin and Cyrillic letters.

    Every offset is kept, which :class:`~monitor.match.normtext.NormText` relies on when it
    maps matches back to the original: each word keeps its length (:func:`_one_script`) and
    the words rewritten never overlap, as a mixed pair is two letters, letters are word
    characters, and each word ends before the first character that is not one.
    """
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
    folded = fold(text)
    return repair_lookalikes(folded.text) if folded.mixed_scripts else folded.text
