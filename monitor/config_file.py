"""The configuration file as plain data: YAML read within bounds, ``${VAR}`` substituted.

Input: the file's path and the environment. Output: the tree of mappings, lists and scalars
that ``monitor.config`` validates, and the values taken from the environment, so that no
message quotes them (``redact``). Refused while the document is composed, before anything is
expanded: nesting deeper than MAX_DEPTH collections (aliases counted where they are used),
aliases that would add more than ALIAS_BUDGET nodes (a "billion laughs" document is a few
lines that expand to millions), and a key given twice in one mapping (YAML would keep the
last one silently). A value the YAML library cannot construct (``2024-02-30``, an integer of
thousands of digits) is an error with its line, not an exception.

Does not validate fields or know what any key means: ``monitor.config`` does.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import CollectionNode, MappingNode, Node

from monitor.errors import ConfigError

MAX_BYTES = 16 * 1024 * 1024  # many thousand feeds fit in a fraction of this
MAX_DEPTH = 20  # the configuration itself nests five deep at most
ALIAS_BUDGET = 10_000  # nodes that aliases may add: merge keys and shared lists fit easily
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TOO_DEEP_EXPANDED = f"nested deeper than {MAX_DEPTH} levels once aliases are expanded"
_ENV_REF = re.compile(r"\$(\$?)\{([^}]*)\}")
# An environment value shorter than this is no secret, and hiding it would garble
# messages ("line 5" when the value is "5").
_SHORTEST_HIDDEN = 4


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with the checks above, made while composing (the composed
    graph is as small as the text: aliases point at shared nodes until construction)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._first_alias: yaml.Mark | None = None

    def compose_node(self, parent: Node | None, index: object) -> Node:
        if self.check_event(yaml.AliasEvent):
            self._first_alias = self._first_alias or self.peek_event().start_mark
            return super().compose_node(parent, index)
        collection = int(self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent))
        if collection and self._depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
        self._depth += collection
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= collection

    def compose_document(self) -> Node:
        root = super().compose_document()
        if self._first_alias is not None:
            sizes: dict[int, tuple[int, int]] = {}
            expanded, _ = _measure(root, 0, sizes)
            if expanded - len(sizes) > ALIAS_BUDGET:
                problem = f"aliases expand the document by more than {ALIAS_BUDGET} values"
                raise ComposerError(None, None, problem, self._first_alias)
        return root

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        first_line: dict[Hashable, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue  # keys merged in with << may be overridden: that is what it is for
            key = self.construct_object(key_node, deep=True)
            try:
                line = first_line.get(key)
            except TypeError:
                continue  # an unhashable key: the constructor refuses it itself
            if line is not None:
                problem = f"duplicate key {key!r} (first at line {line})"
                raise ConstructorError(None, None, problem, key_node.start_mark)
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            # Python's own advice ("use sys.set_int_max_str_digits()") is not the user's.
            problem = f"cannot read this value: {str(exc).partition(';')[0]}"
            raise ConstructorError(None, None, problem, node.start_mark) from None


def _measure(node: Node, depth: int, sizes: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """(values once aliases are expanded, collection levels) of ``node`` at ``depth``;
    ``sizes`` memoises each distinct node, so the walk is as long as the text, not as the
    expansion. A recursive alias is refused by the depth bound."""
    known = sizes.get(id(node))
    if known is None:
        if not isinstance(node, CollectionNode):
            known = (1, 0)
        else:
            if depth >= MAX_DEPTH:
                raise ComposerError(None, None, _TOO_DEEP_EXPANDED, node.start_mark)
            if isinstance(node, MappingNode):
                children = [child for pair in node.value for child in pair]
            else:
                children = list(node.value)
            measured = [_measure(child, depth + 1, sizes) for child in children]
            known = (1 + sum(s for s, _ in measured), 1 + max((h for _, h in measured), default=0))
        sizes[id(node)] = known
    if depth + known[1] > MAX_DEPTH:
        raise ComposerError(None, None, _TOO_DEEP_EXPANDED, node.start_mark)
    return known


def read_config(path: Path | str) -> dict[str, Any]:
    """The file's top-level mapping; ConfigError (naming the line) for anything else."""
    source = str(path)
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise ConfigError(source, [f"the file is larger than {MAX_BYTES // 2**20} MiB"])
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(source, ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, [f"cannot read file: {exc}"]) from None
    try:
        raw = yaml.load(text, Loader=_BoundedLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"{where}invalid YAML: {problem}"]) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(source, ["the top level must be a mapping of keys (database, feeds ...)"])
    return raw


class Substitution:
    """``${VAR}`` replaced in every string of a tree, remembering what came from where."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.missing: list[str] = []
        self._used: dict[str, str] = {}  # value -> the variable it came from

    def apply(self, node: Any, loc: tuple[str | int, ...] = ()) -> Any:
        if isinstance(node, dict):
            return {k: self.apply(v, (*loc, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [self.apply(v, (*loc, i)) for i, v in enumerate(node)]
        if not isinstance(node, str):
            return node

        def replace(match: re.Match[str]) -> str:
            if match.group(1):  # $${ is an escaped literal ${
                return "${" + match.group(2) + "}"
            name = match.group(2)
            if name not in self._env:
                self.missing.append(f"{field_path(loc)}: environment variable {name} is not set")
                return ""
            return self.variable(name)

        return _ENV_REF.sub(replace, node)

    def variable(self, name: str) -> str:
        """The value of ``name``, remembered so that messages never quote it."""
        value = self._env[name]
        if len(value) >= _SHORTEST_HIDDEN:
            self._used.setdefault(value, name)
        return value

    def redact(self, message: str) -> str:
        """``message`` with each value taken from the environment written back as the
        ``${VAR}`` it came from: the environment is where secrets are kept."""
        for value in sorted(self._used, key=len, reverse=True):
            hidden = "${" + self._used[value] + "}"
            message = message.replace(value, hidden)
            message = message.replace(repr(value)[1:-1], hidden)
        return message


def field_path(loc: tuple[str | int, ...]) -> str:
    """``("feeds", 0, "url")`` as ``feeds[0].url``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
