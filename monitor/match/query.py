"""The watchlist query language (the grammar is in :mod:`monitor.match`): text -> syntax tree.

Input: a query string. Output: a :class:`Query` whose leaves are :class:`Term` values with
their words already normalised, or a :class:`~monitor.errors.QueryError` with the 0-based
position and the reason (:func:`compile_query`); the query of a ``terms:`` list
(:func:`terms_to_query`). This module does not decide inflection (that depends on the
watchlist's language and happens when a :class:`~monitor.match.Matcher` is built), does not
look for terms in text and does not say whether a query is true
(:mod:`monitor.match.evaluate`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Final

from monitor.errors import QueryError
from monitor.match.fold import cased, normalize
from monitor.match.words import tokenize
from monitor.types import frozen

FIELDS: Final = ("title", "summary", "content", "author", "category", "link", "feed")
DEFAULT_FIELDS: Final = frozenset({"title", "summary", "content"})
_FIELD_PREFIX = re.compile(r"([A-Za-z]+):")
_NEAR = re.compile(r"NEAR/(\d+)")
_ENDS_WORD = frozenset(' \t\r\n()"')
# How many parentheses and NOTs may enclose a term. The parser and every walk of the tree
# recurse once per level; no sensible query comes near this, and the limit keeps a hostile
# or generated one from exhausting the stack.
MAX_NESTING: Final = 50


@frozen
class Term:
    """A word, a phrase or a prefix. ``words`` are normalised; ``written`` are as typed."""

    text: str  # as written in the query (quotes removed), shown in match explanations
    words: tuple[str, ...]
    written: tuple[str, ...]
    prefix: bool = False
    case_sensitive: bool = False
    field: str | None = None
    position: int = 0


@frozen
class And:
    children: tuple[Node, ...]


@frozen
class Or:
    children: tuple[Node, ...]


@frozen
class Not:
    child: Node


@frozen
class Near:
    """Both terms in the same field with at most ``distance`` words between them."""

    left: Term
    right: Term
    distance: int


Node = Term | And | Or | Not | Near


@frozen
class Query:
    text: str
    root: Node

    def terms(self) -> Iterator[tuple[Term, bool]]:
        """Every term with whether it is positive (not under a NOT)."""
        return _walk(self.root, True)


def _walk(node: Node, positive: bool) -> Iterator[tuple[Term, bool]]:
    match node:
        case Term():
            yield node, positive
        case And(children=children) | Or(children=children):
            for child in children:
                yield from _walk(child, positive)
        case Not(child=child):
            yield from _walk(child, not positive)
        case Near(left=left, right=right):
            yield left, positive
            yield right, positive


def terms_to_query(terms: Sequence[str]) -> str:
    """The query for a ``terms:`` list: an OR of the terms, each quoted (so taken literally)."""
    quoted = ('"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"' for t in terms)
    return " OR ".join(quoted)


@frozen
class _Token:
    kind: str  # word, phrase, field, (, ), AND, OR, NOT, NEAR, end
    text: str
    position: int
    number: int = 0  # NEAR distance
    flag: bool = False  # word: prefix; phrase: case-sensitive


def _lex(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(query):
        c = query[i]
        if c.isspace():
            i += 1
        elif c in "()":
            tokens.append(_Token(kind=c, text=c, position=i))
            i += 1
        elif c == '"' or query.startswith('="', i):
            token, i = _lex_phrase(query, i)
            tokens.append(token)
        elif c == "-":
            if i + 1 == len(query) or query[i + 1] in _ENDS_WORD - {'"', "("}:
                raise QueryError(query, i, "'-' must be directly followed by a term")
            tokens.append(_Token(kind="NOT", text="-", position=i))
            i += 1
        else:
            token, i = _lex_word(query, i)
            tokens.append(token)
    tokens.append(_Token(kind="end", text="end of query", position=len(query)))
    return tokens


def _lex_phrase(query: str, start: int) -> tuple[_Token, int]:
    sensitive = query[start] == "="
    i = start + 1 + sensitive
    chars: list[str] = []
    while i < len(query) and query[i] != '"':
        if query[i] == "\\" and i + 1 < len(query):
            i += 1
        chars.append(query[i])
        i += 1
    if i == len(query):
        raise QueryError(query, start, "unterminated quoted phrase (missing '\"')")
    return _Token(kind="phrase", text="".join(chars), position=start, flag=sensitive), i + 1


def _lex_word(query: str, start: int) -> tuple[_Token, int]:
    end = start
    while end < len(query) and query[end] not in _ENDS_WORD:
        end += 1
    word = query[start:end]
    if word in ("AND", "OR", "NOT"):
        return _Token(kind=word, text=word, position=start), end
    if word == "NEAR" or word.startswith("NEAR/"):
        near = _NEAR.fullmatch(word)
        if near is None:
            raise QueryError(query, start, "write NEAR/n, n being the most words between terms")
        return _Token(kind="NEAR", text=word, position=start, number=int(near[1])), end
    field = _FIELD_PREFIX.match(word)
    if field is not None:
        name = field[1].lower()
        if name not in FIELDS:
            known = ", ".join(FIELDS)
            raise QueryError(query, start, f"unknown field '{field[1]}:' (known: {known})")
        after = start + field.end()
        if after == len(query) or query[after] in " \t\r\n)":
            raise QueryError(query, start, f"'{name}:' must be directly followed by a term")
        return _Token(kind="field", text=name, position=start), after
    if word.startswith("="):
        raise QueryError(query, start, "'=' must be followed by a quoted term, as in =\"US\"")
    star = word.find("*")
    if star >= 0 and star != len(word) - 1:
        raise QueryError(query, start + star, "'*' is only allowed at the end of a word")
    return _Token(kind="word", text=word, position=start, flag=star >= 0), end


_STARTS_OPERAND = frozenset({"word", "phrase", "field", "(", "NOT"})


class _Parser:
    """Recursive descent; precedence from loose to tight: OR, AND (or adjacency), NEAR, NOT."""

    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = _lex(query)
        self.index = 0
        self.depth = 0  # parentheses and NOTs open around the current token

    def error(self, token: _Token, reason: str) -> QueryError:
        return QueryError(self.query, token.position, reason)

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        self.index += 1
        return self.tokens[self.index - 1]

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.error(self.peek(), "empty query")
        node = self.parse_or()
        if self.peek().kind == ")":
            raise self.error(self.peek(), "')' without a matching '('")
        if self.peek().kind != "end":
            raise self.error(self.peek(), f"unexpected '{self.peek().text}'")
        return node

    def operand(self, after: _Token) -> None:
        if self.peek().kind not in _STARTS_OPERAND:
            raise self.error(self.peek(), f"expected a term after {after.text}")

    def parse_or(self) -> Node:
        parts = [self.parse_and()]
        while self.peek().kind == "OR":
            self.operand(self.take())
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else Or(children=_flat(Or, parts))

    def parse_and(self) -> Node:
        parts = [self.parse_near()]
        while True:
            if self.peek().kind == "AND":
                self.operand(self.take())
            elif self.peek().kind not in _STARTS_OPERAND:
                break
            parts.append(self.parse_near())
        return parts[0] if len(parts) == 1 else And(children=_flat(And, parts))

    def parse_near(self) -> Node:
        left = self.parse_unary()
        while self.peek().kind == "NEAR":
            near = self.take()
            self.operand(near)
            right = self.parse_unary()
            if not isinstance(left, Term) or not isinstance(right, Term):
                raise self.error(near, "NEAR/n joins two terms (words, phrases or prefixes)")
            left = Near(left=left, right=right, distance=near.number)
        return left

    def nest(self, token: _Token) -> None:
        """One more level opened at ``token``; refused past :data:`MAX_NESTING`."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            limit = f"more than {MAX_NESTING} parentheses and NOTs around a term"
            raise self.error(token, f"nested too deeply ({limit})")

    def parse_unary(self) -> Node:
        if self.peek().kind == "NOT":
            token = self.take()
            self.operand(token)
            self.nest(token)
            child = self.parse_unary()
            self.depth -= 1
            return Not(child=child)
        return self.parse_primary()

    def parse_primary(self) -> Node:
        token = self.take()
        if token.kind in ("word", "phrase"):
            return self.term(token)
        if token.kind == "field":
            if self.peek().kind not in ("word", "phrase", "("):
                raise self.error(self.peek(), f"'{token.text}:' must be followed by a term")
            return self.scope(self.parse_primary(), token)
        if token.kind == "(":
            if self.peek().kind == ")":
                raise self.error(self.peek(), "empty parentheses")
            self.nest(token)
            node = self.parse_or()
            if self.peek().kind != ")":
                raise self.error(token, "'(' is never closed")
            self.take()
            self.depth -= 1
            return node
        if token.kind == ")":
            raise self.error(token, "')' without a matching '('")
        raise self.error(token, f"expected a term before {token.text}")

    def term(self, token: _Token) -> Term:
        text = token.text[:-1] if token.kind == "word" and token.flag else token.text
        words = tuple(tokenize(normalize(text)))
        if not words:
            raise self.error(token, f"'{token.text}' has no letters or digits")
        written = tuple(tokenize(cased(text)))
        if len(written) != len(words):
            written = words  # folding split or merged a word: no acronym detection
        if token.kind == "word" and token.flag and len(words[-1]) < 2:
            raise self.error(token, "a prefix needs at least 2 letters before '*'")
        return Term(
            text=token.text,
            words=words,
            written=written,
            prefix=token.kind == "word" and token.flag,
            case_sensitive=token.kind == "phrase" and token.flag,
            position=token.position,
        )

    def scope(self, node: Node, field: _Token) -> Node:
        match node:
            case Term():
                if node.field is not None:
                    raise QueryError(self.query, node.position, "field scopes cannot be nested")
                return replace(node, field=field.text, position=field.position)
            case And(children=children):
                return And(children=tuple(self.scope(c, field) for c in children))
            case Or(children=children):
                return Or(children=tuple(self.scope(c, field) for c in children))
            case Not(child=child):
                return Not(child=self.scope(child, field))
            case Near(left=left, right=right, distance=distance):
                left, right = self.scope(left, field), self.scope(right, field)
                assert isinstance(left, Term) and isinstance(right, Term)
                return Near(left=left, right=right, distance=distance)
        raise AssertionError(node)


def _flat(kind: type[And] | type[Or], parts: list[Node]) -> tuple[Node, ...]:
    """``a OR (b OR c)`` as one OR of three."""
    out: list[Node] = []
    for part in parts:
        out.extend(part.children if isinstance(part, kind) else (part,))
    return tuple(out)


def needs_hit(node: Node) -> bool:
    """Whether the node can be true only if one of its positive terms occurs in the item."""
    match node:
        case Term() | Near():
            return True
        case And(children=children):
            return any(needs_hit(c) for c in children)
        case Or(children=children):
            return all(needs_hit(c) for c in children)
    return False


def compile_query(query: str) -> Query:
    """Parse a query; raise QueryError(query, position, reason) when it is malformed."""
    root = _Parser(query).parse()
    if not needs_hit(root):
        raise QueryError(
            query, 0, "the query can match without any of its terms: add a term that must occur"
        )
    return Query(text=query, root=root)
