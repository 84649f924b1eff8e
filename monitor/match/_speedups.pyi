"""The C hot path of matching (monitor/match/_speedups.c): its types and signatures."""

from collections.abc import Callable
from typing import Any, final

@final
class Folded(tuple[str, bool, bool]):
    """Text folded for matching, and what the folding did to it."""

    def __new__(cls, sequence: tuple[str, bool, bool]) -> Folded: ...
    @property
    def text(self) -> str:
        """The folded text."""
    @property
    def offsets_kept(self) -> bool:
        """Every character became exactly one: offsets are the original's."""
    @property
    def mixed_scripts(self) -> bool:
        """A Latin and a Cyrillic letter may be adjacent: look-alikes may need repair."""

def set_tables(table: bytes, pool: bytes, /) -> None: ...
def fold(text: str, /) -> Folded | None: ...
def fold_ascii(text: str, /) -> Folded: ...
def set_joiners(bitmap: bytes, /) -> None: ...
def collect(
    found: list[tuple[int, int, int]],
    text: str,
    starts: list[int],
    slots: list[Any],
    check_left: bytes,
    words: Callable[[Any, int, Any], tuple[int, int] | None],
    norm: Any,
    /,
) -> dict[int, list[tuple[str, int, int, int]]]: ...
def snippet(original: str, start: int, end: int, width: int, first: int, last: int, /) -> str: ...
