"""An item's texts, normalised for matching, with offsets back into the original text and
highlighted snippets of it.

Input: the texts of an item's fields (:func:`normalize_fields`) or one text. Output: a
:class:`NormText`: the normalised text the automaton scans, where each field starts in it,
word positions (for NEAR), and for a span of the normalised text the span of the original it
came from (:meth:`NormText.original_span`) and a snippet around it (:func:`make_snippet`).
Folding itself is :mod:`monitor.match.fold`'s; this module keeps track of where things were.
It does not match, and touches neither network nor database.

Why offsets need mapping at all: folding can lengthen text (``ß`` -> ``ss``, ``…`` -> ``...``)
or shorten it (format characters are dropped), so a match in the normalised text is not at
the same offsets in the original. Most texts keep every offset (each character folds to one),
and most matched texts are never mapped: a map is built only for a field that needs one, when
a snippet or a case-sensitive check asks for it.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Sequence
from functools import cache

from monitor.match import _speedups
from monitor.match.fold import (
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    composes_backwards,
    fold,
    repair_lookalikes,
)
from monitor.match.words import ASTRAL, BARRIER, FORMATS, MARKS, fast_class, word_starts

_HAS_ASTRAL = re.compile(f"[{ASTRAL}]").search


@cache
def _unstable() -> tuple[re.Pattern[str], re.Pattern[str], Callable[[str, int], object]]:
    """Runs of characters that do not normalise to exactly one character (ligatures, "…",
    format characters, ``ß``) or that may compose with the one before (combining marks, and
    the Hangul vowels and final consonants: letters, but ``ᄀ`` + ``ᅡ`` is ``가``): for any
    text, and a faster one for text without astral characters (a pattern starting with a
    plain class lets ``re`` skip ahead to a member in C); and the test of whether a run
    starts with a character that may compose with the one before it, or that is dropped
    (then the next one may). Built on first use: it normalises every character up to
    U+3FFFF."""
    nfkc = unicodedata.normalize
    joining = [(ord(c), ord(c)) for c in composes_backwards()]
    dropped = [(ord(HIGHLIGHT_START), ord(HIGHLIGHT_END)), *FORMATS]
    ranges = [*dropped, *MARKS, *joining]
    for cp in range(0x80, 0x40000):
        if len(nfkc("NFKC", nfkc("NFKC", chr(cp)).casefold())) != 1:
            ranges.append((cp, cp))
    ranges.sort()
    bmp = fast_class([(lo, min(hi, 0xFFFF)) for lo, hi in ranges if lo <= 0xFFFF])
    composes = re.compile(fast_class(sorted([*dropped, *MARKS, *joining]))).match
    return re.compile(fast_class(ranges) + "+"), re.compile(f"{bmp}{bmp}*"), composes


# The normalised length of single unstable characters, filled as they are met: a run is most
# often one character ("…", "ß", a soft hyphen), and folding one costs far more than a lookup.
_CHAR_LENGTHS: dict[str, int] = {}


def _run_length(run: str) -> int:
    if len(run) > 1:
        return len(fold(run).text)
    length = _CHAR_LENGTHS.get(run)
    if length is None:
        length = _CHAR_LENGTHS[run] = len(fold(run).text)
    return length


# An offset map of one text: (text starts, original starts, original ends, exact) per run.
_Map = tuple[list[int], list[int], list[int], list[int]]


def _offset_map(original: str, length: int) -> _Map:
    """Runs copied one character for one, and the runs in between (normalised as a whole, so
    a match inside one maps to all of it); ``length`` is the normalised text's."""
    starts, originals, ends, exact = [0], [0], [0], [1]
    done = size = 0  # original offset, normalised length so far

    def add(begin: int, stop: int, length: int, one_for_one: int) -> None:
        nonlocal size
        starts.append(size)
        originals.append(begin)
        ends.append(stop)
        exact.append(one_for_one)
        size += length

    every, bmp, composes = _unstable()
    for run in (every if _HAS_ASTRAL(original) else bmp).finditer(original):
        begin, stop = run.span()
        if begin > done and composes(original, begin):
            begin -= 1  # the character the run's first one may compose with
        if begin > done:
            add(done, begin, begin - done, 1)
        add(begin, stop, _run_length(original[begin:stop]), 0)
        done = stop
    add(done, len(original), len(original) - done, 1)
    if size != length:
        # Normalising the whole text composed across a run (rare: Hangul jamo). One
        # inexact segment: a snippet then shows the whole text, cut to its width.
        return [0], [0], [len(original)], [0]
    return starts, originals, ends, exact


class NormText:
    """An item's texts (joined by :data:`BARRIER`), normalised once, with offsets back into
    the original on demand.

    ``starts`` are where each text begins in the normalised text, ``spans`` where each one
    is in the original. The offset map of a text is built only when a snippet or a
    case-sensitive check needs it there, and only when normalisation moved offsets in it:
    most matched texts never pay for it.
    """

    __slots__ = ("_maps", "_same", "_tokens", "original", "spans", "starts", "text")

    def __init__(self, original: str, lengths: Sequence[int] | None = None) -> None:
        """``lengths``: of the texts joined in ``original``, when the caller knows them."""
        self.original = original
        folded = fold(original)
        self._same = folded.offsets_kept
        text = repair_lookalikes(folded.text) if folded.mixed_scripts else folded.text
        self.text = text
        self._maps: dict[int, _Map | None] = {}  # text index -> map; None: identity
        self._tokens: list[int] | None = None
        if lengths is None:
            lengths = [len(part) for part in original.split(BARRIER)]
        self.spans, lows, low = [], [], 0  # a plain loop: faster than accumulate and zip
        for length in lengths:
            lows.append(low)
            self.spans.append((low, low + length))
            low += length + 1
        if self._same:
            self.starts = lows
            return
        self.starts, found = [0], text.find(BARRIER)
        while found >= 0:  # normalisation never makes or removes the barrier
            self.starts.append(found + 1)
            found = text.find(BARRIER, found + 1)

    def original_span(self, start: int, end: int, segment: int = -1) -> tuple[int, int]:
        """The span of the original text that became ``text[start:end]`` (which is in text
        number ``segment``, when the caller knows)."""
        if segment < 0:
            segment = bisect_right(self.starts, start) - 1
        low, high = self.spans[segment]
        base = self.starts[segment]
        if segment in self._maps:
            found = self._maps[segment]
        else:
            found = self._maps[segment] = self._segment_map(segment)
        if found is None:
            return low + start - base, low + end - base
        starts, originals, ends, exact = found
        start, end = start - base, end - base
        i = bisect_right(starts, start) - 1
        j = bisect_right(starts, max(start, end - 1)) - 1
        begin = originals[i] + (start - starts[i]) if exact[i] else originals[i]
        stop = originals[j] + (end - starts[j]) if exact[j] else ends[j]
        return low + begin, low + max(begin, min(stop, high - low))

    def snippet(self, segment: int, start: int, end: int) -> str:
        """:func:`make_snippet` of the original text of ``text[start:end]``, in text number
        ``segment``."""
        begin, stop = self.original_span(start, end, segment)
        return make_snippet(self.original, begin, stop, bounds=self.spans[segment])

    def _segment_map(self, index: int) -> _Map | None:
        low, high = self.spans[index]
        if self._same or self.original.isascii():
            return None
        original = self.original[low:high]
        if original.isascii():
            return None
        stop = self.starts[index + 1] - 1 if index + 1 < len(self.starts) else len(self.text)
        return _offset_map(original, stop - self.starts[index])

    def token_index(self, offset: int) -> int:
        """The index of the word containing (or preceding) normalised offset ``offset``."""
        if self._tokens is None:
            self._tokens = word_starts(self.text)
        return bisect_right(self._tokens, offset) - 1


def normalize_fields(texts: Sequence[str]) -> NormText:
    """Several texts normalised as one, joined by :data:`BARRIER` (one pass per item, not per
    field); a barrier inside a text becomes a space."""
    joined = BARRIER.join(texts)
    if joined.count(BARRIER) >= len(texts):  # a text holds one (never, in feed text)
        texts = [t.replace(BARRIER, " ") for t in texts]
        joined = BARRIER.join(texts)
    return NormText(joined, list(map(len, texts)))


def make_snippet(
    original: str, start: int, end: int, width: int = 80, bounds: tuple[int, int] | None = None
) -> str:
    """About ``width`` characters of ``original`` around ``[start, end)``, the match marked.

    ``bounds`` limits the window to one field of a joined text. A word cut by the window is
    dropped when another word is left on that side (a text without spaces keeps its cut
    run); an ellipsis shows a cut; whitespace runs become one space; highlight markers
    already in the text are removed. Cut in C (one snippet is made per matched term and
    field: most of the cost of explaining a match in Python); tests/test_normalize.py holds
    the same rules in plain Python, as the reference it is checked against.
    """
    first, last = bounds if bounds is not None else (0, len(original))
    return _speedups.snippet(original, start, end, width, first, last)
