"""Whether two items report the same story: a score in [0, 1] and the threshold on it.

Input: two :class:`~monitor.stories.features.StoryFeatures`, or one and the stored text of
the other. Output: :func:`story_score` and :func:`same_story`; a :class:`Scorer` gives the
same score for one new item against each of its candidates, read from their stored text
without making their features. Pure. It does not find the candidates (the store does, by the
features' keys) and does not decide what a story is beyond the pair: a story is the single
linkage of its members.

The rule, precision first (a false merge hides an alert; a miss only repeats one):

- the same canonical link, or the same normalised title: the same story (score 1);
- the same script: the weighted Jaccard similarity of the tokens (stems, numbers), or of
  the headlines' tokens alone when both items have a summary, whichever is higher, at least
  :data:`THRESHOLD`; and at least two *telling* tokens in common (uncommon words, names,
  strong numbers), two capitalised words side by side counting once ("Nawaz Sharif" is one
  name, not two pieces of evidence). A word that is a name in either item weighs as one.
- a numbered thing under another number is another thing: when the headlines have a word
  beside a number in common ("drill 1", "drill 2"; "magnitude 5.8", "6.1-magnitude") and
  share no number, they are not one story (score 0), whatever else they share. Numbers
  alone do not veto: a jackpot or a toll changes between reports of one story;
- explainers, analysis and opinion ("How …", "Why …", a question, "Opinion: …") and
  roundups ("Live updates", "Morning Briefing", clauses joined by ``;`` or ``|``) take up a
  news story's words without reporting it, or report several: their score is multiplied
  by :data:`_GENRE`, so they join only on some two thirds more evidence;
- no name in common, in headlines whose case tells names: the score counts for less
  (:data:`_PLAIN`); a title-case or capitals headline is not held to that.
- English and Russian: only names in both scripts (consonant skeletons: Tokayev = Токаев)
  and strong numbers count: at least three in common, one of them a name, and their share
  of the smaller item's names and numbers at least :data:`THRESHOLD`. Two names without a
  number are too often one person and their office (Tokayev, Akorda) in different news.

Weights do not come from corpus statistics (the decision is per pair): common news words,
places and people in the news every day and given names are listed by hand
(:mod:`monitor.stories.lexicon`) and count little; what the lists miss (the word of the
week, "Olympics") counts fully, which the threshold and the two-token rule guard against.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection
from typing import Final

from monitor.stories.features import CASE_BLIND, StoryFeatures, read_dump
from monitor.stories.genre import EXPLAINER, ROUNDUP
from monitor.stories.weights import MARKS, NAME, TOTALS, WEAK, WORD, masses, read_masses, weight

THRESHOLD: Final = 0.2
_MIN_TELLING: Final = 2
_MIN_ACROSS: Final = 3
_PLAIN: Final = 0.8
_GENRE: Final = 0.6
_GENRES: Final = frozenset({EXPLAINER, ROUNDUP})
_UNIT: Final = 20  # weights are summed in twentieths: exact, whatever the order of a set
_RAISED: Final = round((NAME - WORD) * _UNIT)  # a word that is a name in the other item
_LOOKED_AT: Final = frozenset({"@l", "@c", CASE_BLIND, EXPLAINER, ROUNDUP})


def same_story(a: StoryFeatures, b: StoryFeatures) -> bool:
    """True when ``a`` and ``b`` report one story (see the module docstring)."""
    return story_score(a, b) >= THRESHOLD


def story_score(a: StoryFeatures, b: StoryFeatures) -> float:
    """1.0 for the same link or title; else the similarity (module docstring), 0.0 when
    the evidence is too thin for any threshold."""
    return Scorer(b).score(a)


class Scorer:
    """:func:`story_score` of one item against each of its candidates. What depends on the
    item alone (each of its tokens' weight, whether it tells a story, whether it is a
    name) is worked out once; then a candidate is a few set operations, in C, instead of a
    pass over the tokens it shares in Python: a new item is scored against dozens of
    candidates. A stored candidate is scored from its text (:meth:`score_stored`): its
    tokens are only looked up, never made into features."""

    __slots__ = (
        "_across",
        "_genre",
        "_head_set",
        "_head_telling",
        "_heads",
        "_item",
        "_looked_at",
        "_masses",
        "_numbered",
        "_pairs",
        "_raise_heads",
        "_raise_words",
        "_strong",
        "_telling",
        "_word_set",
        "_words",
    )

    def __init__(self, item: StoryFeatures) -> None:
        tokens = item.tokens
        words: dict[str, int] = {}  # word and number tokens: their weight in this item
        heads: dict[str, int] = {}  # the headline's: "'" and the token
        for token in tokens:
            kind = token[0]
            if kind == "'":
                heads[token] = round(weight(token[1:], "^" + token[1:] in tokens) * _UNIT)
            elif kind not in MARKS:
                words[token] = round(weight(token, "^" + token in tokens) * _UNIT)
        named, plain = round(NAME * _UNIT), round(WORD * _UNIT)
        self._item = item
        self._words = words
        self._word_set = frozenset(words)
        self._heads = heads
        self._head_set = frozenset(heads)
        self._telling = frozenset(t for t in words if t[0] not in WEAK)
        self._head_telling = frozenset(h for h in heads if h[1] not in WEAK)
        weights = words | heads
        self._strong = frozenset(
            t for t in self._telling | self._head_telling if weights[t] == named
        )
        # A word is a name when either item names it: "^" and the word, in the other.
        self._raise_words = frozenset("^" + t for t in self._telling if words[t] == plain)
        self._raise_heads = {"^" + h[1:]: h for h in self._head_telling if heads[h] == plain}
        self._pairs = frozenset(t for t in tokens if t[0] == "+")
        self._masses = read_masses(tokens)
        self._numbered = _numbered(tokens)
        self._genre = bool(_GENRES & tokens)
        # The script a candidate must have to be compared across scripts.
        self._across = "@c" if "@l" in tokens else "@l" if "@c" in tokens else None
        self._looked_at: frozenset[str] | None = None

    def score(self, other: StoryFeatures) -> float:
        """:func:`story_score` of ``other`` and the item."""
        if other.link is not None and other.link == self._item.link:
            return 1.0
        if other.title is not None and other.title == self._item.title:
            return 1.0
        return self._score(other.tokens, other.tokens)

    def score_stored(self, text: str) -> float:
        """The score of the features ``text`` holds (:func:`dump_features`'s form) and the
        item; 0.0 for text that holds none."""
        found = read_dump(text)
        if found is None:
            return 0.0
        link, title, tokens = found
        if link is not None and link == self._item.link:
            return 1.0
        if title is not None and title == self._item.title:
            return 1.0
        if self._looked_at is None:  # every token whose presence in a candidate counts
            self._looked_at = (
                self._item.tokens | self._raise_words | frozenset(self._raise_heads) | _LOOKED_AT
            )
        return self._score(self._looked_at.intersection(tokens), tokens)

    def _score(self, seen: frozenset[str], everything: Collection[str]) -> float:
        """``seen``: the candidate's tokens, or those of them the item looks at;
        ``everything``: all of them, for the rare rules that read the candidate whole."""
        mine = self._item.tokens
        shared = mine & seen
        if len(shared) < _MIN_TELLING:
            return 0.0
        across = self._across is not None and self._across in seen
        pairs = len(shared & self._pairs) if self._pairs else 0  # one name of two words
        if not across and len(shared & self._telling) - pairs < _MIN_TELLING:
            return 0.0
        if "&" in shared and self._numbered_apart(shared, everything):
            return 0.0
        if across:
            score = _across_scripts(mine, everything, shared)
        else:
            score = self._same_script(shared, seen, everything, pairs)
        if self._genre or not _GENRES.isdisjoint(seen):
            score *= _GENRE
        return score

    def _same_script(
        self, shared: frozenset[str], seen: frozenset[str], everything: Collection[str], pairs: int
    ) -> float:
        raised = seen & self._raise_words
        common = sum(map(self._words.__getitem__, shared & self._word_set)) + _RAISED * len(raised)
        strong = len(shared & self._strong) + len(raised)
        found = _totals(everything)
        full_a, head_a = self._masses
        full_b, head_b = read_masses(found) if len(found) == 2 else masses(everything)
        score = common / _UNIT / max(full_a + full_b - common / _UNIT, 1.0)
        heads = shared & self._head_set if head_a and head_b else None
        if heads:
            head = sum(map(self._heads.__getitem__, heads))
            for mark in seen.intersection(self._raise_heads):
                if self._raise_heads[mark] in heads:
                    head += _RAISED
                    strong += 1
            if len(heads & self._head_telling) - pairs >= _MIN_TELLING:
                score = max(score, head / _UNIT / max(head_a + head_b - head / _UNIT, 1.0))
        if not strong and CASE_BLIND not in self._item.tokens and CASE_BLIND not in seen:
            score *= _PLAIN
        return min(score, 1.0)

    def _numbered_apart(self, shared: frozenset[str], other: Collection[str]) -> bool:
        """Whether the headlines number one thing differently ("drill 1", "drill 2") and
        share no number at all."""
        if any(t[0] == "#" for t in shared):
            return False
        labels_a, numbers_a = self._numbered
        labels_b, numbers_b = _numbered(other)
        return not numbers_a & numbers_b and not labels_a.isdisjoint(labels_b)


def _totals(tokens: Collection[str]) -> frozenset[str]:
    """The total tokens among ``tokens``. A stored candidate's tokens come sorted
    (:func:`~monitor.stories.features.dump_features`), its two totals side by side: found
    there, rather than by looking up each token in the set of every total there is."""
    if isinstance(tokens, list):
        at = bisect_left(tokens, "=")
        found = TOTALS.intersection(tokens[at : at + 3])
        if len(found) == 2:
            return found
    return TOTALS.intersection(tokens)


def _numbered(tokens: Collection[str]) -> tuple[set[str], set[str]]:
    labels, numbers = set(), set()
    for token in tokens:
        if token[0] == "&" and "=" in token:
            label, number = token[1:].split("=", 1)
            labels.add(label)
            numbers.add(number)
    return labels, numbers


def _across_scripts(a: Collection[str], b: Collection[str], shared: frozenset[str]) -> float:
    names = sum(1 for t in shared if t[0] == "~")
    numbers = sum(1 for t in shared if t[0] == "#")
    if names < 1 or names + numbers < _MIN_ACROSS:
        return 0.0
    evidence = sum(1 for t in a if t[0] in "~#"), sum(1 for t in b if t[0] in "~#")
    return min(1.0, (names + numbers) / max(min(evidence), 1))
