"""Match stage: decide which watchlists an item matches, and explain why.

Input: an :class:`~monitor.types.Item` (text already plain) and its
:class:`~monitor.types.MatchContext`. Output: one :class:`~monitor.types.WatchlistMatch` per
matched watchlist, each listing the terms that matched, the field and a highlighted snippet.
Pure: no network, no database, no clock. It does not parse feeds, store or alert.

This docstring is the specification of matching; the tests check it rule by rule.

Query language
--------------
- A *word* (``Tokayev``) or a *phrase* in double quotes (``"World Cup"``; ``\\"`` and ``\\\\``
  escape inside quotes). A bare word with punctuation inside is a phrase of its words
  (``Kazakh-based`` = ``"Kazakh based"``).
- ``a AND b``, ``a b`` (adjacent terms: AND), ``a OR b``, ``NOT a`` and ``-a``, parentheses.
  Operators are upper case; ``and``/``or``/``not`` are ordinary words. Precedence from loose
  to tight: OR, AND, NEAR, NOT; so ``a b OR c`` = ``(a b) OR c`` and ``a NOT b OR c`` =
  ``(a AND NOT b) OR c``.
- ``word*``: any word starting with ``word`` (at least 2 letters before ``*``; only at the
  end of a bare word; inside quotes ``*`` is punctuation).
- ``field:term``, ``field:"a phrase"``, ``field:(a OR b)``: search only that field. Fields:
  title, summary, content, author, category, link, feed (the feed's configured name).
  Unscoped terms search title, summary and content only. Scopes do not nest.
- ``a NEAR/n b``: both terms occur in the same field with at most ``n`` words between them
  (either order; overlapping occurrences count as adjacent). Each side must be a single term
  (word, phrase or prefix, optionally scoped).
- ``="US"``: case-sensitive and exact (no inflection, no look-alike repair): matches ``US``,
  not ``us``. The ``=`` must be followed by a quoted term.
- A query must contain a term that has to occur for it to match: ``-football`` alone, or
  ``a OR NOT b``, is rejected. This is what lets the matcher evaluate only the watchlists
  with a hit (below).
- ``terms: [a, b]`` in the configuration is ``"a" OR "b"`` (:func:`terms_to_query`).
- Malformed queries raise :class:`~monitor.errors.QueryError` with the 0-based position and
  the reason (:func:`compile_query`).

Words and normalisation
-----------------------
Feed text and query terms are compared after the same normalisation (:mod:`monitor.normalize`):
NFKC; format characters (soft hyphen, zero-width joiner, ...) removed; Unicode case folding;
``ё`` = ``е``; a word mixing Latin and Cyrillic letters is rewritten in the script with more
letters in it when every other letter has a look-alike there (``CSTО`` with a Cyrillic ``О``
is ``csto``; a word that cannot be rewritten stays as it is).

A *word* is a maximal run of letters, digits and combining marks, in any script. Punctuation,
spaces, symbols and ``_`` separate words, so ``Kazakhstan's`` contains the word
``Kazakhstan`` and ``CSTOMER`` does not contain ``CSTO``. In scripts written without spaces
(Chinese, Japanese kana, Thai, Lao, Khmer, Myanmar) every letter is a word, so a term in them
is found inside longer runs. A term matches where its words occur as consecutive words of one
field; whatever separates them in the text (spaces, punctuation, line breaks) does not matter.

Inflection (per word of a term; acronyms and words with digits always stay exact)
-------------------------------------------------------------------------------------
- An *acronym* is a word of two or more letters written all in upper case in the query
  (``ОДКБ``, ``ЕАЭС``, ``США``, ``CSTO``): it matches only itself, case-insensitively.
- Russian (a word in Cyrillic letters): the stem is the word minus a final
  vowel/``й``/``ь`` or two-letter adjective ending (``Россия`` -> ``росси``; ``Казахстан``
  and ``Токаев`` are their own stems) when at least 4 letters remain; a word whose stem
  would be shorter than 4 letters, or that has fewer than 4 letters, stays exact (``Мали``,
  ``Баку``, ``Рим``). The word matches the stem followed by one of the endings in
  :data:`~monitor.normalize.RU_ENDINGS` (none, or up to three letters: ``а у е ом ой ами
  ого ...``). So ``Казахстан`` matches ``Казахстане``, ``Казахстана``, ``Казахстаном``;
  ``Токаев`` matches ``Токаева``, ``Токаеву``. Derived words (``казахстанский``) do not.
- English (a word in Latin letters, 3 letters or more): also with ``s`` or ``es``; a word
  ending in consonant + ``y`` also as ``ies`` (``party``/``parties``). Possessives need no
  rule: the apostrophe separates words.
- Other scripts: exact words.
- ``language:`` on a watchlist: ``ru`` applies only the Russian rule, ``en`` only the
  English one, ``none`` neither; unset applies each word's rule by its script.

Explanations
------------
Each :class:`~monitor.types.MatchDetail` names a term that made the query true (as written in
the query: a bare word with its ``*``, a phrase without its quotes or ``=``; for ``terms:``,
the original term), the field, and a snippet: about 80 characters of the ORIGINAL text of
that field around the first such occurrence in it, whitespace runs as one space, a word cut
by the window dropped, ``…`` where the field goes on, the occurrence wrapped in
:data:`HIGHLIGHT_START` (U+E000) and :data:`HIGHLIGHT_END` (U+E001). These private-use
characters are removed from feed text (they can never come from a feed), so a renderer
escapes the snippet, then turns them into ``<mark>``/``</mark>`` (or drops them for plain
text). One detail per (term, field), in query order. Terms under NOT are never listed;
every true branch of an OR is; for NEAR, the occurrences that were near each other are.
Watchlists come back in configuration order.

Cost
----
All terms of all watchlists are compiled once, when the :class:`Matcher` is built (a new set
of watchlists needs a new Matcher), into one Aho-Corasick automaton (ahocorasick-rs) over one
*anchor* per distinct term: the stem of its longest word. Per item, the fields are normalised
and scanned as one text (joined by a character no term can cross); an anchor found at a word
start is checked against the rest of each term it belongs to; then only the watchlists with a
positive term found are evaluated. So the cost per item grows with its length and its hits,
not with the number of watchlists.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import ahocorasick_rs

from monitor.errors import QueryError
from monitor.normalize import (
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    JOINER,
    LANGUAGES,
    NormText,
    WordForm,
    cased,
    is_nospace,
    make_snippet,
    match_words,
    normalize_fields,
    tokenize,
    word_end,
    word_form,
)
from monitor.query import (
    DEFAULT_FIELDS,
    FIELDS,
    And,
    Near,
    Node,
    Not,
    Or,
    Query,
    Term,
    compile_query,
)
from monitor.query import terms_to_query as terms_to_query
from monitor.types import Item, MatchContext, MatchDetail, WatchlistMatch

__all__ = [
    "HIGHLIGHT_END",
    "HIGHLIGHT_START",
    "Matcher",
    "Query",
    "Watchlist",
    "compile_query",
    "term_forms",
    "terms_to_query",
]

frozen = dataclass(frozen=True, slots=True, kw_only=True)
_JOINS = re.compile(JOINER).match


@frozen
class Watchlist:
    name: str
    query: str
    feeds: frozenset[str] = frozenset()  # only items of these feeds (empty: all)
    tags: frozenset[str] = frozenset()  # only feeds with one of these tags (empty: all)
    language: str | None = None  # "ru", "en", "none" (no inflection); None: by script

    def admits(self, context: MatchContext) -> bool:
        """Whether items from this feed are considered at all."""
        if self.feeds and context.feed_name not in self.feeds:
            return False
        return not self.tags or not self.tags.isdisjoint(context.feed_tags)


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
_EXACT, _ENDINGS, _PREFIX, _WORDS = range(4)


@frozen
class _Plan:
    """One distinct term after compilation, shared by every watchlist that uses it."""

    tid: int
    check: int
    forms: tuple[WordForm, ...]
    anchor: int  # the word the automaton looks for: the longest stem (the rarest, likely)
    fields: frozenset[str]
    case_words: tuple[str, ...] | None  # for case-sensitive terms


class _Hit(NamedTuple):
    """One occurrence of a term (a tuple: made for every hit, so it must be cheap)."""

    field: str
    segment: int  # which of the item's distinct texts
    start: int  # in the normalised text of the item
    end: int


_Hits = dict[int, list[_Hit]]  # term id -> occurrences, in text order


@dataclass(slots=True)
class _Found:
    """An item's normalised text, where each segment was in the original, and the hits."""

    norm: NormText
    spans: list[tuple[int, int]]
    hits: _Hits


def _plan(tid: int, forms: tuple[WordForm, ...], term: Term) -> _Plan:
    fields = DEFAULT_FIELDS if term.field is None else frozenset({term.field})
    anchor = max(range(len(forms)), key=lambda i: (len(forms[i].stem), -i))
    check = _WORDS
    if len(forms) == 1 and not is_nospace(forms[0].stem) and not term.case_sensitive:
        form = forms[0]
        check = _PREFIX if form.prefix else _EXACT if form.endings == {""} else _ENDINGS
    case_words = tuple(tokenize(cased(" ".join(term.written)))) if term.case_sensitive else None
    return _Plan(
        tid=tid, check=check, forms=forms, anchor=anchor, fields=fields, case_words=case_words
    )


@frozen
class _Compiled:
    watchlist: Watchlist
    root: _Node
    leaves: dict[int, str]  # term id -> the term as written in this watchlist


class Matcher:
    """All watchlists compiled into one automaton; :meth:`match_item` per item."""

    def __init__(self, watchlists: Sequence[Watchlist]) -> None:
        """Compile every query; QueryError names the watchlist in its reason."""
        self.watchlists = tuple(watchlists)
        self._plans: list[_Plan] = []
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
        return _Compiled(watchlist=watchlist, root=_lower(query.root, ids, leaves), leaves=leaves)

    def _intern(self, term: Term, language: str | None) -> int:
        forms = term_forms(term, language)
        key = (forms, term.field, term.case_sensitive and term.written)
        tid = self._plan_ids.get(key)
        if tid is None:
            tid = self._plan_ids[key] = len(self._plans)
            self._plans.append(_plan(tid, forms, term))
            self._by_term.append([])
        return tid

    def _build_automaton(self) -> None:
        """One pattern per distinct anchor; each carries the plans of its prefix anchors too.

        The automaton reports, leftmost-longest, the longest anchor at each position. Anchors
        are runs of word characters, so at a word start every other anchor found there is a
        prefix of the reported one: its plans are attached to the reported pattern.
        """
        by_anchor: dict[str, list[_Plan]] = {}
        for plan in self._plans:
            by_anchor.setdefault(plan.forms[plan.anchor].stem, []).append(plan)
        self._anchors = list(by_anchor)
        self._check_left = [not is_nospace(anchor[0]) for anchor in self._anchors]
        found_with = [
            [p for k in range(1, len(anchor) + 1) for p in by_anchor.get(anchor[:k], ())]
            for anchor in self._anchors
        ]
        self._fields = frozenset().union(*(p.fields for p in self._plans))
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
        self._automaton = (
            ahocorasick_rs.AhoCorasick(
                self._anchors,
                matchkind=ahocorasick_rs.MatchKind.LeftmostLongest,
                implementation=ahocorasick_rs.Implementation.DFA,
            )
            if self._anchors
            else None
        )

    def match_item(self, item: Item, context: MatchContext) -> list[WatchlistMatch]:
        """The watchlists the item matches, in configuration order, with explanations."""
        found = self._find(item, context)
        if found is None:
            return []
        hits = found.hits
        candidates = sorted({w for tid in hits for w in self._by_term[tid]})
        out: list[WatchlistMatch] = []
        snippets: dict[_Hit, str] = {}  # watchlists sharing a term share its snippet
        for index in candidates:
            compiled = self._compiled[index]
            why: list[tuple[int, _Hit | None]] = []
            if compiled.watchlist.admits(context) and _judge(compiled.root, found, why):
                details = _details(why, found, compiled.leaves, snippets)
                out.append(WatchlistMatch(watchlist=compiled.watchlist.name, matches=details))
        return out

    def _find(self, item: Item, context: MatchContext) -> _Found | None:
        """Every occurrence of every term. The fields are normalised and scanned as one text;
        a field whose text equals an earlier one's shares its scan."""
        if self._automaton is None:
            return None
        texts: dict[str, list[str]] = {}
        for name, text in self._field_texts(item, context):
            if text:
                texts.setdefault(text, []).append(name)
        if not texts:
            return None
        norm, starts, spans = normalize_fields(list(texts))
        found = _Found(norm=norm, spans=spans, hits={})
        self._collect(found, starts, list(texts.values()))
        return found if found.hits else None

    def _field_texts(self, item: Item, context: MatchContext) -> Iterator[tuple[str, str]]:
        """The texts of the fields some term searches."""
        values = {"title": item.title, "summary": item.summary, "content": item.content}
        values.update(author=item.author, link=item.link or "", feed=context.feed_name)
        for name in FIELDS:
            if name not in self._fields:
                continue
            if name == "category":
                for category in item.categories:
                    yield "category", category  # one text each: a phrase cannot span two
            else:
                yield name, values[name]

    def _collect(self, found: _Found, starts: list[int], names: list[list[str]]) -> None:
        """Check each anchor the automaton finds at a word start against every term it may
        begin (or, for a phrase, be the longest word of), in the fields of its segment."""
        assert self._automaton is not None
        text, hits, check_left = found.norm.text, found.hits, self._check_left
        segment, bound = -1, -1
        for aid, start, end in self._automaton.find_matches_as_indexes(text):
            if start and check_left[aid] and _JOINS(text, start - 1):
                continue
            while start >= bound:
                segment += 1
                bound = starts[segment + 1] if segment + 1 < len(starts) else len(text) + 1
                fields = [(name, self._candidates[name]) for name in names[segment]]
            rest = -1  # where the word at the anchor ends, once needed
            for name, candidates in fields:
                for tid, check, size, endings, plan in candidates[aid]:
                    if check == _WORDS:
                        span = match_words(text, start, plan.forms, plan.anchor)
                        if span is None or not _same_case(found.norm, span, plan):
                            continue
                    else:
                        if rest < 0:
                            rest = word_end(text, end)
                        if check == _EXACT and rest != start + size:
                            continue
                        if check == _ENDINGS and text[start + size : rest] not in endings:
                            continue
                        span = (start, rest)
                    hits.setdefault(tid, []).append(_Hit(name, segment, *span))


def _same_case(norm: NormText, span: tuple[int, int], plan: _Plan) -> bool:
    """True unless the term is case-sensitive and the original text differs in case."""
    if plan.case_words is None:
        return True
    begin, stop = norm.original_span(*span)
    return tuple(tokenize(cased(norm.original[begin:stop]))) == plan.case_words


# --- Evaluation -----------------------------------------------------------------------------
# A watchlist's query is lowered to these nodes, whose leaves are term ids.


@frozen
class _Has:
    tid: int


@frozen
class _All:
    tids: tuple[int, ...]  # the term children, apart: most queries are lists of terms
    children: tuple[_Node, ...]


@frozen
class _Any:
    tids: tuple[int, ...]
    children: tuple[_Node, ...]


@frozen
class _None:
    child: _Node


@frozen
class _Close:
    left: int
    right: int
    distance: int


_Node = _Has | _All | _Any | _None | _Close


def _lower(node: Node, ids: dict[Term, int], leaves: dict[int, str]) -> _Node:
    """The query with its terms replaced by ids; ``leaves`` gets each id's text as written."""
    match node:
        case Term():
            leaves.setdefault(ids[node], node.text)
            return _Has(tid=ids[node])
        case And(children=children) | Or(children=children):
            lowered = [_lower(c, ids, leaves) for c in children]
            tids = tuple(c.tid for c in lowered if isinstance(c, _Has))
            rest = tuple(c for c in lowered if not isinstance(c, _Has))
            kind = _All if isinstance(node, And) else _Any
            return kind(tids=tids, children=rest)
        case Not(child=child):
            return _None(child=_lower(child, ids, leaves))
        case Near(left=left, right=right, distance=distance):
            leaves.setdefault(ids[left], left.text)
            leaves.setdefault(ids[right], right.text)
            return _Close(left=ids[left], right=ids[right], distance=distance)
    raise AssertionError(node)


def _judge(node: _Node, found: _Found, why: list[tuple[int, _Hit | None]]) -> bool:
    """Evaluate a query; when true, ``why`` has gained what made it true: (term id, None) for
    every occurrence of a term, (term id, occurrence) for the two sides of a NEAR."""
    hits = found.hits
    match node:
        case _Any(tids=tids, children=children):
            true = False
            for tid in tids:
                if tid in hits:
                    why.append((tid, None))
                    true = True
            for child in children:
                true = _judge(child, found, why) or true  # every true branch explains
            return true
        case _All(tids=tids, children=children):
            if not all(tid in hits for tid in tids):
                return False
            mark = len(why)
            why += ((tid, None) for tid in tids)
            if all(_judge(child, found, why) for child in children):
                return True
            del why[mark:]
            return False
        case _Has(tid=tid):
            if tid in hits:
                why.append((tid, None))
                return True
            return False
        case _None(child=child):
            return not _judge(child, found, [])
        case _Close(left=left, right=right):
            true = False
            for a, b in _near_pairs(node, found):
                why += ((left, a), (right, b))
                true = True
            return true
    raise AssertionError(node)


def _near_pairs(node: _Close, found: _Found) -> Iterator[tuple[_Hit, _Hit]]:
    word = found.norm.token_index
    for a in found.hits.get(node.left, ()):
        for b in found.hits.get(node.right, ()):
            if a.segment != b.segment or a.field != b.field:
                continue
            # words strictly between the two occurrences (0 when they overlap)
            gap = max(word(b.start) - word(a.end - 1), word(a.start) - word(b.end - 1)) - 1
            if gap <= node.distance:
                yield a, b


def _details(
    why: list[tuple[int, _Hit | None]],
    found: _Found,
    leaves: dict[int, str],
    snippets: dict[_Hit, str],
) -> tuple[MatchDetail, ...]:
    """One detail per (term, field): the first occurrence there, as a snippet."""
    seen: dict[tuple[str, str], MatchDetail] = {}
    for tid, occurrence in why:
        for hit in found.hits[tid] if occurrence is None else (occurrence,):
            key = (leaves[tid], hit.field)
            if key in seen:
                continue
            snippet = snippets.get(hit)
            if snippet is None:
                start, end = found.norm.original_span(hit.start, hit.end)
                bounds = found.spans[hit.segment]
                snippet = make_snippet(found.norm.original, start, end, bounds=bounds)
                snippets[hit] = snippet
            seen[key] = MatchDetail(term=leaves[tid], field=hit.field, snippet=snippet)
    return tuple(seen.values())
