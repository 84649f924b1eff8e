"""The configuration file's YAML (monitor/config_file.py): read within bounds, each refusal
with its line, never an exception or a run away in time and memory."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from monitor.config import load_settings
from monitor.config_file import ALIAS_BUDGET, MAX_BYTES, MAX_DEPTH, read_config
from monitor.errors import ConfigError


def refused(tmp_path: Path, text: str) -> str:
    path = tmp_path / "monitor.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        read_config(path)
    return str(info.value)


def read(tmp_path: Path, text: str) -> dict[str, object]:
    path = tmp_path / "monitor.yaml"
    path.write_text(text, encoding="utf-8")
    return read_config(path)


def alias_bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, levels + 1):
        lines.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    started = time.monotonic()
    message = refused(tmp_path, alias_bomb(8))
    assert time.monotonic() - started < 2
    assert (
        f"line 2, column 10: invalid YAML: aliases expand the document by more than {ALIAS_BUDGET}"
        in message
    )


def test_anchors_and_merge_keys_within_the_budget_still_work(tmp_path: Path) -> None:
    text = (
        "common: &common {interval: 5m, tags: [kz]}\n"
        "feeds:\n"
        "  - {<<: *common, url: 'https://e.org/a'}\n"
        "  - {<<: *common, url: 'https://e.org/b', interval: 1m}\n"
    )
    raw = read(tmp_path, text)
    assert raw["feeds"] == [
        {"interval": "5m", "tags": ["kz"], "url": "https://e.org/a"},
        {"interval": "1m", "tags": ["kz"], "url": "https://e.org/b"},
    ]


@pytest.mark.parametrize("depth", [MAX_DEPTH, 3000])
def test_nesting_deeper_than_the_limit_is_refused(tmp_path: Path, depth: int) -> None:
    message = refused(tmp_path, "a: " + "[" * depth + "]" * depth + "\n")
    assert f"nested deeper than {MAX_DEPTH} levels" in message and "line 1" in message


def test_nesting_at_the_limit_is_read(tmp_path: Path) -> None:
    depth = MAX_DEPTH - 1  # the top-level mapping is a level too
    assert read(tmp_path, "a: " + "[" * depth + "]" * depth + "\n")


@pytest.mark.parametrize(
    "text",
    ["a: &a [*a]\n", "a: &a [[[[[[[[[[[1]]]]]]]]]]]\nb: [[[[[[[[[[*a]]]]]]]]]]\n"],
)
def test_aliases_cannot_nest_past_the_limit(tmp_path: Path, text: str) -> None:
    assert "once aliases are expanded" in refused(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("database: a\ndatabase: b\n", "line 2, column 1: invalid YAML: duplicate key 'database'"),
        (
            "feeds:\n  - url: https://e.org/f\n    name: A\n    name: B\n",
            "line 4, column 5: invalid YAML: duplicate key 'name' (first at line 3)",
        ),
        ("a: {b: {c: 1, c: 2}}\n", "duplicate key 'c'"),
    ],
)
def test_duplicate_keys_are_refused_with_their_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert expected in refused(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 2024-02-30\n", "line 1, column 4: invalid YAML: cannot read this value"),
        ("a: " + "1" * 5000 + "\n", "cannot read this value: Exceeds the limit"),
        ("a: !!python/object:os.system x\n", "could not determine a constructor"),
        ("- a\n", "the top level must be a mapping"),
    ],
)
def test_values_yaml_cannot_construct_are_problems_not_exceptions(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = refused(tmp_path, text)
    assert expected in message and "set_int_max_str_digits" not in message


def test_a_file_beyond_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    with path.open("wb") as file:
        file.truncate(MAX_BYTES + 1)
    with pytest.raises(ConfigError, match="larger than"):
        load_settings(path, {})
