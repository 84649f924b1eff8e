"""Tests of text normalisation (monitor/match/fold.py, monitor/match/_speedups.c), offsets
back to the original and snippets (monitor/match/normtext.py), and of words
(monitor/match/words.py), inflection (monitor/match/inflect.py) and a term's words around its
anchor (monitor/match/plan.py). Each rule of the "Words and normalisation" and "Inflection"
sections of monitor/match/__init__.py's docstring has a row here; the fast paths of
normalisation are checked against a plain reference."""

from __future__ import annotations

import itertools
import random
import re
import unicodedata
from array import array
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

import monitor.match.fold as normalize_module
import monitor.match.normtext as normtext_module
from monitor.match import _speedups
from monitor.match._speedups import Folded
from monitor.match.fold import HIGHLIGHT_END, HIGHLIGHT_START, cased, fold, normalize
from monitor.match.inflect import WordForm, word_form
from monitor.match.normtext import NormText, make_snippet, normalize_fields
from monitor.match.plan import match_words
from monitor.match.words import BARRIER, CYRILLIC_LETTER, JOINER, LATIN_LETTER, tokenize

CYRILLIC_O = "\u041e"  # О, looks like Latin O


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # NFKC
        ("И\u0306ошкар-Ола", "йошкар-ола"),  # decomposed й composes
        ("ﬁnance", "finance"),  # ligature
        ("ＣＳＴＯ", "csto"),  # full-width
        ("a\u00a0b", "a b"),  # no-break space
        ("№5", "no5"),
        ("…", "..."),
        # format characters removed
        ("Ка\u00adзах\u00adстан", "казахстан"),  # soft hyphen
        ("zero\u200dwidth", "zerowidth"),  # zero-width joiner
        ("zero\u200bspace", "zerospace"),  # zero-width space
        ("\ufeffbom", "bom"),
        ("left\u200eto", "leftto"),  # left-to-right mark
        # case folding (Unicode, not just lower())
        ("Straße", "strasse"),
        ("STRASSE", "strasse"),
        ("ΟΔΟΣ", "οδοσ"),
        ("ОДКБ", "одкб"),
        ("İstanbul", "istanbul"),  # Turkish dotted capital I: plain i, no combining dot
        ("I\u0307stanbul", "istanbul"),  # the same, decomposed
        ("İSTANBUL İzmir", "istanbul izmir"),
        # ё = е
        ("Ёлка ёж", "елка еж"),
        ("Е\u0308лка", "елка"),  # decomposed ё too
        # Kazakh, Kyrgyz, Uzbek and Tajik letters = the Russian ones they are written as
        ("Тоқаев", "токаев"),
        ("ҚАЗАҚСТАН Өскемен", "казакстан оскемен"),
        ("әғқңөұүһ ўҳ ӣӯҷ", "агкноуух ух иуч"),
        ("Київ білорусь", "київ білорусь"),  # і and ї stay
        # Latin/Cyrillic look-alikes inside one word
        (f"CST{CYRILLIC_O}", "csto"),
        (f"{CYRILLIC_O}ДKБ", "одкб"),  # Latin K among Cyrillic letters
        ("Kазахстан", "казахстан"),
        ("cтo", "cto"),  # tie: Latin wins
        ("Жz", "жz"),  # no look-alike either way: left alone
        (f"CSTO {CYRILLIC_O}", "csto о"),  # separate words are not mixed
        # highlight markers cannot come from a feed
        (f"{HIGHLIGHT_START}CSTO{HIGHLIGHT_END}", "csto"),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_cased_keeps_case_but_normalises_the_rest() -> None:
    assert cased("U\u00adS ＵＳ Ёж") == "US US Еж"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("kazakhstan's protests", ["kazakhstan", "s", "protests"]),
        ("kazakh-based", ["kazakh", "based"]),
        ("link_to_page", ["link", "to", "page"]),  # underscore separates
        ("csto2 g7", ["csto2", "g7"]),  # digits are word characters
        ("ثقافة عربية", ["ثقافة", "عربية"]),
        ("हिन्दी भाषा", ["हिन्दी", "भाषा"]),  # combining marks stay in the word
        ("我爱北京", ["我", "爱", "北", "京"]),  # no-space script: one letter, one word
        ("北京csto", ["北", "京", "csto"]),
        ("ภาษาไทย", ["ภ", "า", "ษ", "า", "ไ", "ท", "ย"]),
        ("a\x00b", ["a", "b"]),
    ],
)
def test_tokenize_unicode_words(text: str, words: list[str]) -> None:
    assert tokenize(text) == words


@pytest.mark.parametrize(
    ("original", "word", "expected"),
    [
        ("Straße … Ёлка CSTО", "csto", "CSTО"),
        ("Straße … Ёлка CSTО", "елка", "Ёлка"),
        ("Straße … Ёлка", "strasse", "Straße"),
        ("a soft\u00adhyphen word", "softhyphen", "soft\u00adhyphen"),
        ("И\u0306ошкар-Ола", "йошкар", "И\u0306ошкар"),
        ("ﬁne ﬁsh", "fish", "ﬁsh"),
        ("x\u200d CSTO", "csto", "CSTO"),
        ("no\u00a0break CSTO", "csto", "CSTO"),
        ("plain ascii CSTO", "csto", "CSTO"),
        ("🄐 Straße CSTO", "csto", "CSTO"),  # an astral character that normalises to three
        ("🄐 Straße CSTO", "(a)", "🄐"),
        ("😀 ﬁsh", "fish", "ﬁsh"),
    ],
)
def test_original_span_maps_back_through_length_changes(
    original: str, word: str, expected: str
) -> None:
    norm = NormText(original)
    start = norm.text.index(word)
    begin, end = norm.original_span(start, start + len(word))
    assert original[begin:end] == expected


TRICKY = st.sampled_from(
    ["Straße", "ﬁ", "…", "\u00ad", "\u200d", "И\u0306", "Ё", "CSTО", "a", "Б", " ", "\n", "ǰ"]
)


@given(st.lists(TRICKY, max_size=12))
def test_every_word_maps_back_to_text_that_normalises_to_it(pieces: list[str]) -> None:
    original = "".join(pieces)
    norm = NormText(original)
    for word in tokenize(norm.text):
        start = norm.text.index(word)
        begin, end = norm.original_span(start, start + len(word))
        assert word in normalize(original[begin:end])


def test_normalize_fields_keeps_fields_apart() -> None:
    norm = normalize_fields(["Title", "Straße\x00x", "Ёж"])
    assert norm.text.split(BARRIER) == ["title", "strasse x", "еж"]
    assert norm.starts == [0, 6, 16]
    assert [norm.original[a:b] for a, b in norm.spans] == ["Title", "Straße x", "Ёж"]


def test_fields_whose_offsets_are_kept_start_where_the_original_ones_do() -> None:
    norm = normalize_fields(["Title", "Ёж\u00a0x", "CSTO"])
    assert norm.text.split(BARRIER) == ["title", "еж x", "csto"]
    assert norm.starts == [0, 6, 11]


# Pieces of text that exercise every step and every shortcut of normalisation: ASCII, line
# breaks (NFKC runs line by line), no-break spaces, compatibility and format characters,
# highlight markers, case folding that lengthens or decomposes, marks at a line start,
# Hangul jamo that compose, astral characters, mixed-script words.
PIECES = [
    *("CSTO", "a", " ", "\n", "\n", "\x00", "\u00a0", "…", "ﬁ", "ﬃ", "①", "㎏", "ｶ", "µ"),
    *("\u00ad", "\u200d", "\ufeff", HIGHLIGHT_START, "Straße", "ǰ", "J\u030c", "İ", "ΣΑΣ"),
    *("\u0301", "И\u0306", "Ёлка", "CSTО", "Kазах", "cт", "ᄀ", "ᅡ", "😀", "🄐", "x1", "_"),
    *("Тоқаев", "Һh", "ӣ", "И\u0304"),
    *("\U000e0041", "\r"),  # an astral format character (a tag); a carriage return
]


def reference_normalize(text: str) -> str:
    """The steps of monitor.match.fold's docstring, each on the whole text, plainly."""
    nfkc = unicodedata.normalize
    text = nfkc("NFKC", text)
    markers = (HIGHLIGHT_START, HIGHLIGHT_END)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf" and c not in markers)
    text = nfkc("NFKC", text.casefold()).replace("i\u0307", "i")
    text = text.translate(str.maketrans("ёәғқңөұүһўҳӣӯҷ", "еагкноуухухиуч"))
    mixed = re.compile(f"{LATIN_LETTER}{CYRILLIC_LETTER}|{CYRILLIC_LETTER}{LATIN_LETTER}")

    def repair(word: re.Match[str]) -> str:
        return normalize_module._one_script(word[0]) if mixed.search(word[0]) else word[0]

    return re.sub(f"(?:{JOINER})+", repair, text)


@given(st.lists(st.sampled_from(PIECES), max_size=30).map("".join))
def test_normalize_agrees_with_the_plain_reference(text: str) -> None:
    assert normalize(text) == reference_normalize(text)
    assert NormText(text).text == reference_normalize(text)


@given(st.lists(st.lists(st.sampled_from(PIECES), max_size=10).map("".join), max_size=4))
def test_every_word_of_every_field_maps_back_into_its_field(fields: list[str]) -> None:
    norm = normalize_fields(fields)
    for index, (start, (low, high)) in enumerate(zip(norm.starts, norm.spans, strict=True)):
        stop = norm.starts[index + 1] - 1 if index + 1 < len(norm.starts) else len(norm.text)
        for word in re.finditer(f"(?:{JOINER})+", norm.text[start:stop]):
            begin, end = norm.original_span(start + word.start(), start + word.end())
            assert low <= begin <= end <= high
            assert word[0] in normalize(norm.original[begin:end])


def fast_fold(text: str) -> Folded | None:
    normalize("ё")  # installs the C tables on first use
    return _speedups.fold(text)


def folded_by_table() -> list[str]:
    """Every character the C table folds (below U+20000, folded whatever its neighbours)."""
    return [
        c
        for c in map(chr, range(0x20000))
        if not 0xD800 <= ord(c) <= 0xDFFF and fast_fold(c) is not None
    ]


def test_the_table_folds_almost_every_character_and_refuses_marks() -> None:
    chars = folded_by_table()
    assert len(chars) > 0x20000 - 0x800 - 3000  # all but surrogates, marks and composers
    assert fast_fold("e\u0301") is None  # a combining mark
    assert fast_fold("\u1100\u1161") is None  # Hangul jamo that compose
    assert fast_fold("\U00030000") is None  # beyond the table
    assert fast_fold("Ёлка…") == ("елка...", False, False)


@pytest.mark.parametrize("seed", range(4))
def test_table_folding_equals_python_folding_of_whole_texts(seed: int) -> None:
    """Folding by table is folding character by character. Python's steps act on the whole
    text: every character next to many others (all of them, shuffled) must give the same."""
    chars = folded_by_table()
    random.Random(seed).shuffle(chars)
    if seed % 2:  # every character also between letters that compose or fold specially
        chars = [c + n for c, n in zip(chars, itertools.cycle("aёßİΣ…ﬁ\u00ad"))]
    text = "".join(chars)
    fast = fast_fold(text)
    assert fast is not None
    assert fast.text == normalize_module._slow_fold(text)[0]


SAFE_PIECES = [
    *("CSTO", "a", " ", "\n", "\x00", "\u00a0", "…", "ﬁ", "①", "ｶ", "µ", "\u00ad", "\u200d"),
    *("Straße", "İ", "ΣΑΣ", "Ёлка", "CSTО", "Kазах", "cт", "😀", "🄐", "´", HIGHLIGHT_START),
]


@given(st.lists(st.sampled_from(SAFE_PIECES), min_size=1, max_size=30).map("".join))
def test_table_folding_flags_are_exact(text: str) -> None:
    fast = fast_fold(text)
    assert fast is not None
    assert fast.text == normalize_module._slow_fold(text)[0]
    singles = [fast_fold(c).text for c in text]  # type: ignore[union-attr]
    assert fast.offsets_kept == all(len(s) == 1 for s in singles)
    adjacent = f"{LATIN_LETTER}{CYRILLIC_LETTER}|{CYRILLIC_LETTER}{LATIN_LETTER}"
    assert fast.mixed_scripts == bool(re.search(adjacent, fast.text))


def test_wrong_tables_are_refused() -> None:
    with pytest.raises(ValueError, match="wrong size"):
        _speedups.set_tables(b"", b"")
    table = array("I", [0x80000000]) * 0x20000  # every entry points past an empty pool
    with pytest.raises(ValueError, match="outside its pool"):
        _speedups.set_tables(table.tobytes(), b"")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CSTO Summit", ("csto summit", True, False)),  # ASCII: lower(), in C
        # by table, in C; the Cyrillic О is repaired later (normalize), not by fold
        (f"Ёлка… CST{CYRILLIC_O}", ("елка... cst\u043e", False, True)),
        ("Е\u0308лка", ("елка", False, True)),  # a combining mark: Python's steps
    ],
)
def test_fold_gives_a_folded_whose_fields_have_names_on_every_path(
    text: str, expected: tuple[str, bool, bool]
) -> None:
    folded = fold(text)
    assert type(folded) is Folded
    assert (folded.text, folded.offsets_kept, folded.mixed_scripts) == expected
    assert folded == Folded(expected) == expected  # a tuple too: equal by value


def test_a_folded_made_in_python_equals_one_made_in_c() -> None:
    made_in_c = fast_fold("Ёлка…")
    assert made_in_c == Folded(("елка...", False, False))
    assert hash(made_in_c) == hash(Folded(("елка...", False, False)))
    assert repr(made_in_c) == (
        "monitor.match._speedups.Folded(text='елка...', offsets_kept=False, mixed_scripts=False)"
    )


@given(st.text(st.characters(max_codepoint=0x7F)))
def test_ascii_folding_in_c_equals_the_python_path_and_the_table(text: str) -> None:
    expected = Folded((text.lower(), True, False))
    assert _speedups.fold_ascii(text) == expected
    assert fold(text) == expected
    assert fast_fold(text) == expected  # the table agrees: ASCII needs none


def test_ascii_folding_refuses_other_text() -> None:
    with pytest.raises(TypeError, match="ASCII str"):
        _speedups.fold_ascii("Ёлка")


def counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Count the calls of a function of monitor.match.normtext."""
    calls: list[int] = []
    real: Callable[..., object] = getattr(normtext_module, name)

    def counted(*args: object) -> object:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(normtext_module, name, counted)
    return calls


def test_offsets_are_mapped_only_in_a_field_that_needs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    built = counting(monkeypatch, "_offset_map")
    norm = normalize_fields(["Straße", "CSTO summit", "ﬁnal CSTO"])
    assert built == []  # normalising alone maps nothing
    start = norm.text.index("csto")
    assert norm.original_span(start, start + 4) == (7, 11)  # an ASCII field: no map
    assert built == []
    start = norm.text.index("csto", start + 4)
    begin, end = norm.original_span(start, start + 4)
    assert norm.original[begin:end] == "CSTO"
    norm.original_span(start, start + 4)
    assert built == [1]  # the third field's map, built once


def marked(snippet: str) -> str:
    return snippet.replace(HIGHLIGHT_START, "[").replace(HIGHLIGHT_END, "]")


SENTENCE = (
    "The quick brown fox jumps over the lazy dog near the Kazakhstan border, "
    "said officials on Monday in a statement released late."
)


@pytest.mark.parametrize(
    ("text", "match", "width", "expected"),
    [
        (SENTENCE, "Kazakhstan", 40, "…dog near the [Kazakhstan] border, said…"),
        ("Short text about CSTO.", "CSTO", 80, "Short text about [CSTO]."),
        ("line one\n\n  CSTO\tsummit", "CSTO", 80, "line one [CSTO] summit"),
        ("CSTO's summit", "CSTO", 80, "[CSTO]'s summit"),
        (f"forged {HIGHLIGHT_START}x{HIGHLIGHT_END} CSTO", "CSTO", 80, "forged x [CSTO]"),
        ("我爱北京天安门" * 10, "北京", 12, "…天安门我爱[北京]天安门我爱…"),
    ],
)
def test_snippet(text: str, match: str, width: int, expected: str) -> None:
    start = text.index(match, len(text) // 3 if len(text) > 60 else 0)
    assert marked(make_snippet(text, start, start + len(match), width)) == expected


def test_snippet_stays_inside_its_field() -> None:
    joined = "a title" + BARRIER + "CSTO in the summary"
    start = joined.index("CSTO")
    snippet = make_snippet(joined, start, start + 4, bounds=(8, len(joined)))
    assert marked(snippet) == "[CSTO] in the summary"


def reference_snippet(
    original: str, start: int, end: int, width: int = 80, bounds: tuple[int, int] | None = None
) -> str:
    """make_snippet's rules (its docstring), plainly, in Python: what the C code must do."""
    first, last = bounds if bounds is not None else (0, len(original))
    room = max(width - (end - start), 0)
    before, after = room // 2, room - room // 2
    before = max(before, room - (last - end))  # room the other side cannot use
    after = max(after, room - (start - first))
    low, high = max(start - before, first), min(end + after, last)
    left, right = original[low:start].split(), original[end:high].split()
    if low > first and len(left) > 1 and not original[low - 1].isspace():
        del left[0]  # a word cut by the window
    if high < last and len(right) > 1 and not original[high].isspace():
        del right[-1]
    head = " ".join(left) + (" " if left and original[start - 1].isspace() else "")
    tail = (" " if right and original[end].isspace() else "") + " ".join(right)
    middle = original[start:end]
    if " " in middle or not middle.isprintable():
        middle = " ".join(middle.split())

    def unmark(text: str) -> str:
        return text.replace(HIGHLIGHT_START, "").replace(HIGHLIGHT_END, "")

    snippet = f"{unmark(head)}{HIGHLIGHT_START}{unmark(middle)}{HIGHLIGHT_END}{unmark(tail)}"
    return ("…" if low > first else "") + snippet + ("…" if high < last else "")


SNIPPET_PIECES = st.sampled_from(
    [
        *("a", "b", " ", "Ж", "北", "  ", "\n", "\t", "\u2003", "\xa0", "\u200b", "\x00"),
        *("…", "word", "Слово", HIGHLIGHT_START, HIGHLIGHT_END, "😀", "\U0010fffd"),
    ]
)


@given(
    st.lists(SNIPPET_PIECES, min_size=1, max_size=60).map("".join),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, 12),
    st.integers(0, 90),
)
def test_snippet_follows_the_reference_rules(
    text: str, a: int, b: int, c: int, span: int, width: int
) -> None:
    first, last = sorted([a % (len(text) + 1), b % (len(text) + 1)])
    start = first + c % (last - first + 1)
    end = min(start + span, last)
    expected = reference_snippet(text, start, end, width, (first, last))
    assert make_snippet(text, start, end, width, (first, last)) == expected


def test_snippet_refuses_spans_outside_the_text() -> None:
    with pytest.raises(ValueError, match="first <= start <= end <= last <= len"):
        make_snippet("abc", 2, 1)
    with pytest.raises(ValueError, match="first <= start <= end <= last <= len"):
        make_snippet("abc", 0, 1, bounds=(0, 9))


# --- Inflection -----------------------------------------------------------------------------


def form(word: str, language: str | None = None) -> WordForm:
    return word_form(normalize(word), cased(word), language)


@pytest.mark.parametrize(
    ("term", "word", "matches"),
    [
        # Russian: a short inflectional ending
        ("Казахстан", "казахстан", True),
        ("Казахстан", "казахстане", True),
        ("Казахстан", "казахстана", True),
        ("Казахстан", "казахстаном", True),
        ("Казахстан", "казахстану", True),
        ("Казахстан", "казахстанский", False),  # derived word, not a form
        ("Токаев", "токаева", True),
        ("Токаев", "токаеву", True),
        ("Токаев", "токаевым", True),
        ("Россия", "россии", True),  # final vowel replaced
        ("Россия", "россией", True),
        ("Москва", "москве", True),
        ("Казахстане", "казахстан", True),  # a term written inflected finds the others
        ("коллективной", "коллективная", True),  # two-letter adjective ending
        ("Мали", "малой", False),  # stem would be 3 letters: exact
        ("Рим", "рима", False),  # under 4 letters: exact
        # Kazakh (a word written with a Kazakh letter): the Kazakh case, plural and
        # possessive endings, and the Russian forms; Russian-written words: Russian only
        ("Тоқаев", "токаевтын", True),  # Тоқаевтың (genitive)
        ("Тоқаев", "токаевка", True),  # Тоқаевқа (dative)
        ("Тоқаев", "токаевпен", True),  # Тоқаевпен (with)
        ("Тоқаев", "токаева", True),  # Russian text
        ("Қазақстан", "казакстанда", True),  # locative
        ("Қазақстан", "казакстандагы", True),  # "the one in"
        ("Қазақстан", "казакстаннын", True),
        ("Өскемен", "оскеменнін", True),
        ("Қазақстан", "казакстанский", False),
        ("Тоқаев", "токаевтынский", False),
        ("Токаев", "токаевтын", False),  # written the Russian way: the Russian rule
        # acronyms stay exact
        ("ОДКБ", "одкб", True),
        ("ОДКБ", "одкба", False),
        ("ЕАЭС", "еаэсе", False),
        ("США", "сша", True),
        ("США", "сшае", False),
        ("CSTO", "cstos", False),
        # English: plural forms
        ("protest", "protests", True),
        ("protest", "protester", False),
        ("crash", "crashes", True),
        ("party", "parties", True),
        ("party", "party", True),
        ("day", "days", True),  # vowel + y: plain s
        ("Kazakh", "kazakhs", True),
        ("Kazakhstan", "kazakhstans", True),
        ("war", "wars", True),
        ("us", "uss", False),  # under 3 letters: exact
        ("G7", "g7s", False),  # digits: exact
        # other scripts: exact
        ("ثقافة", "ثقافة", True),
        ("Αθήνα", "αθηνασ", False),
    ],
)
def test_inflection_rule(term: str, word: str, matches: bool) -> None:
    assert form(term).matches(word) is matches


@pytest.mark.parametrize(
    ("term", "language", "word", "matches"),
    [
        ("Казахстан", "ru", "казахстане", True),
        ("Казахстан", "en", "казахстане", False),  # en: Russian rule off
        ("Казахстан", "none", "казахстане", False),
        ("protest", "en", "protests", True),
        ("protest", "ru", "protests", False),  # ru: English rule off
        ("protest", "none", "protests", False),
        ("Токаев", "kk", "токаевтын", True),  # kk: Kazakh endings for every Cyrillic word
        ("Алматы", "kk", "алматыда", True),
        ("Тоқаев", "ru", "токаевтын", False),  # ru: Russian only, however it is written
        ("Тоқаев", "none", "токаева", False),
        ("protest", "kk", "protests", False),
    ],
)
def test_language_turns_rules_on_and_off(
    term: str, language: str, word: str, matches: bool
) -> None:
    assert form(term, language).matches(word) is matches


def test_prefix_form_matches_any_continuation() -> None:
    prefix = WordForm(stem="protest", prefix=True)
    assert prefix.matches("protesters")
    assert not prefix.matches("protes")


@pytest.mark.parametrize(
    ("text", "anchor", "expected"),
    [
        ("the collective, security treaty", 0, "collective, security treaty"),
        ("the collective, security treaty", 1, "collective, security treaty"),
        ("the collective, security treaty", 2, "collective, security treaty"),
        ("the collective securities treaty", 2, None),
        ("the collective" + BARRIER + "security treaty", 2, None),  # fields are apart
        ("collective security" + BARRIER + "treaty", 0, None),
    ],
)
def test_match_words_from_any_anchor(text: str, anchor: int, expected: str | None) -> None:
    forms = [WordForm(stem=w) for w in ("collective", "security", "treaty")]
    start = text.index(forms[anchor].stem)
    span = match_words(text, start, forms, anchor)
    assert (text[span[0] : span[1]] if span else None) == expected
