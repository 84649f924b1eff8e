"""One act or one number written several ways in the story features: shares in percent and
in basis points, irregular verb forms, words news uses for one event
(monitor.stories.tokens, monitor.stories.synonyms, monitor.stories.lexicon); and the
scorer that weighs a new item against its stored candidates (monitor.stories.similar)."""

from __future__ import annotations

import pytest

from monitor.stories import StoryFeatures, dump_features, same_story, story_features, story_score
from monitor.stories.lexicon import base
from monitor.stories.similar import Scorer
from monitor.stories.synonyms import same_word


def features(title: str, summary: str = "") -> StoryFeatures:
    return story_features(title=title, summary=summary, link=None)


def numbers(text: str) -> set[str]:
    return {t for t in features(text).tokens if t[0] in "#%"}


# --- shares: percent, percentage points, basis points ---------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Fed raises rates by 0.75%",
        "Fed raises rates by 0.75 %",
        "Fed raises rates by 0.75 percent",
        "Fed raises rates by 0.75 per cent",
        "Fed raises rates by 0.75 percentage point",
        "Fed raises rates by 75 basis points",
        "Fed raises rates by 75bps",
        "Fed raises rates by 75 bp",
        "Fed delivers 75-basis-point hike",
        "Fed raises rates by 0.750%",
        "ФРС повысила ставку на 0,75 п.п.",
        "ФРС повысила ставку на 75 базисных пунктов",
        "ФРС повысила ставку на 0,75 процентного пункта",
    ],
)
def test_a_share_is_one_number_whatever_its_unit(text: str) -> None:
    assert numbers(text) == {"#0.75"}
    assert not {"basis", "point", "percen", "процен", "пункт", "пп", "бп"} & features(text).tokens


def test_different_shares_stay_different_numbers() -> None:
    assert numbers("rates up 50 basis points") == {"#0.5"}
    assert numbers("rates up 50%") == {"#50"}
    assert numbers("rates up 100 basis points") == numbers("rates up 1%") == {"%1"}
    assert numbers("BP shares up 5") == {"%5"}  # BP the company is not a basis point
    assert numbers("version 1.10 released") == {"#1.10"}  # no unit: written as it is


def test_a_rate_move_in_basis_points_and_in_percent_is_one_story() -> None:
    points = features("ECB raises rates by 50 basis points in first hike in 11 years")
    percent = features("ECB lifts interest rates 0.5% in first increase since 2011")
    assert same_story(points, percent)


def test_the_word_percent_is_no_evidence_of_its_own() -> None:
    word = features("Qualcomm sales rose 37 percent on strong smartphone demand")
    sign = features("Qualcomm sales rose 37% on strong smartphone demand")
    assert word.tokens == sign.tokens


# --- verbs and the words of one act -----------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "verb"),
    [
        ("Navalny aides fled Russia", "Navalny aides flee Russia"),
        ("Oil prices rose after OPEC cut", "Oil prices rise after OPEC cut"),
        ("Hackers stole $600 million from Ronin", "Hackers steal $600 million from Ronin"),
        ("Markets fell as Lagarde spoke", "Markets fall as Lagarde speaks"),
        ("Gunmen struck a convoy in Sahel", "Gunmen strike a convoy in Sahel"),
    ],
)
def test_an_irregular_verb_form_is_the_verb(form: str, verb: str) -> None:
    assert features(form).tokens == features(verb).tokens


def test_a_pullout_is_a_withdrawal() -> None:
    assert features("Russia announces ISS pullout").tokens == (
        features("Russia announces ISS withdrawal").tokens
    )
    a = features("NASA hopes to keep ISS operating despite Russia pullout threat")
    b = features("'It's an opportunity for NASA': Russia announces ISS withdrawal")
    assert same_story(a, b)


@pytest.mark.parametrize("word", ["fed", "met", "saw", "left", "found", "drew", "shot"])
def test_forms_that_are_other_words_in_the_news_are_left_alone(word: str) -> None:
    assert same_word(base(word)) == base(word)


def test_a_verb_ending_in_eed_has_one_stem() -> None:
    assert base("exceed") == base("exceeds") == base("exceeded")
    assert base("agree") == base("agreed") == base("agrees")
    assert base("need") == base("needs") == base("needed")


# --- the scorer ---------------------------------------------------------------------------

PAIRS = [
    ("Reactions after Fed hikes rates by another 75 basis points", ""),
    ("The Fed just raised interest rates by another 0.75%", ""),
    ("CSTO drill 1 begins in Kazakhstan", "CSTO forces exercise near Almaty."),
    ("CSTO drill 2 begins in Kazakhstan", "CSTO forces exercise near Almaty."),
    ("Why Pelosi's visit to Taiwan angers China", ""),
    ("China warns of 'firm' response if Pelosi visits Taiwan", ""),
    (
        "Mirziyoyev pardons 1,200 prisoners ahead of Uzbekistan's Independence Day",
        "Uzbek President Shavkat Mirziyoyev pardoned 1,200 convicts, his press service said.",
    ),
    (
        "Мирзиёев помиловал 1200 осуждённых накануне Дня независимости",
        "Президент Узбекистана Шавкат Мирзиёев помиловал 1200 осуждённых.",
    ),
    ("Ford Earnings Top Estimates As Prices Climb", ""),
    ("Ford beats earnings estimates as car prices climb", ""),
    (
        "Protesters rally in Almaty against rising fuel prices",
        "Hundreds gathered in Republic Square in Almaty, and police detained about 40.",
    ),
    (
        "Almaty police detain 40 after rally in Republic Square",
        "Police in Almaty detained 40 people after a rally in Republic Square.",
    ),
    ("Police say former mayor Koval was detained in western Lviv", ""),
    ("Koval detained in Lviv, police say", ""),
    (
        "Koval's aides say Mayor Koval was detained",
        "Security officers searched his office on Monday morning, a statement said.",
    ),
    ("Koval detained, aides say", "Investigators seized documents overnight, his lawyer said."),
]


def test_a_word_named_in_either_item_weighs_as_a_name() -> None:
    plain = features("Koval detained in Lviv, police say")  # "Koval" opens the headline
    named = features("Police say former mayor Koval was detained in western Lviv")
    unnamed = features("police say former mayor koval was detained in western lviv")
    assert "^koval" in named.tokens and "^koval" not in plain.tokens | unnamed.tokens
    assert story_score(named, plain) > story_score(unnamed, plain)
    assert story_score(plain, named) == story_score(named, plain)


def test_scoring_a_stored_candidate_is_scoring_its_features() -> None:
    """The store scores each candidate from its stored text with one item's scorer: the
    same score as the pair rule, for every pair (numbered things, two scripts, headlines
    with summaries, names in one item only)."""
    items = [features(*pair) for pair in PAIRS]
    bare = {"koval", "lviv", "detain", "^koval", "@l"}  # hand-built: no totals to read
    items += [
        StoryFeatures(link=None, title=None, tokens=frozenset(bare | {x}), keys=()) for x in "ab"
    ]
    passing = 0
    for b in items:
        scorer = Scorer(b)
        for a in items:
            expected = story_score(a, b)
            assert scorer.score(a) == pytest.approx(expected, abs=1e-12)
            assert scorer.score_stored(dump_features(a)) == pytest.approx(expected, abs=1e-12)
            assert story_score(b, a) == pytest.approx(expected, abs=1e-12)
            passing += a is not b and same_story(a, b)
    assert passing >= 8  # the pairs do pass, not only score zero


@pytest.mark.parametrize(
    "garbage", ["", "garbage", "s1\nhttps://x\ntitle\ntok\nnot base64!", "s1\n\n\n\nAAA", "s2\n\n"]
)
def test_a_stored_candidate_that_is_not_features_scores_nothing(garbage: str) -> None:
    item = StoryFeatures(link="https://x", title="title", tokens=frozenset({"tok"}), keys=())
    assert Scorer(item).score_stored(garbage) == 0.0
