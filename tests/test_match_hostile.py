"""Hostile text at the match stage: whatever an item holds, matching never raises, snippets
come from the original text, every offset the normalisation claims to keep is kept, NEAR
costs time linear in the occurrences, and the C helpers survive huge arguments and
callbacks that change what they were given."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_match import make_item as item

from monitor.match import HIGHLIGHT_END, HIGHLIGHT_START, Matcher, _speedups
from monitor.match.evaluate import Close, near_pairs
from monitor.match.fold import fold, normalize, repair_lookalikes
from monitor.match.normtext import NormText, make_snippet
from monitor.match.words import tokenize
from monitor.types import Item, MatchContext, Watchlist

CTX = MatchContext(feed_name="feed", feed_url="https://feed.example/")


def highlighted(snippet: str) -> str:
    assert snippet.count(HIGHLIGHT_START) == 1 == snippet.count(HIGHLIGHT_END), snippet
    return snippet[snippet.index(HIGHLIGHT_START) + 1 : snippet.index(HIGHLIGHT_END)]


def assert_snippets_from_the_original(found: Item, matcher: Matcher) -> None:
    """Each highlighted part is text of its field, and holds the start of the term."""
    for match in matcher.match_item(found, CTX):
        for detail in match.matches:
            part = highlighted(detail.snippet)
            original = " ".join(getattr(found, detail.field).split())
            assert part and part in original, (detail, original)
            assert tokenize(normalize(detail.term))[0][:2] in normalize(part), (detail, part)


# --- look-alike repair keeps every offset ---------------------------------------------------

WATCHLISTS = [
    Watchlist(name="words", query="CSTO OR tow OR Tow* OR US OR ес OR сс"),
    Watchlist(name="case", query='="US" OR ="Tоw"'),
    Watchlist(name="near", query="CSTO NEAR/2 tow"),
    Watchlist(name="phrase", query='"cs to" OR "T о" OR "Tо҂w"'),
]
MATCHER = Matcher(WATCHLISTS)
# Words mixing runs of Latin and Cyrillic look-alikes, each run followed or not by a
# Cyrillic sign or combining mark (U+0482-U+0489) or another mark or a character that
# folds to more or to less; terms that occur in them; and characters that fold to more,
# to less or into their neighbour (Hangul jamo), or are astral.
LATIN, CYRILLIC = "TtoOcCwepxUSkK", "ТтоОсСеЕрРхкК"
AFTER = [
    "",
    "",
    "",
    "",
    "\u0482",
    "\u0482",
    "\u0483",
    "\u0488",
    "\u0301",
    "\u0307",
    "\u1161",
    "\u00ad",
]
RUN = st.tuples(
    st.sampled_from([LATIN, CYRILLIC]).flatmap(
        lambda letters: st.text(letters, min_size=1, max_size=2)
    ),
    st.sampled_from(AFTER),
).map("".join)
MIXED_WORD = st.lists(RUN, min_size=1, max_size=4).map("".join)
OTHERS = [
    *("CSTO", "CSTО", "US", "us", "Tow", "tow", "Тоw", "i\u0307", "İ", "ß", "ﬁ", "ǅ", "…"),
    *("\u1100\u1161", "\u1100\u1161\u11a8", "\u3131\u1161", "\u0345", "\u200d", "\xa0", "\n"),
    *("\U0001d400", "\uffff", "ԁ", "Ё", ","),
]
TEXTS = st.lists(st.one_of(MIXED_WORD, st.sampled_from(OTHERS)), max_size=8).map(" ".join)


@pytest.mark.parametrize(
    "title",
    [
        "Tо\u0482w",
        "Tо\u0482w CSTO",
        "CSTO Tо\u0482US",
        "Tо\u0482wTо\u0482w CSTO",
        "Tо\u0301w CSTO",
        "Tо\u0483\u0488w tow",
        "сT\u0482о\u0482w US",
    ],
)
def test_a_mixed_script_word_with_a_rare_sign_is_matched_from_its_own_text(title: str) -> None:
    assert_snippets_from_the_original(item(title=title, content=title), MATCHER)


def test_look_alike_repair_rewrites_each_mixed_word_in_place() -> None:
    assert repair_lookalikes("tо\u0482w csto") == "to\u0482w csto"  # a sign ends a word
    assert repair_lookalikes("сt\u0482оw") == "ct\u0482ow"
    assert repair_lookalikes("cstо\u0301 tоw") == "csto\u0301 tow"  # a mark does not


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS)
def test_look_alike_repair_never_changes_the_length(text: str) -> None:
    folded = fold(text).text
    assert len(repair_lookalikes(folded)) == len(folded)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS)
def test_folding_keeps_every_offset_it_says_it_keeps(text: str) -> None:
    folded = fold(text)
    if folded.offsets_kept:
        assert len(folded.text) == len(text)


def test_a_dropped_dot_after_i_is_a_changed_offset() -> None:
    folded = fold("Ti\u0307 US")
    assert folded.text == "ti us" and not folded.offsets_kept
    found = Matcher([Watchlist(name="w", query='="US"')]).match_item(item(title="Ti\u0307 US"), CTX)
    assert highlighted(found[0].matches[0].snippet) == "US"


@pytest.mark.slow
@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS, TEXTS, TEXTS)
def test_matching_never_raises_and_snippets_come_from_the_original(
    title: str, summary: str, content: str
) -> None:
    assert_snippets_from_the_original(item(title, summary, content), MATCHER)


@pytest.mark.parametrize("text", ["\ud800 CSTO", "CSTO \udfff", "ю\ud800 CSTO", "a\ud800 CSTO ß"])
def test_a_lone_surrogate_is_matched_around_and_shown_as_a_replacement(text: str) -> None:
    found = Matcher([Watchlist(name="w", query="CSTO")]).match_item(item(title=text), CTX)
    (detail,) = found[0].matches
    assert highlighted(detail.snippet) == "CSTO"
    assert "\ufffd" in detail.snippet
    detail.snippet.encode("utf-8")


# --- case-sensitive spans after text the fold table cannot handle --------------------------


@pytest.mark.parametrize(
    "title",
    [
        "\u1100\u1161 The US said",  # conjoining jamo: compose into one syllable
        "The US said \u1100\u1161\u11a8",
        "\u3131\u1161 The US said",  # a compatibility jamo, then a vowel
        "A\u00ad\u0300 The US said",  # a mark after a dropped soft hyphen composes with A
    ],
)
def test_case_sensitive_term_is_found_after_text_that_composes(title: str) -> None:
    found = Matcher([Watchlist(name="w", query='="US"')]).match_item(item(title=title), CTX)
    assert found, title
    assert highlighted(found[0].matches[0].snippet) == "US"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS)
def test_offsets_map_back_exactly_outside_what_composes(text: str) -> None:
    """An ASCII word after any prefix maps back to itself: the map is not coarsened."""
    norm = NormText(text + " Word")
    end = len(norm.text)
    begin, stop = norm.original_span(end - 4, end)
    assert norm.original[begin:stop] == "Word"


# --- NEAR is linear in the occurrences -------------------------------------------------------


def test_near_reads_each_occurrence_a_bounded_number_of_times() -> None:
    occurrences = 4000
    hits = {
        0: [("content", 0, 16 * k, 16 * k + 7) for k in range(occurrences)],
        1: [("content", 0, 16 * k + 8, 16 * k + 12) for k in range(occurrences)],
    }
    calls = 0

    def word(offset: int) -> int:
        nonlocal calls
        calls += 1
        return offset // 8

    pairs = near_pairs(Close(left=0, right=1, distance=5), hits, word)
    assert pairs == [(hits[0][0], hits[1][0])]  # the first pair of the text explains it
    assert calls <= 4 * occurrences


def cpu_time(matcher: Matcher, found: Item, limit: float = float("inf")) -> float:
    """The best of three rounds, in CPU time of this process (other processes on the
    machine do not count); a round over ``limit`` ends the measure."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        matcher.match_item(found, CTX)
        best = min(best, time.process_time() - started)
        if best > limit:
            break
    return best


def test_near_over_many_occurrences_takes_linear_time() -> None:
    matcher = Matcher([Watchlist(name="w", query="Tokayev NEAR/5 CSTO")])
    small = max(cpu_time(matcher, item(content="Tokayev CSTO " * 500)), 0.001)
    large = cpu_time(matcher, item(content="Tokayev CSTO " * 4000), limit=24 * small)
    assert large < 24 * small, (small, large)  # eight times the text; quadratic: 64 times


def test_near_explains_the_first_pair_of_each_field_only() -> None:
    text = "Tokayev CSTO " * 1000
    found = Matcher([Watchlist(name="w", query="Tokayev NEAR/3 CSTO")]).match_item(
        item(title=text, content=text), CTX
    )
    assert [(d.term, d.field) for d in found[0].matches] == [
        ("Tokayev", "title"),
        ("CSTO", "title"),
        ("Tokayev", "content"),
        ("CSTO", "content"),
    ]
    assert all(d.snippet.startswith(HIGHLIGHT_START) for d in found[0].matches[::2])


# --- the C helpers -------------------------------------------------------------------------


@pytest.mark.parametrize("width", [sys.maxsize, sys.maxsize - 1, 2**62, -sys.maxsize - 1])
def test_snippet_with_a_huge_width_does_not_overflow(width: int) -> None:
    text = "xx abc def ghi"
    whole = "abc \ue000def\ue001 ghi" if width > 0 else "…\ue000def\ue001…"
    assert _speedups.snippet(text, 7, 10, width, 3, 14) == whole
    assert make_snippet(text, 7, 10, width, bounds=(3, 14)) == whole


@pytest.mark.parametrize("huge", [sys.maxsize, -sys.maxsize - 1])
def test_snippet_and_collect_refuse_huge_offsets(huge: int) -> None:
    with pytest.raises(ValueError, match="need 0 <= first"):
        _speedups.snippet("abc", huge, huge, 80, 0, 3)
    with pytest.raises(ValueError, match="need 0 <= first"):
        _speedups.snippet("abc", 0, 1, 80, 0, huge)
    Matcher([Watchlist(name="w", query="a")])  # installs the word characters
    slots: list[object] = [[("title", [()])]]
    with pytest.raises(ValueError, match="outside the text"):
        _speedups.collect([(0, huge, huge)], "abc", [0], slots, b"\x01", None, None)


def test_collect_survives_a_words_callback_that_empties_what_it_was_given() -> None:
    """Run in a child with the debug allocator, which fills freed memory with a pattern:
    a reference held without being owned across the callback crashes it there."""
    code = textwrap.dedent(
        """
        from monitor.match import Matcher, _speedups
        from monitor.types import Watchlist

        Matcher([Watchlist(name="w", query="a")])  # installs the word characters
        count = 25  # a tuple this long is freed, not kept for reuse
        slots = [[("title", [tuple((n, 3, 1, frozenset(), None) for n in range(count))])]]
        starts = [0]

        def words(norm, start, plan):
            for fields in slots:
                for _, per_anchor in fields:
                    per_anchor.clear()
                fields.clear()
            slots.clear()
            starts.clear()
            return (start, start + 1)

        found = [(0, 0, 1), (0, 2, 3)]
        hits = _speedups.collect(found, "a a", starts, slots, b"\\x01", words, None)
        assert sorted(hits) == list(range(count)), hits
        assert all(found == [("title", 0, 0, 1)] for found in hits.values()), hits
        print("ok")
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONMALLOC": "debug", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0 and child.stdout.strip() == "ok", child.stderr[-2000:]
