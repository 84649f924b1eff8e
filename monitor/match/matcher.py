"""The Matcher: every watchlist compiled into one automaton, items matched and explained.

Input: watchlists (to build), then an item and its context (per call). Output: one
``WatchlistMatch`` per matched watchlist. The rules are the specification in
:mod:`monitor.match`'s docstring; the "Cost" section there is the design of this module. It
finds the terms of every watchlist in an item at once and evaluates only the watchlists with
a hit; how one term is checked is :mod:`monitor.match.plan`'s, a query's truth
:mod:`monitor.match.evaluate`'s and the details of a match :mod:`monitor.match.explain`'s.
Pure: no network, no database, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Final

import ahocorasick_rs

from monitor.errors import QueryError
from monitor.match import _speedups
from monitor.match.evaluate import AnyOf, Lowered, Occurrence, Reason, evaluate, lower
from monitor.match.explain import Explainer
from monitor.match.inflect import LANGUAGES
from monitor.match.normtext import NormText, normalize_fields
from monitor.match.plan import Plan, inflect_term, plan_term, words_span
from monitor.match.query import DEFAULT_FIELDS, FIELDS, Term, compile_query
from monitor.match.words import is_nospace, joiner_bitmap
from monitor.types import Item, MatchContext, Watchlist, WatchlistMatch, frozen

# A field and, per anchor, the plans to check when the anchor is found in it.
_Slot = tuple[str, list[tuple[tuple[int, int, int, frozenset[str], Plan], ...]]]
# term id -> occurrences, in text order (plain tuples: one is made for every hit, so it must
# be cheap)
_Hits = dict[int, list[Occurrence]]


@dataclass(slots=True)
class _Found:
    """An item's normalised text and the occurrences of terms in it."""

    norm: NormText
    hits: _Hits


@frozen
class _Compiled:
    watchlist: Watchlist
    root: Lowered
    leaves: dict[int, str]  # term id -> the term as written in this watchlist
    any_of: tuple[int, ...] | None  # the root is an OR of terms (most queries): no tree walk
    limited: bool  # only some feeds or tags


# The contiguous NFA rather than the DFA: with many anchors the DFA takes many times the
# memory and build time, and its scans, fast back to back, are slower in match_item, where the
# Python work on each item's hits evicts it from the CPU caches between two scans
# (bench/match.py compares the two).
_AUTOMATON_KIND: Final = ahocorasick_rs.Implementation.ContiguousNFA


class Matcher:
    """All watchlists compiled into one automaton; :meth:`match_item` per item."""

    def __init__(self, watchlists: Sequence[Watchlist]) -> None:
        """Compile every query; QueryError names the watchlist in its reason."""
        self.watchlists = tuple(watchlists)
        self._plans: list[Plan] = []
        self._plan_ids: dict[tuple[object, ...], int] = {}
        self._compiled: list[_Compiled] = []
        self._by_term: list[list[int]] = []  # term id -> watchlists where it is positive
        for index, watchlist in enumerate(self.watchlists):
            self._compiled.append(self._compile(index, watchlist))
        self._build_automaton()

    def _compile(self, index: int, watchlist: Watchlist) -> _Compiled:
        try:
            if watchlist.language is not None and watchlist.language not in LANGUAGES:
                known = ", ".join(sorted(LANGUAGES))
                reason = f"unknown language {watchlist.language!r} (known: {known})"
                raise QueryError(watchlist.query, 0, reason)
            query = compile_query(watchlist.query)
        except QueryError as exc:
            reason = f"watchlist {watchlist.name!r}: {exc.reason}"
            raise QueryError(exc.query, exc.position, reason) from exc
        ids = {term: self._intern(term, watchlist.language) for term, _ in query.terms()}
        for term, positive in query.terms():
            if positive and index not in self._by_term[ids[term]]:
                self._by_term[ids[term]].append(index)
        leaves: dict[int, str] = {}
        root = lower(query.root, ids, leaves)
        any_of = root.tids if isinstance(root, AnyOf) and not root.children else None
        limited = bool(watchlist.feeds or watchlist.tags)
        return _Compiled(
            watchlist=watchlist, root=root, leaves=leaves, any_of=any_of, limited=limited
        )

    def _intern(self, term: Term, language: str | None) -> int:
        forms = inflect_term(term, language)
        key = (forms, term.field, term.case_sensitive and term.written)
        tid = self._plan_ids.get(key)
        if tid is None:
            tid = self._plan_ids[key] = len(self._plans)
            self._plans.append(plan_term(tid, forms, term))
            self._by_term.append([])
        return tid

    def _build_automaton(self) -> None:
        """One pattern per distinct anchor; each carries the plans of its prefix anchors too.

        The automaton reports, leftmost-longest, the longest anchor at each position. Anchors
        are runs of word characters, so at a word start every other anchor found there is a
        prefix of the reported one: its plans are attached to the reported pattern.
        """
        by_anchor: dict[str, list[Plan]] = {}
        for plan in self._plans:
            by_anchor.setdefault(plan.forms[plan.anchor].stem, []).append(plan)
        self._anchors = list(by_anchor)
        self._check_left = bytes(not is_nospace(anchor[0]) for anchor in self._anchors)
        found_with = [
            [p for k in range(1, len(anchor) + 1) for p in by_anchor.get(anchor[:k], ())]
            for anchor in self._anchors
        ]
        self._fields = frozenset().union(*(p.fields for p in self._plans))
        self._default_fields = self._fields == DEFAULT_FIELDS
        # field -> anchor index -> the plans to check (those searching that field), unpacked
        self._candidates = {
            name: [
                tuple(
                    (p.tid, p.check, len(p.forms[0].stem), p.forms[0].endings, p)
                    for p in plans
                    if name in p.fields
                )
                for plans in found_with
            ]
            for name in self._fields
        }
        self._slots = {name: (name, self._candidates[name]) for name in self._fields}
        _install_joiners()
        self._automaton = (
            ahocorasick_rs.AhoCorasick(
                self._anchors,
                matchkind=ahocorasick_rs.MatchKind.LeftmostLongest,
                implementation=_AUTOMATON_KIND,
            )
            if self._anchors
            else None
        )

    def match_item(self, item: Item, context: MatchContext) -> list[WatchlistMatch]:
        """The watchlists the item matches, in configuration order, with explanations."""
        found = self._find(item, context)
        if found is None:
            return []
        hits, by_term = found.hits, self._by_term
        if len(hits) == 1:
            candidates = by_term[next(iter(hits))]  # ascending already
        else:
            candidates = sorted({w for tid in hits for w in by_term[tid]})
        explain = Explainer(found.hits, found.norm)
        out: list[WatchlistMatch] = []
        for index in candidates:
            compiled = self._compiled[index]
            if compiled.limited and not compiled.watchlist.admits(context):
                continue
            why = _evaluate(compiled, found)
            if why:
                details = explain.details(why, compiled.leaves)
                out.append(WatchlistMatch(watchlist=compiled.watchlist.name, matches=details))
        return out

    def _find(self, item: Item, context: MatchContext) -> _Found | None:
        """Every occurrence of every term. The fields are normalised and scanned as one text;
        a field whose text equals an earlier one's shares its scan."""
        texts = self._texts(item, context)
        if self._automaton is None or not texts:
            return None
        norm = normalize_fields(list(texts))
        hits = self._collect(norm, list(texts.values()))
        return _Found(norm=norm, hits=hits) if hits else None

    def _texts(self, item: Item, context: MatchContext) -> dict[str, list[_Slot]]:
        """The distinct non-empty texts of the fields some term searches, each with the
        fields that hold it (name and candidate plans), in field order."""
        texts: dict[str, list[_Slot]] = {}
        for name, text in self._field_texts(item, context):
            if text:
                slots = texts.get(text)
                if slots is None:
                    texts[text] = [self._slots[name]]
                else:
                    slots.append(self._slots[name])
        return texts

    def _field_texts(self, item: Item, context: MatchContext) -> list[tuple[str, str]]:
        if self._default_fields:  # the usual case, without the general loop
            return [("title", item.title), ("summary", item.summary), ("content", item.content)]
        values = {"title": item.title, "summary": item.summary, "content": item.content}
        values.update(author=item.author, link=item.link or "", feed=context.feed_name)
        out: list[tuple[str, str]] = []
        for name in FIELDS:
            if name == "category" and name in self._fields:
                out += (("category", c) for c in item.categories)  # a phrase cannot span two
            elif name in self._fields:
                out.append((name, values[name]))
        return out

    def _collect(self, norm: NormText, slots: list[list[_Slot]]) -> _Hits:
        """Check each anchor the automaton finds at a word start against every term it may
        begin (or, for a phrase, be the longest word of), in the fields of its segment.
        The loop runs in C (monitor.match._speedups.collect: once per anchor found, it is most of
        the cost of matching after the scan); phrases are checked by
        :func:`~monitor.match.plan.words_span`."""
        assert self._automaton is not None
        text = norm.text
        found = self._automaton.find_matches_as_indexes(text)
        if not found:
            return {}
        return _speedups.collect(
            found, text, norm.starts, slots, self._check_left, words_span, norm
        )


@cache
def _install_joiners() -> None:
    """Give the C collect loop the word characters (once: the bitmap covers every code
    point)."""
    _speedups.set_joiners(joiner_bitmap())


def _evaluate(compiled: _Compiled, found: _Found) -> list[Reason]:
    """What makes the watchlist's query true for the item (empty: it is false)."""
    hits = found.hits
    if compiled.any_of is not None:
        return [(tid, None) for tid in compiled.any_of if tid in hits]
    why: list[Reason] = []
    return why if evaluate(compiled.root, hits, why, found.norm.token_index) else []
