"""Tests of the query language (monitor/match/query.py): the tree each operator builds,
precedence, field scopes, the errors ``monitor check`` reports, ``terms:`` lists, and what
evaluating a query on the occurrences of its terms says made it true
(monitor/match/evaluate.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_match import CTX, make_item

from monitor.errors import QueryError
from monitor.match import Matcher
from monitor.match.evaluate import Occurrence, Reason, evaluate, lower
from monitor.match.query import (
    MAX_NESTING,
    And,
    Near,
    Node,
    Not,
    Or,
    Term,
    compile_query,
    terms_to_query,
)
from monitor.types import Watchlist


def show(node: Node) -> str:
    """A compact s-expression of a tree: words normalised, scope as ``field:``."""
    match node:
        case Term():
            words = " ".join(node.words)
            text = f'"{words}"' if len(node.words) > 1 or node.case_sensitive else words
            text = ("=" if node.case_sensitive else "") + text + ("*" if node.prefix else "")
            return f"{node.field}:{text}" if node.field else text
        case And(children=children):
            return "(AND " + " ".join(map(show, children)) + ")"
        case Or(children=children):
            return "(OR " + " ".join(map(show, children)) + ")"
        case Not(child=child):
            return f"(NOT {show(child)})"
        case Near(left=left, right=right, distance=distance):
            return f"(NEAR/{distance} {show(left)} {show(right)})"
    raise AssertionError(node)


@pytest.mark.parametrize(
    ("query", "tree"),
    [
        # the examples
        (
            'CSTO OR "Collective Security Treaty Organization" OR ОДКБ',
            '(OR csto "collective security treaty organization" одкб)',
        ),
        (
            'Kazakhstan AND (protest* OR unrest) NOT (football OR "World Cup")',
            '(AND kazakhstan (OR protest* unrest) (NOT (OR football "world cup")))',
        ),
        ("title:Tokayev", "title:tokayev"),
        ("Tokayev NEAR/5 CSTO", "(NEAR/5 tokayev csto)"),
        # every operator
        ("a AND b", "(AND a b)"),
        ("a b", "(AND a b)"),
        ("a OR b", "(OR a b)"),
        ("NOT a b", "(AND (NOT a) b)"),
        ("-a b", "(AND (NOT a) b)"),
        ("b -a", "(AND b (NOT a))"),
        ("a -(b OR c)", "(AND a (NOT (OR b c)))"),
        ('a -"b c"', '(AND a (NOT "b c"))'),
        ("(a OR b) c", "(AND (OR a b) c)"),
        ("protest*", "protest*"),
        ('"World Cup"', '"world cup"'),
        ('="US"', '="us"'),
        ("a NEAR/0 b", "(NEAR/0 a b)"),
        ('"a b" NEAR/3 cd*', '(NEAR/3 "a b" cd*)'),
        # precedence: OR < AND < NEAR < NOT
        ("a b OR c", "(OR (AND a b) c)"),
        ("a OR b c", "(OR a (AND b c))"),
        ("a NOT b OR c", "(OR (AND a (NOT b)) c)"),
        ("a NEAR/2 b c", "(AND (NEAR/2 a b) c)"),
        ("a OR (b OR c)", "(OR a b c)"),
        ("a AND (b AND c)", "(AND a b c)"),
        # operators are upper case; other words are words
        ("war and peace", "(AND war and peace)"),
        ("or not", "(AND or not)"),
        ("NEARBY", "nearby"),
        # bare words with punctuation are phrases
        ("Kazakh-based", '"kazakh based"'),
        ("U.S.", '"u s"'),
        # field scopes
        ('title:"Collective Security"', 'title:"collective security"'),
        ("TITLE:x", "title:x"),
        ("title:(a OR b)", "(OR title:a title:b)"),
        ("title:(a -b)", "(AND title:a (NOT title:b))"),
        ("author:Smith category:Politics", "(AND author:smith category:politics)"),
        ("link:example feed:tass", "(AND link:example feed:tass)"),
        ("content:a NEAR/1 summary:b", "(NEAR/1 content:a summary:b)"),
        ("-title:x y", "(AND (NOT title:x) y)"),
        # escapes inside quotes
        ('"say \\"hi\\""', '"say hi"'),
    ],
)
def test_query_tree(query: str, tree: str) -> None:
    assert show(compile_query(query).root) == tree


def test_term_keeps_what_was_written() -> None:
    root = compile_query('protest* OR "World Cup" OR ="US" OR ОДКБ').root
    assert isinstance(root, Or)
    terms = [c for c in root.children if isinstance(c, Term)]
    assert [t.text for t in terms] == ["protest*", "World Cup", "US", "ОДКБ"]
    assert terms[3].written == ("ОДКБ",)  # for acronym detection
    assert [t.position for t in terms] == [0, 12, 27, 36]


@pytest.mark.parametrize(
    ("query", "position", "reason"),
    [
        ("", 0, "empty query"),
        ("   ", 3, "empty query"),
        ("a OR", 4, "expected a term after OR"),
        ("a AND AND b", 6, "expected a term after AND"),
        ("OR a", 0, "expected a term before OR"),
        ("(a", 0, "'(' is never closed"),
        ("a (b OR (c)", 2, "'(' is never closed"),
        ("a)", 1, "')' without a matching '('"),
        ("()", 1, "empty parentheses"),
        ('"abc', 0, "unterminated quoted phrase"),
        ('a ="US', 2, "unterminated quoted phrase"),
        ("a NEAR/ b", 2, "write NEAR/n"),
        ("a NEAR b", 2, "write NEAR/n"),
        ("a NEAR/x b", 2, "write NEAR/n"),
        ("a NEAR/2 (b OR c)", 2, "NEAR/n joins two terms"),
        ("a NEAR/2 b NEAR/2 c", 11, "NEAR/n joins two terms"),
        ("titel:x", 0, "unknown field 'titel:'"),
        ("title: x", 0, "'title:' must be directly followed by a term"),
        ("title:-x", 6, "'title:' must be followed by a term"),
        ("title:(author:x)", 7, "field scopes cannot be nested"),
        ("a*b", 1, "'*' is only allowed at the end of a word"),
        ("x*", 0, "a prefix needs at least 2 letters"),
        ("=US", 0, "'=' must be followed by a quoted term"),
        ("a - b", 2, "'-' must be directly followed by a term"),
        ("!!!", 0, "'!!!' has no letters or digits"),
        ('a ""', 2, "has no letters or digits"),
        # a query needs a term that must occur
        ("-football", 0, "the query can match without any of its terms"),
        ("NOT football", 0, "the query can match without any of its terms"),
        ("a OR -b", 0, "the query can match without any of its terms"),
    ],
)
def test_malformed_query_reports_position_and_reason(
    query: str, position: int, reason: str
) -> None:
    with pytest.raises(QueryError) as caught:
        compile_query(query)
    assert caught.value.position == position
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"at position {position}: ")


@pytest.mark.parametrize("query", ["a -b", "a AND NOT b", "(a OR b) -c", "a NEAR/1 b -c"])
def test_negation_with_a_positive_term_is_accepted(query: str) -> None:
    compile_query(query)


DEEP = 3000


@pytest.mark.parametrize(
    ("query", "position"),
    [
        ("(" * DEEP + "a" + ")" * DEEP, MAX_NESTING),
        ("b " + "NOT " * DEEP + "a", 2 + 4 * MAX_NESTING),
        ("b " + "-" * DEEP + "a", 2 + MAX_NESTING),
        ("b " + "(NOT " * DEEP + "a" + ")" * DEEP, 2 + 5 * (MAX_NESTING // 2)),
        ("title:" + "(" * DEEP + "a" + ")" * DEEP, 6 + MAX_NESTING),
    ],
    ids=["parentheses", "NOT", "minus", "both", "scoped"],
)
def test_nesting_beyond_the_limit_is_refused_where_it_passes_it(query: str, position: int) -> None:
    with pytest.raises(QueryError) as caught:
        compile_query(query)
    assert caught.value.position == position
    assert "nested too deeply" in caught.value.reason
    with pytest.raises(QueryError, match="nested too deeply"):
        Matcher([Watchlist(name="w", query=query)])


def test_nesting_up_to_the_limit_is_parsed_and_evaluated() -> None:
    query = "(" * (MAX_NESTING - 1) + "b NOT a" + ")" * (MAX_NESTING - 1)
    compile_query(query)
    found = Matcher([Watchlist(name="w", query=query)]).match_item(make_item(title="b"), CTX)
    assert [m.watchlist for m in found] == ["w"]


def test_terms_list_is_an_or_of_literal_terms() -> None:
    terms = ['The "Club"', "back\\slash", "protest*", "OR", "title:x"]
    root = compile_query(terms_to_query(terms)).root
    assert isinstance(root, Or)
    assert [c.text for c in root.children if isinstance(c, Term)] == terms
    assert all(isinstance(c, Term) and not c.prefix and c.field is None for c in root.children)


WORDISH = st.text(alphabet=st.sampled_from('ab Яё"\\*:()-=OR'), min_size=1, max_size=12)


@given(st.lists(WORDISH.filter(lambda t: any(c in t for c in "abЯё")), min_size=1, max_size=4))
def test_any_terms_list_round_trips(terms: list[str]) -> None:
    root = compile_query(terms_to_query(terms)).root
    children = root.children if isinstance(root, Or) else (root,)
    assert [c.text for c in children if isinstance(c, Term)] == terms


TERMS = st.sampled_from(["a", "bb*", '"c d"', '="E"', "title:f", 'summary:"g h"', "ёж"])


@st.composite
def queries(draw: st.DrawFn, depth: int = 0) -> str:
    """Random well-formed query text, each compound part in parentheses."""
    if depth > 2 or draw(st.booleans()):
        return draw(TERMS)
    kind = draw(st.sampled_from(["AND", "OR", "NOT", "-", "NEAR", "adjacent"]))
    if kind == "NEAR":
        return f"{draw(TERMS)} NEAR/{draw(st.integers(0, 9))} {draw(TERMS)}"
    if kind in ("NOT", "-"):
        return f"{draw(TERMS)} {kind}{' ' if kind == 'NOT' else ''}({draw(queries(depth + 1))})"
    joiner = " " if kind == "adjacent" else f" {kind} "
    parts = draw(st.lists(queries(depth + 1), min_size=2, max_size=3))
    return joiner.join(f"({p})" for p in parts)


@given(queries())
def test_parse_is_stable_under_reprinting(query: str) -> None:
    """Printing a parsed tree back as a query and parsing it again gives the same tree."""
    tree = compile_query(query).root
    assert show(compile_query(reprint(tree)).root) == show(tree)


def reprint(node: Node) -> str:
    match node:
        case Term():
            body = node.text if not (node.case_sensitive or " " in node.text) else f'"{node.text}"'
            body = ("=" if node.case_sensitive else "") + body
            return f"{node.field}:{body}" if node.field else body
        case And(children=children):
            return " AND ".join(f"({reprint(c)})" for c in children)
        case Or(children=children):
            return " OR ".join(f"({reprint(c)})" for c in children)
        case Not(child=child):
            return f"NOT ({reprint(child)})"
        case Near(left=left, right=right, distance=distance):
            return f"{reprint(left)} NEAR/{distance} {reprint(right)}"
    raise AssertionError(node)


# --- Evaluation -----------------------------------------------------------------------------


def evaluated(query: str, found: dict[str, list[Occurrence]]) -> list[tuple[str, int | None]]:
    """The reasons a query is true (empty: false), given occurrences per written term; a
    reason names the term and, for a side of a NEAR, the start of the occurrence."""
    terms = [term for term, _ in compile_query(query).terms()]
    ids = {term: n for n, term in enumerate(dict.fromkeys(terms))}
    leaves: dict[int, str] = {}
    root = lower(compile_query(query).root, ids, leaves)
    hits = {ids[t]: found[t.text] for t in ids if t.text in found}
    why: list[Reason] = []
    if not evaluate(root, hits, why, word=lambda offset: offset // 10):  # 10 characters a word
        return []
    return [(leaves[tid], None if hit is None else hit[2]) for tid, hit in why]


def at(start: int, field: str = "title", text: int = 0) -> Occurrence:
    return (field, text, start, start + 5)


@pytest.mark.parametrize(
    ("query", "found", "expected"),
    [
        ("a OR b OR c", {"a": [at(0)], "c": [at(10)]}, [("a", None), ("c", None)]),
        ("a AND b", {"a": [at(0)]}, []),
        ("(b OR c) AND a", {"a": [at(0)], "c": [at(10)]}, [("a", None), ("c", None)]),
        ("a -b", {"a": [at(0)], "b": [at(10)]}, []),
        ("a -(b c)", {"a": [at(0)], "b": [at(10)]}, [("a", None)]),
        ("a OR (b -c)", {"a": [at(0)], "b": [at(10)], "c": [at(20)]}, [("a", None)]),
        ("a NEAR/1 b", {"a": [at(0), at(50)], "b": [at(20)]}, [("a", 0), ("b", 20)]),
        ("a NEAR/0 b", {"a": [at(0)], "b": [at(20)]}, []),
        ("a NEAR/5 b", {"a": [at(0)], "b": [at(10, "summary")]}, []),  # another field
        ("a NEAR/5 b", {"a": [at(0)], "b": [at(10, text=1)]}, []),  # another category
    ],
)
def test_evaluate_says_what_made_the_query_true(
    query: str, found: dict[str, list[Occurrence]], expected: list[tuple[str, int | None]]
) -> None:
    assert evaluated(query, found) == expected
