"""How much each token of the story features counts, and an item's totals.

Input: tokens (:mod:`monitor.stories.features`'s docstring lists their kinds). Output: a
token's weight (:func:`weight`), an item's total weight over all its word and number tokens
and over its headline's (:func:`masses`), which the features carry as two ``=`` tokens
(:func:`total_tokens`): a comparison then reads them (:func:`read_masses`, one set
intersection in C) instead of summing some sixty tokens of each candidate in Python. It
compares nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

# Common words and weak numbers count for little; a name (a word capitalised as one in
# either item) and a strong number for more than an ordinary word.
WEAK: Final = {"_": 0.35, "%": 0.5}
NAME: Final = 1.5
WORD: Final = 1.0
# Tokens that are marks, not words: names (^), headline words ('), skeletons (~), names of
# two words (+), the script (@), the totals (=), the headline's numbered things (&), its
# genre (!).
MARKS: Final = frozenset("^'~+@=&!")
_SCALE: Final = 4  # totals are kept in quarters
_MAX_TOTAL: Final = 400  # quarters: above any total the kept tokens can reach
TOTALS: Final = frozenset(
    [f"=a{n}" for n in range(_MAX_TOTAL + 1)] + [f"=h{n}" for n in range(_MAX_TOTAL + 1)]
)


def weight(token: str, name: bool) -> float:
    """The weight of a word or number token; ``name``: the word is a name in an item."""
    kind = token[0]
    weak = WEAK.get(kind)
    if weak is not None:
        return weak
    return NAME if name or kind == "#" else WORD


def masses(tokens: Collection[str]) -> tuple[float, float]:
    """The total weight of the word and number tokens, and of the headline's alone (0 when
    the item has no headline marks, which only an item with a summary has)."""
    tokens = frozenset(tokens)
    full = head = 0.0
    for token in tokens:
        kind = token[0]
        if kind == "'":
            head += weight(token[1:], "^" + token[1:] in tokens)
        elif kind not in MARKS:
            full += weight(token, "^" + token in tokens)
    return full, head


def total_tokens(full: float, head: float) -> list[str]:
    """The two ``=`` tokens that carry an item's totals."""
    return [
        f"=a{min(_MAX_TOTAL, round(full * _SCALE))}",
        f"=h{min(_MAX_TOTAL, round(head * _SCALE))}",
    ]


def read_masses(tokens: frozenset[str]) -> tuple[float, float]:
    """The totals the ``=`` tokens carry; summed afresh when they are missing."""
    found = tokens & TOTALS
    if len(found) != 2:
        return masses(tokens)
    full = head = 0.0
    for token in found:
        if token[1] == "a":
            full = int(token[2:]) / _SCALE
        else:
            head = int(token[2:]) / _SCALE
    return full, head
