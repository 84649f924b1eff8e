"""Word forms: which words of a text one query word stands for, under a watchlist's language.

Input: the words of a query term, normalised and as written, its flags (prefix,
case-sensitive) and the watchlist's language. Output: one :class:`WordForm` per word
(:func:`term_forms`, :func:`word_form`): a stem and the endings it may take, or a prefix.
The rules are the "Inflection" section of :mod:`monitor.match`'s docstring; this module
implements them (Russian, Kazakh, English). It does not split text into words
(:mod:`monitor.match.words`), parse queries, or look for words in text
(:mod:`monitor.match.plan`), and touches neither network nor database.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import field
from functools import cache
from typing import Final

from monitor.match.words import CYRILLIC_LETTER, LATIN_LETTER, is_nospace
from monitor.types import frozen

_IS_LATIN = re.compile(LATIN_LETTER).match
_IS_CYRILLIC = re.compile(CYRILLIC_LETTER).match


@frozen
class WordForm:
    """The words one query word stands for: ``stem`` + one of ``endings``, or ``stem``*."""

    stem: str
    endings: frozenset[str] = frozenset({""})
    prefix: bool = False
    letter: bool = field(init=False, compare=False)  # a no-space letter: a whole word

    def __post_init__(self) -> None:
        object.__setattr__(self, "letter", is_nospace(self.stem))

    def matches(self, word: str) -> bool:
        """Whether a normalised text word is one of the forms (the reference semantics)."""
        if not word.startswith(self.stem):
            return False
        return self.prefix or word[len(self.stem) :] in self.endings


def term_forms(
    words: Sequence[str],
    written: Sequence[str],
    language: str | None,
    *,
    prefix: bool = False,
    case_sensitive: bool = False,
) -> tuple[WordForm, ...]:
    """The word forms of a term's words (normalised; ``written``: as typed) under a
    watchlist's language; a case-sensitive term's are exact, a prefix's last is a prefix."""
    if case_sensitive:
        return tuple(WordForm(stem=w) for w in words)
    forms = [word_form(w, raw, language) for w, raw in zip(words, written, strict=True)]
    if prefix:
        forms[-1] = WordForm(stem=words[-1], prefix=True)
    return tuple(forms)


# Russian noun, adjective and surname endings, at most three letters (with ё folded to е).
RU_ENDINGS: Final = frozenset(
    {
        *("", "а", "я", "о", "е", "у", "ю", "ы", "и", "й", "ь"),
        *("ом", "ем", "ой", "ей", "ою", "ею", "ам", "ям", "ах", "ях", "ов", "ев"),
        *("ью", "ья", "ье", "ьи", "ым", "им", "ых", "их", "ая", "яя", "ое", "ее"),
        *("ую", "юю", "ые", "ие", "ий", "ый", "ого", "его", "ому", "ему", "ами", "ями"),
    }
)
# Endings removed from a Russian query word to find its stem, longest first.
RU_STEM_ENDINGS: Final = (
    *("ий", "ый", "ой", "ая", "яя", "ое", "ее", "ые", "ие"),
    *("а", "я", "о", "е", "ы", "и", "й", "ь", "у", "ю"),
)
RU_MIN_STEM: Final = 4
EN_MIN_WORD: Final = 3
EN_ENDINGS: Final = frozenset({"", "s", "es"})
LANGUAGES: Final = frozenset({"ru", "kk", "en", "none"})

# Kazakh: endings as folded text has them (қ ғ ң ә ө ұ ү -> к г н а о у у; і stays), front
# and back vowels and every consonant variant alike. Case endings, after nothing, a plural,
# a third-person possessive, or both: Тоқаевтың, Қазақстанда, Алматыдағы, елдерінің.
_KK_CASES: Final = (
    *("нын", "нін", "дын", "дін", "тын", "тін"),  # genitive
    *("га", "ге", "ка", "ке", "на", "не", "а", "е"),  # dative
    *("ны", "ні", "ды", "ді", "ты", "ті", "н"),  # accusative
    *("да", "де", "та", "те", "нда", "нде"),  # locative
    *("дан", "ден", "тан", "тен", "нан", "нен", "ндан", "нден"),  # ablative
    *("мен", "бен", "пен"),  # instrumental
    *("дагы", "дегі", "тагы", "тегі", "ндагы", "ндегі"),  # "the one in"
)
_KK_PLURALS: Final = ("лар", "лер", "дар", "дер", "тар", "тер")
_KK_POSSESSIVES: Final = ("ы", "і", "сы", "сі")
KK_ENDINGS: Final = frozenset(
    before + case
    for before in ("", *_KK_PLURALS, *_KK_POSSESSIVES, *(p + s for p in _KK_PLURALS for s in "ыі"))
    for case in ("", *_KK_CASES)
)
# Letters of Kazakh that Russian does not use (і aside: Ukrainian has it too): a query word
# written with one gets the Kazakh endings without ``language: kk``.
_KAZAKH_LETTERS: Final = frozenset("әғқңөұүһӘҒҚҢӨҰҮҺ")


def _script(word: str) -> str | None:
    """ "latin" or "cyrillic" when every letter is of that script; None otherwise."""
    letters = [c for c in word if c.isalpha()]
    if letters and all(_IS_CYRILLIC(c) for c in letters):
        return "cyrillic"
    if letters and all(_IS_LATIN(c) for c in letters):
        return "latin"
    return None


def _russian(word: str) -> WordForm:
    if len(word) < RU_MIN_STEM:
        return WordForm(stem=word)
    for ending in RU_STEM_ENDINGS:
        if word.endswith(ending):
            if len(word) - len(ending) >= RU_MIN_STEM:
                return WordForm(stem=word[: -len(ending)], endings=RU_ENDINGS)
            if len(ending) == 1:
                return WordForm(stem=word)  # "Мали", "Баку": too short to inflect safely
    return WordForm(stem=word, endings=RU_ENDINGS)


def _kazakh(word: str) -> WordForm:
    """The Russian forms (a Kazakh name in Russian text), and the word followed by Kazakh
    endings (:data:`KK_ENDINGS`)."""
    russian = _russian(word)
    if len(word) < RU_MIN_STEM:
        return russian
    endings = _kazakh_endings(word[len(russian.stem) :], russian.endings)
    return WordForm(stem=russian.stem, endings=endings)


@cache
def _kazakh_endings(rest: str, russian: frozenset[str]) -> frozenset[str]:
    """Shared by every word with the same rest after its stem (a set holds every Kazakh
    ending: too many strings to build again for each word)."""
    return russian | {rest + ending for ending in KK_ENDINGS}


def _english(word: str) -> WordForm:
    if len(word) < EN_MIN_WORD:
        return WordForm(stem=word)
    if len(word) > EN_MIN_WORD and word[-1] == "y" and word[-2] not in "aeiou":
        return WordForm(stem=word[:-1], endings=frozenset({"y", "ies"}))
    return WordForm(stem=word, endings=EN_ENDINGS)


_RULES: Final[dict[str, Callable[[str], WordForm]]] = {
    "ru": _russian,
    "kk": _kazakh,
    "en": _english,
}
_LANGUAGE_SCRIPT: Final = {"ru": "cyrillic", "kk": "cyrillic", "en": "latin"}


def word_form(word: str, written: str, language: str | None) -> WordForm:
    """The inflection rule for one normalised query word; ``written`` is it before folding.

    Acronyms (two or more letters, all upper case as written) and words with digits stay
    exact; ``language`` None picks the rule by script (Kazakh for a Cyrillic word written
    with a Kazakh letter), "none" turns inflection off.
    """
    if (len(written) >= 2 and written.isupper()) or any(c.isdigit() for c in word):
        return WordForm(stem=word)
    script = _script(word)
    if script is None or language == "none":
        return WordForm(stem=word)
    if language is None:
        kazakh = script == "cyrillic" and not _KAZAKH_LETTERS.isdisjoint(written)
        language = "kk" if kazakh else "ru" if script == "cyrillic" else "en"
    if _LANGUAGE_SCRIPT.get(language) != script:
        return WordForm(stem=word)
    return _RULES[language](word)
