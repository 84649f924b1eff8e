"""How one term is found in text: which of its words the automaton looks for, and how a place
where that word was found is checked against the whole term.

Input: a query :class:`~monitor.match.query.Term` and a watchlist's language (its word
forms: :func:`inflect_term`) and, when its anchor is found, the item's normalised text.
Output: a :class:`Plan` (the term's anchor word, the check a found anchor needs, the fields
it searches) and, for a found anchor, where the term's words are around it
(:func:`match_words`, :func:`words_span`). The simple checks (one word: the stem exactly,
with an ending, or as a prefix) run in C (:mod:`monitor.match._speedups`); this module holds
the general one. It does not scan text for anchors, evaluate queries or explain matches
(:mod:`monitor.match.matcher`), and touches neither network nor database.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.match.fold import cased
from monitor.match.inflect import WordForm, term_forms
from monitor.match.normtext import NormText
from monitor.match.query import DEFAULT_FIELDS, Term
from monitor.match.words import skip_separators, tokenize, word_before, word_end
from monitor.types import frozen

# How a found anchor is checked against a term (cheapest first): the word at the anchor is
# the stem exactly; the stem plus one of the endings; any word starting with the stem; or
# the general case (phrases, no-space scripts, case-sensitive terms).
EXACT, ENDINGS, PREFIX, WORDS = range(4)


@frozen
class Plan:
    """One distinct term after compilation, shared by every watchlist that uses it."""

    tid: int
    check: int  # how a found anchor is checked: EXACT, ENDINGS, PREFIX or WORDS
    forms: tuple[WordForm, ...]
    anchor: int  # the word the automaton looks for
    fields: frozenset[str]
    case_words: tuple[str, ...] | None  # for case-sensitive terms


def inflect_term(term: Term, language: str | None) -> tuple[WordForm, ...]:
    """The word forms a term stands for under a watchlist's language."""
    return term_forms(
        term.words,
        term.written,
        language,
        prefix=term.prefix,
        case_sensitive=term.case_sensitive,
    )


def plan_term(tid: int, forms: tuple[WordForm, ...], term: Term) -> Plan:
    """The plan of a term whose words stand for ``forms``."""
    fields = DEFAULT_FIELDS if term.field is None else frozenset({term.field})
    anchor, check = anchor_check(forms, term.case_sensitive)
    case_words = tuple(tokenize(cased(" ".join(term.written)))) if term.case_sensitive else None
    return Plan(
        tid=tid, check=check, forms=forms, anchor=anchor, fields=fields, case_words=case_words
    )


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
            end = skip_separators(text, end)
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
        word = word_before(text, begin)
        if word is None or not form.matches(text[word[0] : word[1]]):
            return None
        begin = word[0]
    return begin, end


def words_span(norm: NormText, start: int, plan: Plan) -> tuple[int, int] | None:
    """Where a phrase (or a no-space or case-sensitive term) whose anchor word starts at
    ``start`` is in the text; None if it is not there (the WORDS check of
    monitor.match._speedups.collect)."""
    span = match_words(norm.text, start, plan.forms, plan.anchor)
    return span if span is not None and _same_case(norm, span, plan) else None


def _same_case(norm: NormText, span: tuple[int, int], plan: Plan) -> bool:
    """True unless the term is case-sensitive and the original text differs in case."""
    if plan.case_words is None:
        return True
    begin, stop = norm.original_span(*span)
    return tuple(tokenize(cased(norm.original[begin:stop]))) == plan.case_words
