"""Which headlines are not one report of one event: explainers and opinion, and roundups.

Input: a headline (the outlet's name already cut). Output: a mark token, ``!e`` for an
explainer, an analysis or an opinion ("How …", "Why …", "What … means", a question,
"Opinion: …"), ``!r`` for a roundup ("Morning Briefing: …", "Live updates", several
stories joined by ``;`` or ``|``), or None for a news report. Both take up the words of
news stories without being one: :mod:`monitor.stories.similar` wants more evidence before
such an item joins a story. It reads the headline's form only and compares nothing.
"""

from __future__ import annotations

import re
from typing import Final

from monitor.match.fold import cased

EXPLAINER: Final = "!e"
ROUNDUP: Final = "!r"

# A part of the headline (its start, or after a colon, a dash or a question) opening with a
# question word: "How the stock market reacted …", "Matchups: Who We Think Will Win".
# Capitalised as a word, not shouted, for "Who" (WHO is an agency).
_QUESTION = re.compile(
    r"(?:^|[:?!—–]\s+|\s-\s)[\"'“‘«]?"
    r"(?:How|Why|What|Which|Who|Where|When|Should|HOW|WHY|WHAT|WHICH|"
    r"Как|Почему|Зачем|Что|Кто|Какие|Какой|Чем|КАК|ПОЧЕМУ)\b"
)
_QUESTION_END = re.compile(r"\?[\s\"'”’»)]*$")
# A kicker naming the genre, or a phrase that only explainers use.
_EXPLAINER_WORDS = re.compile(
    r"^\s*(?:opinion|analysis|explainer|explained|commentary|editorial|column|perspective|"
    r"review|reaction|fact[ -]?check|q ?& ?a|letters?|мнение|колонка|анализ|разбор|"
    r"комментарий)\s*[:|—–-]"
    r"|\b(?:what to know|what we know|what you need to know|things to know|explained|"
    r"what it means|что известно|что нужно знать)\b",
    re.IGNORECASE,
)
_ROUNDUP_WORDS = re.compile(
    r"\b(?:live updates?|live blog|as it happened|briefing|newsletter|roundup|round-up|"
    r"week in review|news wrap|morning report|evening report|today's headlines|"
    r"top stories|главное за|главные новости|итоги дня|онлайн-трансляция)\b"
    r"|^\s*live\s*[:|—–-]",
    re.IGNORECASE,
)
# Two clauses side by side: "Ports prepare to restart grain shipments; U.S. makes offer".
_CLAUSES = re.compile(r"\S\s*;\s*\S|\S\s+[|•]\s+\S")


def genre(headline: str) -> str | None:
    """:data:`EXPLAINER`, :data:`ROUNDUP` or None (module docstring)."""
    text = cased(headline[:300]).strip()
    if not text:
        return None
    if _EXPLAINER_WORDS.search(text):
        return EXPLAINER
    if _ROUNDUP_WORDS.search(text) or _CLAUSES.search(text):
        return ROUNDUP
    if _QUESTION_END.search(text) or _QUESTION.search(text):
        return EXPLAINER
    return None
