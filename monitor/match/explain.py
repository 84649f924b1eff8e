"""Explanations of an item's matches: one detail per (term, field) with a snippet.

Input: the occurrences of the terms found in one item and its normalised text; per matched
watchlist, what made its query true (:func:`monitor.match.evaluate.evaluate`'s reasons) and
its terms as written. Output: the :class:`~monitor.types.MatchDetail` values of that
watchlist, made by the rules of the "Explanations" section of :mod:`monitor.match`'s
docstring. It does not find terms or evaluate queries; snippets are cut by
:mod:`monitor.match.normtext`. It touches neither network nor database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from monitor.match.evaluate import Occurrence, Reason
from monitor.match.normtext import NormText
from monitor.types import MatchDetail


class Explainer:
    """The details of one item's matches. What they are made of (a term's first occurrence
    per field and their snippets) depends only on the item, so each is made once and shared
    by every watchlist that needs it."""

    __slots__ = ("hits", "norm", "snippets", "terms")

    def __init__(self, hits: Mapping[int, Sequence[Occurrence]], norm: NormText) -> None:
        """``hits``: term id -> its occurrences in ``norm``, in text order."""
        self.hits, self.norm = hits, norm
        self.terms: dict[tuple[int, str], tuple[MatchDetail, ...]] = {}
        self.snippets: dict[Occurrence, str] = {}

    def details(self, why: list[Reason], leaves: dict[int, str]) -> tuple[MatchDetail, ...]:
        """One detail per (term, field): the first occurrence there, in ``why`` order."""
        if len(why) == 1 and why[0][1] is None:  # the usual case: one term made it true
            tid = why[0][0]
            made = self.terms.get((tid, leaves[tid]))
            return self.term(tid, leaves[tid]) if made is None else made
        seen: dict[tuple[str, str], MatchDetail] = {}
        for tid, occurrence in why:
            leaf = leaves[tid]
            if occurrence is None:
                for detail in self.term(tid, leaf):
                    seen.setdefault((leaf, detail.field), detail)
            elif (leaf, occurrence[0]) not in seen:
                snippet = self.snippet(occurrence)
                detail = MatchDetail(term=leaf, field=occurrence[0], snippet=snippet)
                seen[leaf, occurrence[0]] = detail
        return tuple(seen.values())

    def term(self, tid: int, leaf: str) -> tuple[MatchDetail, ...]:
        """A term's details: its first occurrence in each field, fields in text order."""
        made = self.terms.get((tid, leaf))
        if made is None:
            firsts: dict[str, Occurrence] = {}
            for hit in self.hits[tid]:
                if hit[0] not in firsts:
                    firsts[hit[0]] = hit
            snippet = self.snippet
            made = self.terms[tid, leaf] = tuple(
                [MatchDetail(term=leaf, field=f, snippet=snippet(h)) for f, h in firsts.items()]
            )
        return made

    def snippet(self, hit: Occurrence) -> str:
        """The snippet of one occurrence (made once per item)."""
        snippet = self.snippets.get(hit)
        if snippet is None:
            snippet = self.snippets[hit] = self.norm.snippet(hit[1], hit[2], hit[3])
        return snippet
