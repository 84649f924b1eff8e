"""The pure "same story" decision: canonical links, titles, the similarity rule, the text
form of features, and hostile input (monitor.stories.features, similar, links)."""

from __future__ import annotations

import pytest

from monitor.stories import (
    THRESHOLD,
    StoryFeatures,
    canonical_link,
    dump_features,
    load_features,
    same_story,
    story_features,
    story_score,
)
from monitor.stories.features import CASE_BLIND, MAX_DUMP, normalize_title, strip_outlet
from monitor.stories.genre import genre

INT64 = range(-(2**63), 2**63)


def features(title: str, summary: str = "", link: str | None = None) -> StoryFeatures:
    return story_features(title=title, summary=summary, link=link)


# --- canonical links ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        "https://www.example.com/world/kazakhstan-protests?utm_source=rss&utm_medium=feed",
        "https://example.com/world/kazakhstan-protests?fbclid=IwAR0abc&gclid=xyz&yclid=1",
        "http://example.com/world/kazakhstan-protests/",
        "HTTPS://EXAMPLE.COM/world/kazakhstan-protests#comments",
        "https://m.example.com/world/kazakhstan-protests",
        "https://mobile.example.com/world/kazakhstan-protests",
        "https://amp.example.com/world/kazakhstan-protests",
        "https://example.com/world/kazakhstan-protests/amp",
        "https://example.com/amp/world/kazakhstan-protests",
        "https://example.com/world/kazakhstan-protests.amp",
        "https://example.com/world/kazakhstan-protests?amp",
        "https://example.com/world/kazakhstan-protests?outputType=amp",
        "https://example.com:443/world/kazakhstan-protests?mc_cid=1&mc_eid=2",
    ],
)
def test_tracking_amp_and_mobile_variants_are_the_desktop_link(variant: str) -> None:
    assert canonical_link(variant) == "https://example.com/world/kazakhstan-protests"


def test_article_parameters_are_kept_and_sorted() -> None:
    one = canonical_link("https://example.com/story?id=12&page=2&utm_campaign=x")
    other = canonical_link("https://example.com/story?page=2&id=12")
    assert one == other == "https://example.com/story?id=12&page=2"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://example.com/news/1", "https://example.com/news/2"),
        ("https://example.com/story?id=1", "https://example.com/story?id=2"),
        ("https://example.com/news/1", "https://example.org/news/1"),
    ],
)
def test_different_articles_keep_different_links(a: str, b: str) -> None:
    assert canonical_link(a) != canonical_link(b)


@pytest.mark.parametrize(
    "link", [None, "", "ftp://example.com/a", "mailto:x@example.com", "/relative", "http://[::1"]
)
def test_no_canonical_link_without_an_absolute_http_link(link: str | None) -> None:
    assert canonical_link(link) is None
    assert features("Tokayev signs decree on wages", link=link).link is None


def test_same_canonical_link_is_the_same_story_whatever_the_titles() -> None:
    a = features("One headline about anything", link="https://m.example.com/a?utm_source=x")
    b = features("Another wording entirely", link="https://example.com/a")
    assert a.link == b.link
    assert same_story(a, b)


# --- titles ------------------------------------------------------------------------------


def test_title_is_folded_and_punctuation_collapsed() -> None:
    a = normalize_title("Ёлки: Токаев подписал УКАЗ — о зарплатах!")
    b = normalize_title("елки  токаев подписал указ о зарплатах")
    assert a == b == "елки токаев подписал указ о зарплатах"


@pytest.mark.parametrize(
    ("title", "headline"),
    [
        ("Gunman indicted on 117 charges - CBS Chicago", "Gunman indicted on 117 charges"),
        ("Tony Dow, Beaver star, dies at 77 | USA TODAY", "Tony Dow, Beaver star, dies at 77"),
        ("Vitamin D and bone fractures | NEJM - nejm.org", "Vitamin D and bone fractures"),
        ("Signs of the Times | Protestors fight for their side", None),
        ("Short - CNN", None),
    ],
)
def test_trailing_outlet_name_is_removed(title: str, headline: str | None) -> None:
    """A part after the separator that is not a name, or a headline left too short, stays."""
    assert strip_outlet(title) == (headline or title)


def test_same_headline_from_two_outlets_is_the_same_story() -> None:
    a = features("Tokayev signs decree raising minimum wage - Kazinform")
    b = features("TOKAYEV SIGNS DECREE RAISING MINIMUM WAGE | The Astana Times")
    assert a.title == b.title is not None
    assert same_story(a, b)


def test_too_short_title_does_not_identify_a_story() -> None:
    assert features("Live updates").title is None
    assert features("What in the world?").title is None
    assert not same_story(features("Live updates"), features("Live updates"))


# --- the similarity rule ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "Highland Park shooting suspect has been indicted on 117 counts by a grand jury",
            "Highland Park Fourth of July shooting suspect Robert Crimo indicted on 117 counts",
        ),
        (
            "Tony Dow, known for playing Wally Cleaver on 'Leave It to Beaver,' dead at 77",
            "'Leave it to Beaver' actor Tony Dow dies at 77",
        ),
        (
            "Yankees acquire Andrew Benintendi from Royals",
            "KC Royals trade Andrew Benintendi to New York Yankees",
        ),
    ],
)
def test_rewritten_headlines_of_one_event_are_one_story(a: str, b: str) -> None:
    fa, fb = features(a), features(b)
    assert same_story(fa, fb)
    assert set(fa.keys) & set(fb.keys)  # the index finds one from the other


ALMATY_PROTEST = (
    "Protesters rally in Almaty against rising fuel prices",
    "Hundreds of people gathered in Republic Square in Almaty on Tuesday to protest against a"
    " sharp rise in the price of liquefied gas, and police detained about 40 of them, the city"
    " police department said.",
)
GAS_PRICE_CAP = (
    "Kazakhstan caps liquefied gas price at 50 tenge for 180 days",
    "The government of Kazakhstan on Tuesday set a maximum retail price of 50 tenge per litre"
    " of liquefied gas in the Mangystau region for 180 days, the energy ministry said.",
)


def test_two_kazakhstan_events_of_one_day_stay_two_stories() -> None:
    protest, cap = features(*ALMATY_PROTEST), features(*GAS_PRICE_CAP)
    assert not same_story(protest, cap)
    another_protest = features(
        "Almaty police detain 40 after rally in Republic Square",
        "Police in Almaty detained 40 people after an unsanctioned rally in Republic Square on"
        " Tuesday against rising fuel prices, the police department said.",
    )
    another_cap = features(
        "Government sets 180-day price cap of 50 tenge on liquefied gas",
        "Kazakhstan's government capped the retail price of liquefied gas at 50 tenge per litre"
        " in Mangystau for 180 days, the energy ministry said on Tuesday.",
    )
    assert same_story(protest, another_protest)
    assert same_story(cap, another_cap)
    assert not same_story(protest, another_cap)
    assert not same_story(another_protest, cap)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (  # one city, one day, two talks
            (
                "US and Iran reach 'guiding principles' in Geneva nuclear talks",
                "The US and Iran reached an understanding on key guiding principles at indirect"
                " nuclear talks in Geneva.",
            ),
            (
                "First day of Russia-Ukraine peace talks ends in Geneva",
                "Negotiations will continue on Wednesday, but expectations for a breakthrough on"
                " ending the war are low.",
            ),
        ),
        (  # one person, two first and last names
            ("Benjamin Netanyahu questioned for second time in graft probe", ""),
            ("Benjamin Netanyahu backs calls for pardoning Israeli soldier convicted", ""),
        ),
        (  # one hotel word, one city, one day: a fire and a bomb scare
            (
                "Пожар в гостинице на северо-востоке Москвы попал на видео",
                "На Ярославском шоссе на северо-востоке Москвы загорелась гостиница.",
            ),
            (
                "Из гостиницы в Москве эвакуировали 70 человек из-за сообщения о бомбе",
                "Из отеля на юго-востоке Москвы эвакуировали около 70 человек из-за сообщения об"
                " угрозе взрыва, передает Интерфакс.",
            ),
        ),
    ],
)
def test_same_day_events_sharing_words_stay_apart(a: tuple[str, str], b: tuple[str, str]) -> None:
    assert not same_story(features(*a), features(*b))


def test_english_and_russian_reports_with_names_and_numbers_are_one_story() -> None:
    en = features(
        "Mirziyoyev pardons 1,200 prisoners ahead of Uzbekistan's Independence Day",
        "Uzbek President Shavkat Mirziyoyev pardoned 1,200 convicts ahead of the 33rd"
        " anniversary of independence.",
    )
    ru = features(
        "Мирзиёев помиловал 1200 заключённых накануне Дня независимости",
        "Президент Узбекистана Шавкат Мирзиёев помиловал 1200 осуждённых в честь 33-летия"
        " независимости.",
    )
    assert same_story(en, ru)
    assert set(en.keys) & set(ru.keys)


def test_english_and_russian_sharing_only_a_person_and_his_office_stay_apart() -> None:
    en = features(
        "Tokayev meets Chinese Foreign Minister Wang Yi in Astana",
        "Kassym-Jomart Tokayev received Wang Yi in the Akorda to discuss transit and trade.",
    )
    ru = features(
        "Токаев подписал закон о масс-медиа",
        "Касым-Жомарт Токаев подписал новый закон о средствах массовой информации, сообщила"
        " Акорда.",
    )
    assert not same_story(en, ru)


def test_score_is_in_unit_range_and_symmetric_enough() -> None:
    a, b = features(*ALMATY_PROTEST), features(*GAS_PRICE_CAP)
    for x, y in ((a, b), (b, a), (a, a)):
        assert 0.0 <= story_score(x, y) <= 1.0
    assert story_score(a, a) == 1.0
    assert 0.0 < THRESHOLD < 1.0


# --- text form ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "item",
    [
        ALMATY_PROTEST,
        GAS_PRICE_CAP,
        ("Токаев подписал указ о повышении минимальной зарплаты до 85 000 тенге", ""),
        ("x", ""),
        ("", ""),
    ],
)
def test_dump_and_load_round_trip(item: tuple[str, str]) -> None:
    f = features(*item, link="https://example.com/a?b=c&utm_source=x")
    text = dump_features(f)
    assert len(text) <= MAX_DUMP
    assert load_features(text) == f


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "garbage",
        "s1\nhttps://x\ntitle\ntok\nnot base64!",
        "s1\n\n\n\nAAAA",
        "s2\n\n\n\n",
        "s1\n\n\n",
        "\x00" * 10_000,
        "s1\nlink\ntitle\ntokens\n1 2 3\nextra",
    ],
)
def test_load_of_garbage_gives_empty_features(garbage: str) -> None:
    loaded = load_features(garbage)
    assert loaded.tokens == frozenset()
    assert loaded.keys == ()
    assert not same_story(loaded, load_features(garbage))


def test_empty_features_match_nothing() -> None:
    empty = load_features("garbage")
    assert not same_story(empty, features(*ALMATY_PROTEST))
    assert story_score(features(*GAS_PRICE_CAP), empty) == 0.0


# --- bounds and hostile text ---------------------------------------------------------------


def test_a_one_megabyte_title_gives_bounded_features() -> None:
    huge = "Tokayev Almaty 2026 " * 50_000 + "x" * 100_000
    f = features(huge, huge, link="https://example.com/" + "a" * 1_000_000)
    text = dump_features(f)
    assert len(text) <= MAX_DUMP
    assert load_features(text) == f
    assert f.title is None or len(f.title) <= 300
    assert f.link is not None and len(f.link) <= 500


@pytest.mark.parametrize(
    "item",
    [
        ALMATY_PROTEST,
        ("Ten words " * 100, "summary " * 1000),
        ("Tokayev signs decree " + "9" * 5000, "Сумма " + "1 000 " * 300),
    ],
)
def test_keys_are_signed_64_bit_and_few(item: tuple[str, str]) -> None:
    f = features(*item, link="https://example.com/x")
    assert f.keys
    assert len(f.keys) <= 24
    assert all(isinstance(k, int) and k in INT64 for k in f.keys)
    assert len(set(f.keys)) == len(f.keys)


HOSTILE = [
    "\x00\x01\x02\x1b[31mred\x7f",
    "\u202eevil\u202c \u200f\u2066Tokayev\u2069 \ufeff",
    "\ud800 lone surrogate \udfff",
    "9" * 100_000,
    "1,000,000,000,000,000,000,000,000,000 $1e999 10" + ".5" * 1000,
    "e\u0301\u0301\u0301" * 10_000,
    "Ⅻ ﬁ ß ǅ İstanbul Қазақстан Тоқаев",
    "🇰🇿" * 5000,
    "-" * 10_000 + " | " * 5_000,
    "MOSUL, Iraq/BAGHDAD (Reuters) - " * 1000,
    "http://" + "a" * 5000,
    "\n\r\t" * 10_000,
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_never_raises(text: str) -> None:
    f = story_features(title=text, summary=text, link=text)
    assert len(dump_features(f)) <= MAX_DUMP
    assert "\x00" not in dump_features(f)  # PostgreSQL text holds no NUL
    assert load_features(dump_features(f)) == f
    other = features(*ALMATY_PROTEST)
    assert 0.0 <= story_score(f, other) <= 1.0
    assert 0.0 <= story_score(f, f) <= 1.0


@pytest.mark.parametrize("link", ["http://example.com:99999/x", "http://ex ample.com/\n", 42])
def test_hostile_links_never_raise(link: object) -> None:
    f = story_features(title="A title of several words", summary="", link=link)  # type: ignore[arg-type]
    assert f.link is None or f.link.startswith("https://")


# --- numbered things, genres, case ----------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [  # as other test suites make their items: each must stay a story of its own
        (("CSTO report 1", "text"), ("CSTO report 2", "text")),
        (("CSTO drill 1", "CSTO forces exercise."), ("CSTO drill 2", "CSTO forces exercise.")),
        (("CSTO drill 13", "CSTO forces exercise."), ("CSTO drill 14", "CSTO forces exercise.")),
        (("CSTO drill 0.1", "CSTO forces exercise."), ("CSTO drill 0.2", "CSTO forces exercise.")),
        (
            ("CSTO drill crash-00001", "CSTO forces exercise (crash-00001)."),
            ("CSTO drill crash-00002", "CSTO forces exercise (crash-00002)."),
        ),
        (("CSTO communique 3", "text"), ("CSTO communique 4", "text")),
        (("CSTO communique 2026-01-03", ""), ("CSTO communique 2026-01-04", "")),
        (("CSTO briefing 1", ""), ("CSTO briefing 2", "")),
        (("CSTO update 1.0", ""), ("CSTO update 1.1", "")),
        (
            ("Magnitude 5.8 quake strikes eastern Turkey, no casualties reported", ""),
            ("6.1-magnitude earthquake hits eastern Turkey", ""),
        ),
    ],
)
def test_a_numbered_thing_under_another_number_is_another_story(
    a: tuple[str, str], b: tuple[str, str]
) -> None:
    assert not same_story(features(*a), features(*b))
    assert same_story(features(*a), features(*a))


def test_one_number_in_two_wordings_is_one_story() -> None:
    a = features("Magnitude 6.1 quake strikes eastern Turkey, no casualties reported")
    b = features("6.1-magnitude earthquake hits eastern Turkey")
    assert same_story(a, b)


def test_numbers_that_change_between_reports_do_not_split_a_story() -> None:
    a = features("Mega Millions jackpot swells to over $1B after no winner in $830M drawing")
    b = features("No Mega Millions jackpot winner as prize climbs to $1.02 billion")
    assert same_story(a, b)


@pytest.mark.parametrize(
    ("headline", "kind"),
    [
        ("How the stock market has reacted on day of each Fed rate hike", "!e"),
        ("Why Indiana legislators should listen to all voices", "!e"),
        ("What Bangladesh's new leader means for South Asia", "!e"),
        ("N.F.L. Wild-Card Matchups: Who We Think Will Win", "!e"),
        ("Are Celtics fumbling their relationship with Jaylen Brown?", "!e"),
        ("Opinion: Pelosi's visit to Taiwan angers China", "!e"),
        ("Почему Токаев отправил правительство в отставку", "!e"),
        ("Russia-Ukraine news: live updates", "!r"),
        ("Morning Briefing: Pelosi lands in Taiwan", "!r"),
        ("Ports prepare to restart grain shipments; U.S. makes offer for Griner", "!r"),
        ("WHO chief advises men to reduce partners to limit monkeypox exposure", None),
        ("Ukraine war: Russia shells Kharkiv overnight", None),
        ("Tokayev signs decree raising minimum wage", None),
    ],
)
def test_explainers_opinion_and_roundups_are_told_from_news(
    headline: str, kind: str | None
) -> None:
    assert genre(headline) == kind


@pytest.mark.parametrize(
    "headline",
    [
        "Why Pelosi's visit to Taiwan angers China",
        "Opinion: Pelosi's visit to Taiwan angers China",
        "Morning Briefing: Pelosi's visit to Taiwan angers China",
    ],
)
def test_an_explainer_or_roundup_needs_more_evidence_than_a_report(headline: str) -> None:
    news = features("China warns of 'firm' response if Pelosi visits Taiwan")
    report = features("Pelosi's visit to Taiwan angers China")
    assert story_score(features(headline), news) < 0.7 * story_score(report, news)


def test_a_roundup_joins_a_story_only_on_stronger_evidence() -> None:
    news = features("US offers 'merchant of death' in exchange for Griner, Whelan")
    roundup = features(
        "Ukrainian ports prepare to restart grain shipments; U.S. makes offer for release"
        " of detained Americans Griner, Whelan"
    )
    report = features("U.S. makes offer for release of detained Americans Griner, Whelan")
    assert same_story(report, news)
    assert not same_story(roundup, news)


def test_a_title_case_headline_is_not_held_to_sharing_a_name() -> None:
    a = "Ford earnings top estimates as prices climb"
    b = "Ford beats earnings estimates as car prices climb"
    sentence = story_score(features(a), features(b))
    title = story_score(features(a.title()), features(b.title()))
    assert CASE_BLIND in features(a.title()).tokens
    assert CASE_BLIND not in features(a).tokens
    assert title > sentence


# --- aliases -----------------------------------------------------------------------------


def test_alias_pair_becomes_one_story() -> None:
    a = features("Collective Security Treaty Organization starts pulling troops from Almaty")
    b = features("CSTO starts pulling troops from Almaty")
    assert "csto" in a.tokens & b.tokens
    assert same_story(a, b)


def test_csto_and_odkb_across_languages_are_one_story() -> None:
    en = features("CSTO sends 2,500 troops to Kazakhstan at Tokayev's request")
    ru = features("ОДКБ направит 2500 военных в Казахстан по просьбе Токаева")
    assert "~kst" in en.tokens & ru.tokens
    assert same_story(en, ru)


def test_alias_alone_does_not_merge_two_events() -> None:
    a = features("Federal Reserve raises interest rates by 0.75%, matching June's move")
    b = features("The problem with a persistently late Federal Reserve")
    c = features("Fed chair warns of slower growth in speech to Congress")
    assert not same_story(a, b)
    assert not same_story(a, c)


def test_alias_words_match_only_in_their_case() -> None:
    assert "_us" not in features("Voters tell us they want lower prices at the pump").tokens
    assert "_us" in features("Voters in the United States want lower prices").tokens
