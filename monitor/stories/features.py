"""What of an item decides which story it belongs to: its canonical link, its normalised
title, the tokens the similarity compares and the index keys that find its candidates.

Input: an item's title, summary (plain text) and link, as a feed gave them: hostile, so the
text is cut (:data:`TITLE_LIMIT`, :data:`SUMMARY_LIMIT`) and nothing here raises on odd text.
Output: a :class:`StoryFeatures`, and its compact text form for a database column
(:func:`dump_features`, :func:`load_features`). It does not compare features
(:mod:`monitor.stories.similar`), does not look anything up and touches neither network nor
database.

Tokens are strings, their kind told by the first character (:mod:`monitor.stories.tokens`
reads them from the text, :mod:`monitor.stories.weights` weighs them):

- a word: its stem (:func:`~monitor.stories.lexicon.stem`), stop words dropped, a name
  news writes several ways as one (:mod:`monitor.stories.aliases`: "Fed" for "Federal
  Reserve", "CSTO" for "ОДКБ"), an irregular form or a word for the same act as the word
  (:mod:`monitor.stories.synonyms`: "fled" for "flee", "pullout" for "withdrawal"); a common
  news word, a place or person in the news every day, a given name: ``_`` and its stem,
  which count little;
- a number: ``#`` and the number (``1,455`` = ``1 455`` = ``1455``, ``$6 million`` = ``6m``,
  ``third`` = ``3rd`` = 3, a share in percent: ``0.75%`` = ``75 basis points``); a year or
  a count up to 12 is weak, ``%`` in place of ``#``;
- marks: ``^`` and a stem that is a name in this item (capitalised inside a sentence); ``'``
  and a stem of the headline (only when there is a summary too); ``+a+b``: two capitalised
  words side by side, one name ("Nawaz Sharif"); ``~`` and the consonant skeleton of a
  capitalised word, which English and Russian reports of one event share (``Tokayev`` =
  ``Токаев``); ``@l``, ``@c`` or ``@o``: the item's script (Latin, Cyrillic, other);
  ``=a`` and ``=h``: the item's total weights; ``&word=number``: a number of the headline
  and a word right beside it ("drill 2"), and ``&`` alone when there is one; ``!e`` or
  ``!r``: the headline is an explainer or opinion, or a roundup
  (:mod:`monitor.stories.genre`); ``!c``: the headline's case tells no name (title case,
  capitals).

At most :data:`MAX_WORD_TOKENS` words and numbers are kept, the telling ones (uncommon words,
strong numbers) first, the headline's before the summary's, and among those in the order of
their hashes: two items pick the same tokens from what they share.

Keys: one for the link, one for the title, and the pairs of the item's
:data:`WORD_KEYS` first tokens and of its :data:`NAME_KEYS` first skeletons and numbers (23
at most): two reports of one story share two such tokens, and a pair is rare enough that
its index entry stays short even for a name in every other item.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from functools import lru_cache
from itertools import combinations
from typing import Final

from monitor.match.fold import normalize
from monitor.stories.genre import genre
from monitor.stories.lexicon import STOP_WORDS, WORDS_KEPT
from monitor.stories.links import MAX_LINK_LENGTH, canonical_link
from monitor.stories.tokens import Word, case_blind, read_numbered, read_words
from monitor.stories.weights import masses, total_tokens
from monitor.types import frozen

TITLE_LIMIT: Final = 500
SUMMARY_LIMIT: Final = 1000  # the lede: a long text's tail adds cost, not the story
MAX_TITLE_CHARS: Final = 300
MIN_TITLE_WORDS: Final = 4
MAX_WORD_TOKENS: Final = 32
MAX_NAME_TOKENS: Final = 12
MAX_PAIR_TOKENS: Final = 12
MAX_NUMBERED: Final = 8
CASE_BLIND: Final = "!c"  # the headline's case tells no name
WORD_KEYS: Final = 6  # tokens whose pairs are keys: 15 keys
NAME_KEYS: Final = 4  # skeletons and numbers whose pairs are keys: 6 keys
MAX_DUMP: Final = 2000


@frozen
class StoryFeatures:
    """What :func:`~monitor.stories.similar.same_story` compares and the store indexes."""

    link: str | None
    title: str | None
    tokens: frozenset[str]
    keys: tuple[int, ...]


EMPTY: Final = StoryFeatures(link=None, title=None, tokens=frozenset(), keys=())


def story_features(*, title: str, summary: str, link: str | None) -> StoryFeatures:
    """The features of one item. A title is kept for equality only when it has at least
    :data:`MIN_TITLE_WORDS` words, two of them not stop words."""
    title = _clean(title, TITLE_LIMIT)
    summary = _clean(summary, SUMMARY_LIMIT)
    headline = strip_outlet(title)
    canonical = canonical_link(link)
    normal = normalize_title(headline)
    title_tokens = read_words(headline)
    summary_tokens = read_words(summary, summary=True)
    words = _select(title_tokens, summary_tokens)
    named = {w.token for w in (*title_tokens, *summary_tokens) if w.name}
    marks = ["^" + t for t in words if t in named]
    in_title = {w.token for w in title_tokens}
    heads = ["'" + t for t in words if t in in_title] if summary_tokens else []
    names = _select_names(title_tokens, summary_tokens)
    kept = set(words)
    pairs = [
        w.pair
        for w in (*title_tokens, *summary_tokens)
        if w.pair is not None and all(part in kept for part in w.pair[1:].split("+"))
    ]
    pairs = list(dict.fromkeys(pairs))[:MAX_PAIR_TOKENS]
    numbered = read_numbered(headline)[:MAX_NUMBERED]
    kind = genre(headline)
    tokens = frozenset(
        [*words, *marks, *heads, *names, *pairs, *numbered, _script(headline or summary)]
        + (["&"] if numbered else [])
        + ([kind] if kind else [])
        + ([CASE_BLIND] if case_blind(headline) else [])
    )
    tokens |= frozenset(total_tokens(*masses(tokens)))
    keys: list[int] = []
    if canonical is not None:
        keys.append(hash64(f"l\0{canonical}"))
    if normal is not None:
        keys.append(hash64(f"t\0{normal}"))
    keys += _pair_keys(words[:WORD_KEYS])
    keys += _pair_keys(names[:NAME_KEYS])
    return StoryFeatures(
        link=canonical, title=normal, tokens=tokens, keys=tuple(dict.fromkeys(keys))
    )


def hash64(text: str) -> int:
    """A stable signed 64-bit hash (a SQL BIGINT), the same in every process."""
    digest = hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _clean(text: object, limit: int) -> str:
    if not isinstance(text, str):
        return ""
    return text[:limit]


# A trailing " - Outlet" / " | Outlet": at most five words, each capitalised or a number, or
# a domain name ("nejm.org"), after a headline of at least four words.
_OUTLET = re.compile(r"^(?P<head>.*\S)\s+[-|–—]\s+(?P<outlet>[^-|–—]{1,40})$", re.DOTALL)
_DOMAIN = re.compile(r"^[\w.-]+\.[a-z]{2,}$")


def strip_outlet(title: str) -> str:
    """``title`` without up to two trailing outlet names (``... - CNN``, ``... | NEJM -
    nejm.org``)."""
    for _ in range(2):
        found = _OUTLET.match(title.strip())
        if found is None or not _looks_like_outlet(found["outlet"].strip()):
            break
        head = found["head"]
        if len(head.split()) < MIN_TITLE_WORDS:
            break
        title = head
    return title


def _looks_like_outlet(outlet: str) -> bool:
    if _DOMAIN.match(outlet):
        return True
    words = outlet.split()
    return 0 < len(words) <= 5 and all(w[0].isupper() or w[0].isdigit() for w in words)


_NOT_WORD = re.compile(r"[\W_]+")


def normalize_title(title: str) -> str | None:
    """Folded, punctuation and whitespace collapsed; None when too short to name a story."""
    text = _NOT_WORD.sub(" ", normalize(title)).strip()
    words = text.split()
    content = [w for w in words if w not in STOP_WORDS]
    if len(words) < MIN_TITLE_WORDS or len(content) < 2:
        return None
    return text[:MAX_TITLE_CHARS].strip()


def _strength(token: str) -> int:
    """0 for the telling tokens (stems of uncommon words, numbers), 1 for the rest."""
    return 1 if token[0] in "_%" else 0


def _select(title: list[Word], summary: list[Word]) -> list[str]:
    """At most :data:`MAX_WORD_TOKENS` distinct tokens, the most telling first: the title's
    before the summary's, and among each, in the order of their hashes (so two items pick
    the same ones from what they share)."""
    ranked: dict[str, tuple[int, int, int]] = {}
    for part, words in enumerate((title, summary)):
        for word in words:
            if word.token not in ranked:
                ranked[word.token] = (_strength(word.token), part, _order(word.token))
    return sorted(ranked, key=ranked.__getitem__)[:MAX_WORD_TOKENS]


def _select_names(title: list[Word], summary: list[Word]) -> list[str]:
    """Skeletons of capitalised words, and numbers: what English and Russian share."""
    ranked: dict[str, tuple[int, int]] = {}
    for part, words in enumerate((title, summary)):
        for word in words:
            shape = word.token if word.token[0] == "#" else word.skeleton
            if shape is not None and shape not in ranked:
                ranked[shape] = (part, _order(shape))
    return sorted(ranked, key=ranked.__getitem__)[:MAX_NAME_TOKENS]


@lru_cache(maxsize=WORDS_KEPT)
def _order(token: str) -> int:
    """A token's place in the order both items of a pair pick their tokens in."""
    return hash64(token)


def _pair_keys(tokens: list[str]) -> list[int]:
    """One key per pair: the two tokens' hashes mixed (SplitMix64's finaliser), in the
    tokens' sorted order so that both items of a story make the same key."""
    out = []
    for a, b in combinations(sorted(tokens), 2):
        x = (_order(a) * _GOLDEN + _order(b)) & _MASK64
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
        x ^= x >> 31
        out.append(x - (1 << 64) if x >= 1 << 63 else x)
    return out


_GOLDEN: Final = 0x9E3779B97F4A7C15
_MASK64: Final = (1 << 64) - 1


def _script(text: str) -> str:
    latin = cyrillic = 0
    for c in text[:200]:
        if "a" <= c <= "z" or "A" <= c <= "Z":
            latin += 1
        elif "\u0400" <= c <= "\u04ff":
            cyrillic += 1
    if not latin and not cyrillic:
        return "@o"
    return "@c" if cyrillic > latin else "@l"


# The text form: a version line, then the link, the title, the tokens and the keys (base64),
# one line each. Links are percent-encoded and titles are words and spaces, so neither holds
# a line break; tokens hold no space.
_VERSION: Final = "s1"
_INT64: Final = range(-(2**63), 2**63)
_MAX_KEYS: Final = 32


def dump_features(f: StoryFeatures) -> str:
    """The compact text of ``f`` (at most :data:`MAX_DUMP` characters)."""
    lines = [
        _VERSION,
        _one_line(f.link or "", MAX_LINK_LENGTH),
        _one_line(f.title or "", MAX_TITLE_CHARS),
        " ".join(sorted(t for t in f.tokens if t and _one_word(t))),
        _pack([k for k in f.keys if isinstance(k, int) and k in _INT64][:_MAX_KEYS]),
    ]
    text = "\n".join(lines)
    while len(text) > MAX_DUMP and lines[3]:  # only a hand-built StoryFeatures gets here
        lines[3] = lines[3].rsplit(" ", 1)[0] if " " in lines[3] else ""
        text = "\n".join(lines)
    return text[:MAX_DUMP]


def _pack(keys: list[int]) -> str:
    """The keys as big-endian 64-bit integers in base64: read back in one C call."""
    return base64.b64encode(struct.pack(f">{len(keys)}q", *keys)).decode("ascii")


def _one_line(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit]


def _one_word(token: str) -> bool:
    return len(token) <= 24 and not any(c.isspace() for c in token)


def load_features(text: str) -> StoryFeatures:
    """The features :func:`dump_features` wrote; empty features for anything else. The
    store does not load its candidates (it scores their text, :func:`read_dump`): nothing
    is kept between calls."""
    found = _read(text) if isinstance(text, str) and len(text) <= 4 * MAX_DUMP else None
    if found is None:
        return EMPTY
    link, title, tokens, packed = found
    return StoryFeatures(
        link=link,
        title=title,
        tokens=frozenset(tokens),
        keys=struct.unpack(f">{len(packed) // 8}q", packed),
    )


def read_dump(text: str) -> tuple[str | None, str | None, list[str]] | None:
    """The link, title and tokens of the features :func:`dump_features` wrote (None for
    anything else, as :func:`load_features` gives empty features): what scoring a stored
    candidate reads, without making its features (the keys are only the index's)."""
    if not isinstance(text, str) or len(text) > 4 * MAX_DUMP:
        return None
    found = _read(text)
    return None if found is None else found[:3]


def _read(text: str) -> tuple[str | None, str | None, list[str], bytes] | None:
    lines = text.split("\n")
    if len(lines) != 5 or lines[0] != _VERSION:
        return None
    _, link, title, tokens, keys = lines
    try:
        packed = binascii.a2b_base64(keys, strict_mode=True)
    except ValueError:  # binascii.Error is a ValueError
        return None
    if len(packed) % 8:
        return None
    return link or None, title or None, tokens.split(), packed
