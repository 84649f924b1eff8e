"""Whether two items report the same story: a score in [0, 1] and the threshold on it.

Input: two :class:`~monitor.stories.features.StoryFeatures`. Output: :func:`story_score` and
:func:`same_story`. Pure, and cheap
enough to run against a couple of hundred candidates per new item. It does not find the
candidates (the store does, by the features' keys) and does not decide what a story is
beyond the pair: a story is the single linkage of its members.

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

from typing import Final

from monitor.stories.features import CASE_BLIND, StoryFeatures
from monitor.stories.genre import EXPLAINER, ROUNDUP
from monitor.stories.weights import MARKS, NAME, WEAK, WORD, read_masses

THRESHOLD: Final = 0.2
_MIN_TELLING: Final = 2
_MIN_ACROSS: Final = 3
_PLAIN: Final = 0.8
_GENRE: Final = 0.6
_GENRES: Final = frozenset({EXPLAINER, ROUNDUP})


def same_story(a: StoryFeatures, b: StoryFeatures) -> bool:
    """True when ``a`` and ``b`` report one story (see the module docstring)."""
    return story_score(a, b) >= THRESHOLD


def story_score(a: StoryFeatures, b: StoryFeatures) -> float:
    """1.0 for the same link or title; else the similarity (module docstring), 0.0 when
    the evidence is too thin for any threshold. Only the shared tokens are looked at one
    by one: the totals are carried by the features."""
    if a.link is not None and a.link == b.link:
        return 1.0
    if a.title is not None and a.title == b.title:
        return 1.0
    ta, tb = a.tokens, b.tokens
    shared = ta & tb
    if len(shared) < _MIN_TELLING:
        return 0.0
    if "&" in shared and _numbered_apart(ta, tb):
        return 0.0
    if ("@l" in ta and "@c" in tb) or ("@c" in ta and "@l" in tb):
        score = _across_scripts(ta, tb, shared)
    else:
        score = _same_script(ta, tb, shared)
    if _GENRES & ta or _GENRES & tb:
        score *= _GENRE
    return score


def _same_script(ta: frozenset[str], tb: frozenset[str], shared: frozenset[str]) -> float:
    common = head = 0.0
    telling = head_telling = strong = 0
    for token in shared:
        kind = token[0]
        if kind == "+":  # a name of two words, both counted: count it once
            telling -= 1
            head_telling -= 1
            continue
        heading = kind == "'"
        if heading:
            token = token[1:]
            kind = token[0]
        elif kind in MARKS:
            continue
        weight = WEAK.get(kind)
        if weight is None:
            weight = NAME if kind == "#" or "^" + token in ta or "^" + token in tb else WORD
            strong += weight > WORD
            if heading:
                head_telling += 1
            else:
                telling += 1
        if heading:
            head += weight
        else:
            common += weight
    if telling < _MIN_TELLING:
        return 0.0
    full_a, head_a = read_masses(ta)
    full_b, head_b = read_masses(tb)
    score = common / max(full_a + full_b - common, 1.0)
    if head_telling >= _MIN_TELLING and head_a and head_b:
        score = max(score, head / max(head_a + head_b - head, 1.0))
    if not strong and CASE_BLIND not in ta and CASE_BLIND not in tb:
        score *= _PLAIN
    return min(score, 1.0)


def _numbered_apart(a: frozenset[str], b: frozenset[str]) -> bool:
    """Whether the headlines number one thing differently ("drill 1", "drill 2") and share
    no number at all."""
    labels_a, numbers_a = _numbered(a)
    labels_b, numbers_b = _numbered(b)
    if numbers_a & numbers_b or any(t[0] == "#" for t in a & b):
        return False
    return not labels_a.isdisjoint(labels_b)


def _numbered(tokens: frozenset[str]) -> tuple[set[str], set[str]]:
    labels, numbers = set(), set()
    for token in tokens:
        if token[0] == "&" and "=" in token:
            label, number = token[1:].split("=", 1)
            labels.add(label)
            numbers.add(number)
    return labels, numbers


def _across_scripts(a: frozenset[str], b: frozenset[str], shared: frozenset[str]) -> float:
    names = sum(1 for t in shared if t[0] == "~")
    numbers = sum(1 for t in shared if t[0] == "#")
    if names < 1 or names + numbers < _MIN_ACROSS:
        return 0.0
    evidence = sum(1 for t in a if t[0] in "~#"), sum(1 for t in b if t[0] in "~#")
    return min(1.0, (names + numbers) / max(min(evidence), 1))
