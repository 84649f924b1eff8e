"""Word lists and word shapes for the story features: stop words, common news words, number
words, stems and the Latin/Cyrillic consonant skeleton of a name.

Input: one folded word (:func:`monitor.match.fold.normalize`'s output). Output: its stem, its
weight class, or its skeleton. The lists are written by hand (no corpus statistics are
shipped): stop words carry no evidence and are dropped; common news words ("says",
"president", "police", "заявил") are kept with a low weight, since two reports of different
events share them all the time; any other word, and any number that is not a year or a small
count, is evidence. It does not split text into words and does not compare anything.
"""

from __future__ import annotations

from typing import Final

# How many letters of a word, after its ending is cut, identify it ("indicted" and "indicts"
# -> "indict", "Казахстане" and "Казахстан" -> "казахс").
STEM_LENGTH: Final = 6
# Words whose analysis each per-word cache of the stories keeps: the news's vocabulary grows
# for as long as the service runs, so each cache is bounded (at 16,384 words the three held
# 11 MB; at this size 4 MB, for most of the hits).
WORDS_KEPT: Final = 4096

_EN_STOP: Final = """
a about above after again against ago all also am an and any are aren around as at be
because been before being below between both but by can cannot could couldn did didn do does
doesn doing don down during each either else ever every few for from further get gets getting
got had hadn has hasn have haven having he her here hers herself him himself his how however
i if in into is isn it its itself just let ll me might more most much must mustn my myself
no nor not now of off on once only or other others ought our ours ourselves out over own
per re s same shan she should shouldn so some such t than that the their theirs them
themselves then there these they this those through to too toward towards under until up
upon us ve very via was wasn we were weren what when where whether which while who whom whose
why will with within without won would wouldn yet you your yours yourself yourselves
here's it's that's there's what's who's let's
"""

_RU_STOP: Final = """
а без более бы был была были было быть в вам вас весь во вот все всего всех вы где да даже
для до его ее ей ему если есть еще же за здесь и из или им их к как ко когда который
которая которые которого которой котором кто ли либо мне может мы на над надо наш не него
нее нет ни них но ну о об однако он она они оно от очень по под при про с со так также
такой там те тем то того тоже той только том ты у уже хотя чего чей чем что чтобы чье чья
эта эти это этого этой этом этот я
"""

# Words in most news items, whatever the event: kept, with a low weight.
_EN_COMMON: Final = """
according accused action added administration agency agreed agreement ahead air amid announced
another anniversary answers april area army arrested attack attacks august authorities away
back bad ban bank became become begins behind best better big bill billion black body border
breaking business call called calls campaign case change charged charges chief children city
claim claims close comes coming companies company concerns conference congress control cost
council countries country court crisis cut daily data day days deal death deaths december
decision defence defense deputy despite details died dies director done early east economic
economy election end ends energy europe european event expected face faces family february
federal fight final financial fire first foreign former found free friday full future game
games give global going good government governments great group groups growing half head
health help high highest history hit hold home hospital hours house huge human hundreds
inside international interview investigation issue january july june key killed killing know
known largest last late latest law leader leaders leave left legal less life like likely
line live local long look looks lost low made major make makes making man many march market
may measures media meeting meet member members men military million minister ministry monday
money month months move moves national near need needs never new news next night north
november number october office officer officers official officials old one open opinion
order part party past pay people plan plans play police political power president presidential
press price prices prime probe program public put question quarter race raises rate rates
reach read ready real record reform region released report reported reports republic return
rights rise rises risk round rule rules run said saturday say says second security see seen
september service set show shows side since six small social south special spokesman staff
start state states statement step still stop story strike sunday support surge take takes
talks team tell tells test third thursday time times today told top total trade tuesday turn
two under union update updates use used video view vote war warns watch way wednesday week
weekend weeks west whole wins woman women work workers world year years young
app apps elect president-elect reuters ap afp associated interfax tass ria xinhua
athlete athletes champion championship coach cup final games gold league match medal medals
olympic olympics player players season semifinal silver bronze tournament victory win winter
"""

_RU_COMMON: Final = """
администрация власти власть вопрос вопросы время второй главы глава года год годы города город
государство граждан группа даже дела день деньги для должны дом заявил заявила заявили заявление
из-за информации итоги как компании компания который которые край крупный лет люди мая мер меры
министр министерство мир млн млрд может можно москве москва напомним начал начала недели неделя
несколько новости новые новый новых области область один однако октября около опубликовал
первый планирует по поводу пока получил понедельник после потом правительство президент
премьер пресс-служба пресс-службе приняли причины проблемы против процесс работы работу
раз рамках решение решил решили риа россии россия российские ру сам сегодня сейчас сказал
сказала словам случае сми сообщает сообщается сообщил сообщили составил спб среду страна
страны сути сша теперь тысяч уже украина украины управления участие февраля федерации
фото центр час часов человек чтобы января передает ссылкой источник интерфакс тасс восток
запад север юг попал попали подписал подписала подписали закон указ
"""

_NUMBER_WORDS: Final = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "dozen": 12,
    "hundred": 100,
    "thousand": 1000,
}

STOP_WORDS: Final = frozenset(_EN_STOP.split()) | frozenset(_RU_STOP.split())

# English endings, longest first, cut when at least three letters are left.
_EN_ENDINGS: Final = ("'s", "’s", "ings", "ing", "ies", "ied", "ed", "s")
# Russian noun and adjective endings, longest first, cut when at least three letters are left;
# not -ов/-ев, which end surnames (Токаев, Токаева and Токаевым are one stem).
_RU_ENDING_LIST: Final = """
ами ями ого его ому ему ыми ими ым им ых их ах ях ей ой ий ый ая яя ое ее ую юю ом ем ам ям
а я ы и у ю е о ь й
"""
_RU_ENDINGS: Final = tuple(sorted(_RU_ENDING_LIST.split(), key=len, reverse=True))
_CYRILLIC_LOW: Final = "а"
_CYRILLIC_HIGH: Final = "я"


def stem(word: str) -> str:
    """The first :data:`STEM_LENGTH` letters of :func:`base`."""
    return base(word)[:STEM_LENGTH]


def base(word: str) -> str:
    """A folded word without its ending (and, in English, a final "e" or a doubled
    consonant: "samples" = "sample", "planning" = "plan"; Эрдоганом = Эрдоган)."""
    if _CYRILLIC_LOW <= word[-1] <= _CYRILLIC_HIGH:
        for ending in _RU_ENDINGS:
            if word.endswith(ending) and len(word) - len(ending) >= 3:
                return word[: -len(ending)]
    elif word.isascii() and word.isalpha():
        return _english_stem(word)
    return word


def _english_stem(word: str) -> str:
    for ending in _EN_ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            if ending == "s" and word[-2] in "siu":  # boss, crisis, virus
                break
            word = word[: -len(ending)]
            if ending in ("ies", "ied"):
                return word + "y"
            break
    if len(word) >= 4 and word.endswith("eed"):  # "exceed" as "exceeds": its "ed" is no ending
        word = word[:-1]
    while len(word) >= 4 and word.endswith("e"):  # agree, agreed -> agr
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2]:  # planning -> plan, so kill = killed = kil
        word = word[:-1]
    return word


# Places, people and organisations in the news every day: names, but ones that tell no story
# from another (two reports about Russia on one day are rarely one story).
_EN_FREQUENT: Final = """
afghanistan africa african america american americans apple asia australia australian beijing
berlin biden brazil britain british canada chinese china congress democrat democrats egypt
england english france french gaza german germany google india indian iran iranian iraq
israel israeli italy japan japanese kazakhstan kremlin kyiv london meta mexico microsoft
moscow nasa nato new obama pakistan palestinian paris president putin republican
republicans russia russian saudi senate spain syria taiwan tehran trump turkey ukraine
ukrainian washington white york zelensky
"""
_RU_FREQUENT: Final = """
америка американский байден британия великобритания германия европа израиль индия иран китай
киев кремль казахстан казахстанский москва московский нато путин россиянин российский
трамп турция украинский франция зеленский
"""

# Given names: "Donald", "Marco" or "Касым" in two reports tell nothing the surname does not.
_GIVEN_NAMES: Final = """
adam ahmed alan albert alex alexander alexei alexey ali alice amanda amy andrea andrew andrey
angela ann anna anne anthony antonio barack ben benjamin bernard bill bob boris brian carlos
charles charlie chris christian christopher claire daniel david dmitry donald edward elizabeth
emily emma emmanuel eric frank fred friedrich gary george gordon greg hans harry helen henry
hillary ian igor isaac jack jacob james jane jason javier jean jeff jennifer jessica jim joe
john jonathan jordan jose joseph juan julia justin karen kassym kate keir kevin kim kristi
laura lee linda lisa luis marco maria marie mark martin mary matthew michael michelle mike
mohammed muhammad nancy nicholas nicolas nikolai olaf oleg olga paul pedro peter rachel richard
robert ryan sam sarah scott sergei sergey shavkat simon stephen steve steven susan thomas tim
tom viktor vladimir volodymyr william yulia yury
александр алексей анна андрей борис владимир дмитрий елена иван игорь касым жомарт мария
михаил николай олег ольга павел сергей татьяна шавкат юлия юрий
"""

# Acronyms in most news items (kept apart from the stop words: "US" is not "us").
_COMMON_ACRONYMS: Final = "us usa uk eu un ai tv ceo"

COMMON_STEMS: Final = frozenset(
    stem(w)
    for lexicon in (_EN_COMMON, _RU_COMMON, _EN_FREQUENT, _RU_FREQUENT, _GIVEN_NAMES)
    for w in lexicon.split()
    if w not in STOP_WORDS
) | frozenset(_COMMON_ACRONYMS.split())


def number_word(word: str) -> int | None:
    """The number an English number word or ordinal stands for ("third" = "3rd" = 3)."""
    return _NUMBER_WORDS.get(word)


# Latin and Cyrillic letters -> one consonant class each; vowels, h/х, y/й and the signs are
# dropped, so that Tokayev = Токаев (tkv), Kazakhstan = Казахстан (kzstn), Navalny = Навальный.
_SKELETON: Final = str.maketrans(
    {
        **dict.fromkeys("aeiouyhjъьаеёиоуыэюяйх", None),
        **{c: c for c in "bdfgklmnprstvz"},
        "w": "v",
        "c": "k",
        "q": "k",
        "x": "ks",
        "б": "b",
        "в": "v",
        "г": "g",
        "д": "d",
        "ж": "z",
        "з": "z",
        "к": "k",
        "л": "l",
        "м": "m",
        "н": "n",
        "п": "p",
        "р": "r",
        "с": "s",
        "т": "t",
        "ф": "f",
        "ц": "ts",
        "ч": "ч",
        "ш": "s",
        "щ": "s",
    }
)
# Digraphs read before the letters: English "ch" is Russian ч, "kh" is х, "zh" is ж.
_DIGRAPHS: Final = (("ch", "ч"), ("kh", "h"), ("zh", "z"), ("sh", "s"), ("ph", "f"), ("ck", "k"))


def skeleton(word: str) -> str:
    """The consonant skeleton of a folded Latin or Cyrillic name, for comparing reports of one
    event in English and Russian; "" for other scripts. Doubled consonants count once."""
    for digraph, single in _DIGRAPHS:
        if digraph in word:
            word = word.replace(digraph, single)
    shape = word.translate(_SKELETON)
    if not shape.isascii() and any(c != "ч" and not c.isascii() for c in shape):
        return ""
    out: list[str] = []
    for c in shape:
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)
