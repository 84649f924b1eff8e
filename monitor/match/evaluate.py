"""Whether a query is true for an item, given where its terms occur, and what made it true.

Input: a compiled :class:`~monitor.match.query.Query`'s tree, lowered once (:func:`lower`:
its terms replaced by ids, so a term shared by several watchlists is looked for once, and the
term children of AND and OR kept apart from the others, as most queries are lists of terms);
then, per item, the occurrences of each term id found. Output: true or false and, when true,
the reasons (:func:`evaluate`): which terms, or which occurrences for a NEAR, made it so.
The rules are the "Query language" and "Explanations" sections of :mod:`monitor.match`'s
docstring. It does not parse queries, look for terms in text or make snippets, and touches
neither network nor database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from monitor.match.query import And, Near, Node, Not, Or, Term
from monitor.types import frozen

# One occurrence of a term: its field, which of the item's texts, start and end offsets.
Occurrence = tuple[str, int, int, int]
# What made a query true: (term id, None) for all of a term's occurrences, or (term id, the
# occurrence) for a side of a NEAR.
Reason = tuple[int, Occurrence | None]


@frozen
class AllOf:
    """An AND: every term id occurs and every child is true."""

    tids: tuple[int, ...]
    children: tuple[Lowered, ...]


@frozen
class AnyOf:
    """An OR: some term id occurs or some child is true (a term alone: an OR of one)."""

    tids: tuple[int, ...]
    children: tuple[Lowered, ...]


@frozen
class NoneOf:
    """A NOT: the child is false."""

    child: Lowered


@frozen
class Close:
    """A NEAR: both terms in one text of one field, at most ``distance`` words apart."""

    left: int
    right: int
    distance: int


Lowered = AllOf | AnyOf | NoneOf | Close


def lower(node: Node, ids: dict[Term, int], leaves: dict[int, str]) -> Lowered:
    """The query with its terms replaced by ids (a term alone: an OR of one); ``leaves`` gets
    each id's text as written (its first one)."""
    match node:
        case Term():
            leaves.setdefault(ids[node], node.text)
            return AnyOf(tids=(ids[node],), children=())
        case And(children=children) | Or(children=children):
            tids: list[int] = []
            rest: list[Lowered] = []
            for child in children:
                if isinstance(child, Term):
                    leaves.setdefault(ids[child], child.text)
                    tids.append(ids[child])
                else:
                    rest.append(lower(child, ids, leaves))
            kind = AllOf if isinstance(node, And) else AnyOf
            return kind(tids=tuple(tids), children=tuple(rest))
        case Not(child=child):
            return NoneOf(child=lower(child, ids, leaves))
        case Near(left=left, right=right, distance=distance):
            leaves.setdefault(ids[left], left.text)
            leaves.setdefault(ids[right], right.text)
            return Close(left=ids[left], right=ids[right], distance=distance)
    raise AssertionError(node)


def evaluate(
    node: Lowered,
    hits: Mapping[int, Sequence[Occurrence]],
    why: list[Reason],
    word: Callable[[int], int],
) -> bool:
    """Whether the query is true, given the occurrences of each term id found (``word``: the
    index of the word at an offset, for NEAR); when true, ``why`` has gained what made it so."""
    match node:
        case AnyOf(tids=tids, children=children):
            true = False
            for tid in tids:
                if tid in hits:
                    why.append((tid, None))
                    true = True
            for child in children:
                true = evaluate(child, hits, why, word) or true  # every true branch explains
            return true
        case AllOf(tids=tids, children=children):
            if not all(tid in hits for tid in tids):
                return False
            mark = len(why)
            why += ((tid, None) for tid in tids)
            if all(evaluate(child, hits, why, word) for child in children):
                return True
            del why[mark:]
            return False
        case NoneOf(child=child):
            return not evaluate(child, hits, [], word)
        case Close():
            pairs = near_pairs(node, hits, word)
            for a, b in pairs:
                why += ((node.left, a), (node.right, b))
            return bool(pairs)
    raise AssertionError(node)


# An occurrence with the words it spans: (first word, last word, its index among its term's
# occurrences, the occurrence).
_Spanned = tuple[int, int, int, Occurrence]


def near_pairs(
    node: Close, hits: Mapping[int, Sequence[Occurrence]], word: Callable[[int], int]
) -> list[tuple[Occurrence, Occurrence]]:
    """For each text (a field of one of the item's texts) where the NEAR holds, its first
    pair: the first left occurrence with a right one near it, and the first such right one.
    The explanation needs no more (one detail per term and field), and a walk that stops
    there is linear in the occurrences, however many of them are near each other."""
    lefts, rights = hits.get(node.left), hits.get(node.right)
    if not lefts or not rights:
        return []
    by_text = _by_text(rights, word)
    found: list[tuple[int, Occurrence, Occurrence]] = []
    for text, group in _by_text(lefts, word).items():
        others = by_text.get(text)
        pair = _first_near(group, others, node.distance) if others else None
        if pair is not None:
            found.append(pair)
    found.sort(key=lambda pair: pair[0])
    return [(a, b) for _, a, b in found]


def _by_text(
    occurrences: Sequence[Occurrence], word: Callable[[int], int]
) -> dict[tuple[str, int], list[_Spanned]]:
    """The occurrences of each text, with the words they span, in text order."""
    groups: dict[tuple[str, int], list[_Spanned]] = {}
    for index, hit in enumerate(occurrences):
        groups.setdefault(hit[:2], []).append((word(hit[2]), word(hit[3] - 1), index, hit))
    for group in groups.values():
        group.sort()  # already in order, as the automaton found them: a linear check
    return groups


def _first_near(
    lefts: list[_Spanned], rights: list[_Spanned], distance: int
) -> tuple[int, Occurrence, Occurrence] | None:
    """The first left occurrence with a right one at most ``distance`` words away (0 or
    less when they overlap), the first such right one, and the left one's index; None if
    there is none. Two pointers: a right occurrence that ends too early for one left
    occurrence ends too early for every later one, so each is passed over once."""
    i = 0
    for first, last, index, hit in lefts:
        low, high = first - distance - 1, last + distance + 1
        while i < len(rights) and rights[i][1] < low:
            i += 1
        if i == len(rights):
            return None
        if rights[i][0] <= high:
            return index, hit, rights[i][3]
    return None
