"""Words news writes one act with: an irregular verb's forms ("rose" for "rise", "fled" for
"flee") and a few words that name one event ("pullout" for "withdrawal"), folded to one
before the story features count them.

Input: a word's base, as :func:`~monitor.stories.lexicon.base` leaves it (folded, its regular
ending cut). Output: the base of the word the table writes for it (:func:`same_word`), or the
base itself. The tables are written by hand and kept to forms and synonyms that stand for
one act whatever the story: a common verb ("said", "took") folds to a common word and stays
of little weight, and no word is folded to a different act ("fell" is "fall", not "drop").
Names are :mod:`monitor.stories.aliases`'s; this module reads no text and compares nothing.

Left out on purpose: forms that are also other words in the news ("fed": the Fed; "met":
the Mets; "saw", "bit", "shot", "left", "found", "woke"; "drew": a given name).
"""

from __future__ import annotations

from typing import Final

from monitor.stories.lexicon import base

# The word, then the forms the stemmer does not bring to it.
_IRREGULAR: Final = """
arise arose arisen
beat beaten
begin began begun
break broke broken
bring brought
build built
buy bought
catch caught
choose chose chosen
drive drove driven
draw drawn
fall fell fallen
fight fought
flee fled
fly flew flown
forbid forbade forbidden
freeze froze frozen
give gave given
grow grew grown
hide hid hidden
hold held
keep kept
know knew known
lead led
lose lost
oversee oversaw overseen
overtake overtook overtaken
pay paid
rebuild rebuilt
rise rose risen
run ran
sell sold
send sent
seek sought
shake shook shaken
sink sank sunk
slay slain
speak spoke spoken
spend spent
steal stole stolen
stick stuck
strike struck
swear swore sworn
sweep swept
take took taken
tell told
throw threw thrown
uphold upheld
win won
withdraw withdrew withdrawn
withhold withheld
write wrote written
"""

# The word, then words news uses for the same act.
_SYNONYMS: Final = """
withdraw withdrawal pullout pull-out
"""


def _build() -> dict[str, str]:
    table: dict[str, str] = {}
    for lines in (_IRREGULAR, _SYNONYMS):
        for line in lines.strip().splitlines():
            word, *others = line.split()
            for other in others:
                table[base(other)] = base(word)
    return table


_SAME: Final = _build()


def same_word(root: str) -> str:
    """The base the tables write for ``root`` (a word's base), or ``root``."""
    return _SAME.get(root, root)
