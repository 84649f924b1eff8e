"""Match stage: decide which watchlists an item matches, and explain why.

Input: an :class:`~monitor.types.Item` (text already plain) and its
:class:`~monitor.types.MatchContext`. Output: one :class:`~monitor.types.WatchlistMatch` per
matched watchlist, each listing the terms that matched, the field and a highlighted snippet.
Pure: no network, no database, no clock. It does not parse feeds, store or alert.

This docstring is the specification of matching; the tests check it rule by rule.

Query language
--------------
- A *word* (``Tokayev``) or a *phrase* in double quotes (``"World Cup"``; ``\\"`` and ``\\\\``
  escape inside quotes). A bare word with punctuation inside is a phrase of its words
  (``Kazakh-based`` = ``"Kazakh based"``).
- ``a AND b``, ``a b`` (adjacent terms: AND), ``a OR b``, ``NOT a`` and ``-a``, parentheses.
  Operators are upper case; ``and``/``or``/``not`` are ordinary words. Precedence from loose
  to tight: OR, AND, NEAR, NOT; so ``a b OR c`` = ``(a b) OR c`` and ``a NOT b OR c`` =
  ``(a AND NOT b) OR c``.
- ``word*``: any word starting with ``word`` (at least 2 letters before ``*``; only at the
  end of a bare word; inside quotes ``*`` is punctuation).
- ``field:term``, ``field:"a phrase"``, ``field:(a OR b)``: search only that field. Fields:
  title, summary, content, author, category, link, feed (the feed's configured name).
  Unscoped terms search title, summary and content only. Scopes do not nest.
- ``a NEAR/n b``: both terms occur in the same field with at most ``n`` words between them
  (either order; overlapping occurrences count as adjacent). Each side must be a single term
  (word, phrase or prefix, optionally scoped).
- ``="US"``: case-sensitive and exact (no inflection, no look-alike repair): matches ``US``,
  not ``us``. The ``=`` must be followed by a quoted term.
- A query must contain a term that has to occur for it to match: ``-football`` alone, or
  ``a OR NOT b``, is rejected. This is what lets the matcher evaluate only the watchlists
  with a hit (below).
- ``terms: [a, b]`` in the configuration is ``"a" OR "b"`` (:func:`terms_to_query`).
- Malformed queries raise :class:`~monitor.errors.QueryError` with the 0-based position and
  the reason (:func:`compile_query`); so does a term inside more than
  :data:`~monitor.match.query.MAX_NESTING` parentheses and NOTs.

Words and normalisation
-----------------------
Feed text and query terms are compared after the same normalisation (:mod:`monitor.match.fold`):
NFKC; format characters (soft hyphen, zero-width joiner, ...) removed; a lone surrogate
(which no encoding can carry) = U+FFFD, in snippets too; Unicode case folding
(the Turkish ``İ`` folds to plain ``i``, so ``İstanbul`` = ``Istanbul``); ``ё`` = ``е``; the
letters of Kazakh, Kyrgyz, Uzbek and Tajik Cyrillic = the Russian letters they are written as
in Russian (``ә ғ қ ң ө ұ ү һ ў ҳ ӣ ӯ ҷ`` = ``а г к н о у у х у х и у ч``: ``Тоқаев`` =
``Токаев``, ``Өскемен`` = ``Оскемен``; Russian uses none of them; ``і`` stays, as Ukrainian and
Belarusian tell it from ``и``); a word mixing Latin and Cyrillic letters is rewritten in the
script with more letters in it when every other letter has a look-alike there (``CSTО`` with
a Cyrillic ``О`` is ``csto``; a word that cannot be rewritten stays as it is).

A *word* is a maximal run of letters, digits and combining marks, in any script. Punctuation,
spaces, symbols and ``_`` separate words, so ``Kazakhstan's`` contains the word
``Kazakhstan`` and ``CSTOMER`` does not contain ``CSTO``. In scripts written without spaces
(Chinese, Japanese kana, Thai, Lao, Khmer, Myanmar) every letter is a word, so a term in them
is found inside longer runs. A term matches where its words occur as consecutive words of one
field; whatever separates them in the text (spaces, punctuation, line breaks) does not matter.

Inflection (per word of a term; acronyms and words with digits always stay exact)
-------------------------------------------------------------------------------------
- An *acronym* is a word of two or more letters written all in upper case in the query
  (``ОДКБ``, ``ЕАЭС``, ``США``, ``CSTO``): it matches only itself, case-insensitively.
- Russian (a word in Cyrillic letters): the stem is the word minus a final
  vowel/``й``/``ь`` or two-letter adjective ending (``Россия`` -> ``росси``; ``Казахстан``
  and ``Токаев`` are their own stems) when at least 4 letters remain; a word whose stem
  would be shorter than 4 letters, or that has fewer than 4 letters, stays exact (``Мали``,
  ``Баку``, ``Рим``). The word matches the stem followed by one of the endings in
  :data:`~monitor.match.inflect.RU_ENDINGS` (none, or up to three letters: ``а у е ом ой ами
  ого ...``). So ``Казахстан`` matches ``Казахстане``, ``Казахстана``, ``Казахстаном``;
  ``Токаев`` matches ``Токаева``, ``Токаеву``. Derived words (``казахстанский``) do not.
- Kazakh (a Cyrillic word written with a letter of Kazakh that Russian lacks, ``ә ғ қ ң ө ұ
  ү һ``; or any Cyrillic word under ``language: kk``): the Russian forms (a Kazakh name in
  Russian text), and also the word followed by a Kazakh ending of
  :data:`~monitor.match.inflect.KK_ENDINGS`: a case ending (genitive ``-ның``, dative ``-ға``,
  accusative ``-ны``, locative ``-да``, ablative ``-дан``, instrumental ``-мен``, ``-дағы``, in
  every vowel-harmony and consonant variant), after nothing, a plural (``-лар``), a
  third-person possessive (``-ы``, ``-сы``) or both. So ``Тоқаев`` matches ``Тоқаевтың``,
  ``Тоқаевқа``, ``Тоқаевпен`` and ``Токаева``; ``Қазақстан`` matches ``Қазақстанда`` and
  ``Қазақстандағы``. A word written the Russian way (``Токаев``) gets the Russian rule only:
  short Kazakh endings such as ``-ка`` would turn Russian words into noise (``Путинка``).
- English (a word in Latin letters, 3 letters or more): also with ``s`` or ``es``; a word
  ending in consonant + ``y`` also as ``ies`` (``party``/``parties``). Possessives need no
  rule: the apostrophe separates words.
- Other scripts: exact words.
- ``language:`` on a watchlist: ``ru`` applies only the Russian rule, ``kk`` the Kazakh one
  to every Cyrillic word, ``en`` only the English one, ``none`` none; unset applies each
  word's rule by its script (and its letters, for Kazakh).

Explanations
------------
Each :class:`~monitor.types.MatchDetail` names a term that made the query true (as written in
the query: a bare word with its ``*``, a phrase without its quotes or ``=``; for ``terms:``,
the original term), the field, and a snippet: about 80 characters of the ORIGINAL text of
that field around the first such occurrence in it, whitespace runs as one space, a word cut
by the window dropped, ``…`` where the field goes on, the occurrence wrapped in
:data:`HIGHLIGHT_START` (U+E000) and :data:`HIGHLIGHT_END` (U+E001). These private-use
characters are removed from feed text (they can never come from a feed), so a renderer
escapes the snippet, then turns them into ``<mark>``/``</mark>`` (or drops them for plain
text). One detail per (term, field), in query order. Terms under NOT are never listed;
every true branch of an OR is; for NEAR, in each field, the first occurrence of the left term
with one of the right term near it, and the first such one.
Watchlists come back in configuration order.

Cost
----
All terms of all watchlists are compiled once, when the :class:`Matcher` is built (a new set
of watchlists needs a new Matcher), into one Aho-Corasick automaton (ahocorasick-rs) over one
*anchor* per distinct term: the stem of its longest word. Per item, the fields are normalised
and scanned as one text (joined by a character no term can cross); an anchor found at a word
start is checked against the rest of each term it belongs to; then only the watchlists with a
positive term found are evaluated. So the cost per item grows with its length and its hits,
not with the number of watchlists. Folding and the check of each anchor found run in C
(:mod:`monitor.match._speedups`), from tables and candidate lists built in Python
(:mod:`monitor.match.fold`, :mod:`monitor.match.matcher`). What explains a match (a term's
first occurrence per field, its snippet) is worked out once per item and shared by the
watchlists that need it; offsets are mapped back to the original text only for those
snippets.

Modules
-------
In the order of the data: :mod:`~monitor.match.words` (what a word is, in any script),
:mod:`~monitor.match.fold` (normalisation), :mod:`~monitor.match.normtext` (offsets back
into the original, snippets), :mod:`~monitor.match.query` (query text -> tree),
:mod:`~monitor.match.inflect` (the forms a query word stands for), :mod:`~monitor.match.plan`
(how one term is found where its anchor is), :mod:`~monitor.match.evaluate` (a query's truth
on the terms found), :mod:`~monitor.match.explain` (the details of a match) and
:mod:`~monitor.match.matcher` (the :class:`Matcher`, which puts them together).
"""

from monitor.match.fold import HIGHLIGHT_END, HIGHLIGHT_START
from monitor.match.matcher import Matcher
from monitor.match.query import compile_query, terms_to_query

__all__ = [
    "HIGHLIGHT_END",
    "HIGHLIGHT_START",
    "Matcher",
    "compile_query",
    "terms_to_query",
]
