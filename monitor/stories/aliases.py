"""Names that news uses interchangeably, folded to one before the story features count them:
"Fed" = "Federal Reserve", "U.S." = "United States" = "США", "CSTO" = "ОДКБ".

Input: the words of one text, as :mod:`monitor.stories.tokens` splits them (case kept).
Output: for a word that starts an alias, the canonical name and how many words it covers
(:func:`alias_at`). The table (:data:`_ALIASES`) is written by hand and kept to well-known
equivalences of countries, organisations, agencies and a few people, in English, Russian and
Kazakh: an alias only makes two ways of writing one name one token, so it adds no evidence
that two reports are one story beyond what the name itself already was. It does not split
text into words, and compares nothing.

Words are compared by their folded base (:func:`~monitor.stories.lexicon.base`), so
"Великобритании" is "Великобритания" and "Republican" is "Republicans". A phrase matches
whatever its case ("united nations"); a single word only as capitalised as the table writes
it: an acronym in capitals ("US", not "us"; "EU"), a name capitalised ("Fed", not "fed up").
The canonical name is Latin, so an English and a Russian report share its token and its
consonant skeleton.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from monitor.match.fold import normalize
from monitor.stories.lexicon import WORDS_KEPT, base

# Canonical name: the other ways news writes it, separated by "|". Adjectives ("Russian",
# "British") are not names of the country and are not listed; nor are metonyms ("Beijing").
_ALIASES: Final = {
    "US": "USA|United States|United States of America|США|Соединённые Штаты",
    "UK": "Britain|Great Britain|United Kingdom|Великобритания|Британия|Соединённое Королевство",
    "UN": "United Nations|ООН|Организация Объединённых Наций",
    "EU": "European Union|ЕС|Евросоюз|Европейский союз",
    "NATO": "North Atlantic Treaty Organization|НАТО|Североатлантический альянс",
    "CSTO": "Collective Security Treaty Organization|ОДКБ"
    "|Организация Договора о коллективной безопасности",
    "SCO": "Shanghai Cooperation Organization|ШОС|Шанхайская организация сотрудничества",
    "CIS": "Commonwealth of Independent States|СНГ|Содружество Независимых Государств",
    "WHO": "World Health Organization|ВОЗ|Всемирная организация здравоохранения",
    "IMF": "International Monetary Fund|МВФ|Международный валютный фонд",
    "ECB": "European Central Bank|ЕЦБ|Европейский центральный банк",
    "IAEA": "International Atomic Energy Agency|МАГАТЭ",
    "OPEC": "ОПЕК",
    "ISS": "International Space Station|МКС|Международная космическая станция",
    "FBI": "Federal Bureau of Investigation|ФБР",
    "CIA": "Central Intelligence Agency|ЦРУ",
    "UAE": "United Arab Emirates|ОАЭ|Объединённые Арабские Эмираты",
    "Fed": "Federal Reserve|US Federal Reserve|ФРС|Федеральная резервная система",
    "Russia": "Russian Federation|Россия|РФ|Российская Федерация",
    "China": "PRC|Китай|КНР",
    "Ukraine": "Украина|Україна",
    "Kazakhstan": "Казахстан|Қазақстан|Республика Казахстан",
    "Tokayev": "Токаев|Тоқаев",
    "Kremlin": "Кремль",
    "Pentagon": "Пентагон",
    "NASA": "НАСА",
    "Republicans": "GOP|Republican Party|республиканцы",
    "Democrats": "Dems|Democratic Party|демократы",
}
_MAX_WORDS: Final = 6


@lru_cache(maxsize=WORDS_KEPT)
def _key(word: str) -> str:
    """A word as the table compares it: folded (ё = е, қ = к), without its ending."""
    folded = normalize(word)
    return base(folded) if folded else folded


def _case(word: str) -> int:
    """What case a single-word alias asks of a word: 2 capitals, 1 a capital first."""
    if len(word) > 1 and word.isupper():
        return 2
    return 1 if word[0].isupper() else 0


def _build() -> dict[str, list[tuple[tuple[str, ...], int, str]]]:
    """First word's key -> (every word's key, the case a single word asks, the canonical),
    longest phrases first."""
    table: dict[str, list[tuple[tuple[str, ...], int, str]]] = {}
    for canonical, variants in _ALIASES.items():
        for variant in [canonical, *variants.split("|")]:
            words = variant.split()
            keys = tuple(_key(w) for w in words)
            case = _case(words[0]) if len(words) == 1 else 0
            table.setdefault(keys[0], []).append((keys, case, canonical))
    for entries in table.values():
        entries.sort(key=lambda e: -len(e[0]))
    return table


_TABLE: Final = _build()


def alias_at(words: list[str], n: int) -> tuple[str, int] | None:
    """The canonical name of the alias that starts at ``words[n]`` and the number of words
    it covers (the longest that matches), or None."""
    entries = _TABLE.get(_key(words[n]))
    if entries is None:
        return None
    word = words[n]
    for keys, case, canonical in entries:
        if len(keys) == 1:
            if (case == 2 and not word.isupper()) or (case == 1 and not word[0].isupper()):
                continue
            return canonical, 1
        if len(keys) <= len(words) - n and all(
            _key(words[n + i]) == keys[i] for i in range(1, len(keys))
        ):
            return canonical, len(keys)
    return None
