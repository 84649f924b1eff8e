"""Tests of the parse stage (monitor/parse.py, monitor/jsonfeed.py, monitor/html.py).

The corpus in tests/data/feeds (74 real feeds, described in MANIFEST.tsv) is checked against
the golden file tests/data/parse_expected.json. To regenerate the golden values after an
intended change, run ``.venv/bin/python tests/test_parse.py`` and review the diff: the
"notes" entries are kept, and every count that differs from MANIFEST.tsv needs one.
"""

from __future__ import annotations

import codecs
import csv
import json
import pickle
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from monitor.errors import ParseError
from monitor.parse.feed import ENTITY_REFUSAL, parse_feed
from monitor.parse.html import html_to_text, inspect_html_page, plain_to_text, repair_mojibake
from monitor.types import ParsedFeed

DATA = Path(__file__).parent / "data"
FEEDS = DATA / "feeds"
GOLDEN = DATA / "parse_expected.json"
BASE = "https://feeds.example.org/"


def manifest() -> dict[str, dict[str, str]]:
    with (FEEDS / "MANIFEST.tsv").open(encoding="utf-8", newline="") as handle:
        return {row["file"]: row for row in csv.DictReader(handle, delimiter="\t")}


@cache
def parse_corpus_file(name: str) -> ParsedFeed:
    """Each corpus file is parsed once per test session, as if served with no headers."""
    return parse_feed((FEEDS / name).read_bytes(), url=BASE + name, headers={})


def golden_entry(parsed: ParsedFeed) -> dict[str, Any]:
    first = parsed.items[0] if parsed.items else None
    return {
        "items": len(parsed.items),
        "first_title": first.title if first else None,
        "first_key": first.key if first else None,
        "warning": parsed.warning is not None,
    }


def rss(items: str, *, channel: str = "", prolog: str = "") -> bytes:
    head = prolog or '<?xml version="1.0" encoding="utf-8"?>'
    return (
        f'{head}\n<rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">'
        f"<channel><title>T</title><link>https://site.example/</link>{channel}{items}"
        "</channel></rss>"
    ).encode()


def parse(body: bytes, url: str = "https://site.example/feed.xml", **headers: str) -> ParsedFeed:
    return parse_feed(body, url=url, headers={k.replace("_", "-"): v for k, v in headers.items()})


# --- the corpus -------------------------------------------------------------------------


CORPUS = sorted(manifest())


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_feed_matches_golden_counts_titles_keys_and_warnings(name: str) -> None:
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))["feeds"][name]
    assert golden_entry(parse_corpus_file(name)) == {
        key: expected[key] for key in ("items", "first_title", "first_key", "warning")
    }


def test_golden_explains_every_count_that_differs_from_the_manifest() -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))["feeds"]
    rows = manifest()
    assert sorted(golden) == sorted(rows)
    for name, entry in golden.items():
        assert entry["manifest_items"] == int(rows[name]["items"])
        if entry["items"] != entry["manifest_items"]:
            assert entry.get("notes"), f"{name}: count differs from MANIFEST.tsv, no note"


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_items_have_unique_keys_utc_dates_absolute_links_plain_text(name: str) -> None:
    parsed = parse_corpus_file(name)
    keys = [item.key for item in parsed.items]
    assert len(keys) == len(set(keys))
    for item in parsed.items:
        for date in (item.published, item.updated):
            assert date is None or date.utcoffset() == timedelta(0)
        assert item.link is None or item.link.startswith(("http://", "https://"))
        assert item.title == " ".join(item.title.split())
        assert "\x00" not in item.title + item.summary + item.content


# --- encodings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("rss2-cp1251-oren-news.xml", "В Бузулуке главные стройплощадки – детсад и Ледовый дворец"),
        ("rss2-cp1251-xakep.xml", "Руководители разведки США шутят об убийстве Сноудена"),
        ("rss2-cp1251-ibash.xml", "Цитата #17703"),
        ("rss2-koi8r-opennet.xml", "Выпуск Python 2.7.13"),
        ("rss-koi8r-nodecl-chardet-bozo.xml", "Как пережить новогоднюю ночь"),
        (
            "rss2-iso8859-7-liberal-gr.xml",
            "«Πορτραίτα καραντίνας» για έμπνευση από τη συλλογή Φέλιου",
        ),
        ("rss2-be-citydog-bom.xml", "Группа «Серебряная свадьба» ушла в бессрочный отпуск"),
        ("rdf-rss10-orf-at.xml", "US-Band New Edition mit Stern auf „Walk of Fame“ geehrt"),
        (
            "rss-nodecl-latin1-uol-noticias-bozo.xml",
            "Ibope: Bolsonaro perde de Haddad, Ciro e Alckmin em simulações de 2º turno",
        ),
    ],
)
@pytest.mark.parametrize("content_type", [None, "text/xml", "application/rss+xml", "text/html"])
def test_legacy_encodings_decode_to_exact_titles(
    name: str, title: str, content_type: str | None
) -> None:
    """Without a charset, RFC 3023 would read text/xml as US-ASCII and a missing
    Content-Type as ISO-8859-1; the parser must fall back to the declaration or chardet."""
    headers = {"content-type": content_type} if content_type else {}
    parsed = parse_feed((FEEDS / name).read_bytes(), url=BASE + name, headers=headers)
    assert parsed.items[0].title == title
    if "nodecl" not in name:  # declared: no "not an XML media type" or "guessed" warning
        assert parsed.warning is None


def test_koi8r_channel_title_is_cyrillic() -> None:
    parsed = parse_corpus_file("rss2-koi8r-opennet.xml")
    assert parsed.title == "OpenNews.opennet.ru: Общая лента новостей"


def test_charset_from_http_header_is_used_when_the_document_declares_none() -> None:
    body = (FEEDS / "rss-koi8r-nodecl-chardet-bozo.xml").read_bytes()
    parsed = parse(body, content_type="text/xml; charset=KOI8-R")
    assert parsed.items[0].title == "Как пережить новогоднюю ночь"
    assert parsed.warning is None  # declared, so nothing was guessed


def test_undeclared_encoding_that_had_to_be_guessed_gives_a_warning() -> None:
    parsed = parse_corpus_file("rss-koi8r-nodecl-chardet-bozo.xml")
    assert parsed.warning is not None and "KOI8-R" in parsed.warning


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_feed_is_decoded(codec: str) -> None:
    text = rss("<item><guid>1</guid><title>Алматы</title></item>").decode()
    body = text.replace('encoding="utf-8"', 'encoding="utf-16"').encode(codec)
    if codec != "utf-16":  # no byte-order mark: found from the "<?" pattern
        assert not body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    assert parse(body).items[0].title == "Алматы"


def test_byte_order_mark_outranks_a_wrong_charset_header() -> None:
    """RFC 7303 section 3.2. "Алматы" in UTF-16 happens to be valid UTF-8 too, so only the
    byte-order mark can tell the charset parameter is wrong."""
    prolog = '<?xml version="1.0"?>'
    text = rss("<item><guid>1</guid><title>Алматы</title></item>", prolog=prolog).decode()
    for body in (text.encode("utf-16"), codecs.BOM_UTF8 + text.encode()):
        parsed = parse(body, content_type="text/xml; charset=utf-8")
        assert parsed.items[0].title == "Алматы"


def test_double_encoded_utf8_is_repaired() -> None:
    parsed = parse_corpus_file("rss2-ru-yandex-news-moscow-mojibake.xml")
    assert parsed.title == "Яндекс.Новости: Москва"
    assert parsed.items[0].title == (
        "В Москве из-за сильных морозов объявлен «оранжевый» уровень опасности"
    )


def test_utf8_served_with_a_latin1_charset_is_repaired() -> None:
    body = rss("<item><guid>1</guid><title>Ташкент</title></item>")
    assert parse(body, content_type="text/xml; charset=iso-8859-1").items[0].title == "Ташкент"


@pytest.mark.parametrize("text", ["café", "Ærøskøbing", "SÃO PAULO", "naïve – “quoted”", "Ã la"])
def test_mojibake_repair_leaves_genuine_latin_text_alone(text: str) -> None:
    assert repair_mojibake(text) == text


# --- text -------------------------------------------------------------------------------


def test_summary_html_is_stripped_and_entities_decoded() -> None:
    description = (
        "&lt;p&gt;Talks in &lt;b&gt;Astana&lt;/b&gt; &amp;amp; Tashkent&amp;nbsp;today&lt;/p&gt;"
        "&lt;script&gt;track('x')&lt;/script&gt;&lt;style&gt;p {color: red}&lt;/style&gt;"
        "&lt;ul&gt;&lt;li&gt;one&lt;/li&gt;&lt;li&gt;two&amp;#8217;s&lt;/li&gt;&lt;/ul&gt;"
    )
    item = parse(rss(f"<item><guid>1</guid><description>{description}</description></item>"))
    assert item.items[0].summary == "Talks in Astana & Tashkent today\none\ntwo’s"


def test_corpus_summaries_carry_no_markup() -> None:
    item = parse_corpus_file("rss2-google-news-topstories.xml").items[0]
    assert "<" not in item.summary and "href" not in item.summary
    assert item.summary.splitlines()[1] == (
        "Manchin, Schumer agree to vastly pared back version of Build Back Better Fox News"
    )


def test_atom_xhtml_content_is_plain_text() -> None:
    item = parse_corpus_file("atom-intertwingly-samruby-xhtml.xml").items[0]
    assert item.content.startswith("The interface is a bit low level, but workable:\n")
    assert "<" not in item.content.split("\n")[0]


def test_atom_html_title_is_stripped() -> None:
    titles = [i.title for i in parse_corpus_file("atom-google-alerts.xml").items]
    assert titles[0] == (
        "Report offers Prediction of Automotive Slack Market by Top key players like Haldex, "
        "Meritor, Bendix ..."
    )
    assert not any("<b>" in title for title in titles)


def test_plain_text_title_keeps_angle_brackets() -> None:
    body = rss("<item><guid>1</guid><title>Use &lt;b&gt; for bold, a &lt; b</title></item>")
    assert parse(body).items[0].title == "Use <b> for bold, a < b"


def test_html_to_text_block_structure_and_preformatted_lines() -> None:
    html = (
        "<div>Head<br>line&nbsp;two</div><p>  spaced\n  out </p>"
        "<pre>x = 1\ny = 2</pre><table><tr><td>a</td><td>b</td></tr></table>"
        "<noscript>enable JS</noscript><svg><text>chart</text></svg>tail &amp; end"
    )
    assert html_to_text(html) == "Head\nline two\nspaced out\nx = 1\ny = 2\na\nb\ntail & end"


@pytest.mark.parametrize("pattern", ["<a ", "</", "<!", "<![CDATA[", "<?"])
def test_malformed_markup_does_not_take_quadratic_time(pattern: str) -> None:
    """html.parser rescans the rest of the input for each unclosed "<": 60 KB of "<a "
    took 22 s unguarded on Python 3.11.7. Guarded, 90 KB takes milliseconds."""
    started = time.perf_counter()
    text = html_to_text("x " + pattern * 30_000)
    assert time.perf_counter() - started < 5.0
    assert text.startswith("x " + pattern.strip())
    started = time.perf_counter()
    inspect_html_page("<html>" + pattern * 30_000, url="https://host.example/")
    assert time.perf_counter() - started < 5.0


def test_a_few_stray_angle_brackets_leave_markup_alone() -> None:
    assert html_to_text("if a < b and <b>bold</b> c <i>it</i>") == "if a < b and bold c it"


def test_text_drops_control_characters_and_replaces_lone_surrogates() -> None:
    assert plain_to_text("a\x00b\x07 c\ud800d\x0ce") == "ab c\ufffdd e"


# --- links ------------------------------------------------------------------------------


def test_root_relative_links_become_absolute_against_the_feed_url() -> None:
    url = "https://www.arcgames.com/en/games/neverwinter/news/rss"
    body = (FEEDS / "rss2-neverwinter-relative-urls.xml").read_bytes()
    parsed = parse_feed(body, url=url, headers={})
    assert parsed.link == "https://www.arcgames.com/en/games/neverwinter/news"
    assert parsed.items[0].link == (
        "https://www.arcgames.com/en/games/neverwinter/news/detail/"
        "10743874-neverwinter-%26-jingle-jam-humble-bundle%21"
    )


def test_item_xml_base_is_the_base_for_its_links() -> None:
    parsed = parse_corpus_file("rss2-insanity-industries-xmlbase-relurl.xml")
    assert parsed.items[0].link == "https://insanity.industries/post/pareto-optimal-compression/"
    body = rss(
        '<item xml:base="https://other.example/blog/"><guid>1</guid><link>post/1</link></item>'
    )
    assert parse(body).items[0].link == "https://other.example/blog/post/1"


def test_atom_relative_links_resolve_but_ids_stay_as_written() -> None:
    """feedparser given a content-location would rewrite ``t3_157kyrd`` into a URL, and
    keys would change whenever the feed URL does."""
    intertwingly = parse_corpus_file("atom-intertwingly-samruby-xhtml.xml")
    assert intertwingly.items[0].link == BASE + "blog/2012/07/16/Inhibiting-Suspend"
    assert parse_corpus_file("atom-reddit-mediarss.xml").items[0].key == "guid:t3_157kyrd"


def test_nested_yandex_related_links_do_not_replace_the_item_link() -> None:
    items = parse_corpus_file("rss2-ru-aif-yandex-turbo.xml").items
    assert len(items) == 100
    assert items[1].link == (
        "http://www.aif.ru/incidents/"
        "v_volgograde_policiya_zaderzhala_voditelya_gruzovika_posle_dtp_s_marshrutkoy"
    )


def test_non_http_links_are_dropped() -> None:
    body = rss("<item><title>x</title><link>javascript:alert(1)</link></item>")
    item = parse(body).items[0]
    assert item.link is None
    assert item.key.startswith("hash:")


# --- dates ------------------------------------------------------------------------------


def test_rss_dates_are_converted_to_utc() -> None:
    body = rss("<item><guid>1</guid><pubDate>Sat, 07 Jan 2017 16:52:27 +0300</pubDate></item>")
    item = parse(body).items[0]
    assert item.published == datetime(2017, 1, 7, 13, 52, 27, tzinfo=UTC)
    assert item.published.tzinfo is UTC
    assert item.updated is None  # not feedparser's "updated falls back to published"


def test_atom_entry_with_only_updated_has_a_date() -> None:
    item = parse_corpus_file("atom-intertwingly-samruby-xhtml.xml").items[0]
    assert item.published is None
    assert item.date == datetime(2012, 7, 16, 15, 48, 1, tzinfo=UTC)


def test_missing_and_unparseable_dates_are_none() -> None:
    body = rss("<item><guid>1</guid><pubDate>someday</pubDate></item><item><guid>2</guid></item>")
    assert [i.published for i in parse(body).items] == [None, None]


# --- JSON Feed --------------------------------------------------------------------------


def test_json_feed_items_are_read() -> None:
    parsed = parse_corpus_file("jsonfeed1-daringfireball.json")
    item = parsed.items[0]
    assert parsed.title == "Daring Fireball"
    assert item.title == "The Talk Show: ‘I Do Like Throwing a Baby’"
    assert item.link == "https://daringfireball.net/linked/2017/06/26/the-talk-show-195"
    assert item.author == "John Gruber"
    assert item.published == datetime(2017, 6, 27, 0, 54, 17, tzinfo=UTC)
    assert item.content.startswith("New episode of America’s favorite 3-star podcast")


def test_json_feed_title_entities_decoded_but_tags_kept_as_text() -> None:
    assert parse_corpus_file("jsonfeed11-influxdata-blog.json").title == "Blog – InfluxData"
    titles = [i.title for i in parse_corpus_file("jsonfeed11-fboes-blog.json").items]
    assert "Die Rückkehr von <i> und <b>" in titles  # the spec says titles are plain text


def test_json_feed_rfc822_dates_and_missing_ids_are_tolerated() -> None:
    item = parse_corpus_file("jsonfeed11-influxdata-blog.json").items[0]
    assert item.key == "link:" + item.link
    assert item.published == datetime(2019, 5, 31, 19, 17, 58, tzinfo=UTC)


def json_feed(items: list[dict[str, Any]], **extra: Any) -> bytes:
    document = {"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": items}
    return json.dumps(document | extra).encode()


def test_json_feed_detected_by_content_without_content_type() -> None:
    body = codecs.BOM_UTF8 + b"\n  " + json_feed([{"id": 7, "url": "/p/7", "title": "Seven"}])
    item = parse(body).items[0]
    assert (item.key, item.link, item.title) == ("guid:7", "https://site.example/p/7", "Seven")


def test_json_feed_authors_tags_and_html_content() -> None:
    entry = {
        "id": "a",
        "content_html": "<p>Hello <b>there</b></p>",
        "authors": [{"name": "Ann"}, {"name": "Bo"}],
        "tags": ["Kazakhstan", " Energy "],
        "date_modified": "2024-03-01T12:00:00+05:00",
    }
    item = parse(json_feed([entry]), content_type="application/feed+json").items[0]
    assert (item.content, item.author, item.categories) == (
        "Hello there",
        "Ann, Bo",
        ("Kazakhstan", "Energy"),
    )
    assert item.updated == datetime(2024, 3, 1, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', "invalid JSON Feed"),
        (b'{"version": "https://jsonfeed.org/version/1.1"}', "not a feed"),
        (b'{"name": "package.json"}', "not a feed"),
        (b"[1, 2]", "not a feed"),
    ],
)
def test_invalid_or_non_feed_json_raises_parse_error(body: bytes, message: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(body, content_type="application/json")
    assert caught.value.message.startswith(message)


# --- not a feed, malformed, empty ------------------------------------------------------


HTML_PAGE = b"""<!DOCTYPE html><html><head><title>News</title>%s</head>
<body><h1>News</h1><p>Read our <a href="/feed">feed</a>.</p></body></html>"""


def test_html_page_is_not_a_feed() -> None:
    with pytest.raises(ParseError) as caught:
        parse(HTML_PAGE % b"", url="https://host.example/news/")
    assert caught.value.message == "not a feed (HTML page)"
    assert caught.value.url == "https://host.example/news/"


def test_html_page_names_the_feed_it_advertises_as_an_absolute_url() -> None:
    link = b'<link rel="alternate" type="application/rss+xml" title="RSS" href="/feed.xml">'
    with pytest.raises(ParseError) as caught:
        parse(HTML_PAGE % link, url="https://host.example/news/", content_type="text/html")
    assert caught.value.message == (
        "not a feed (HTML page); it advertises a feed at https://host.example/feed.xml"
    )


def test_feed_link_discovery_honours_base_and_ignores_rest_api_json() -> None:
    page = (
        '<html><head><base href="https://cdn.example/a/">'
        '<link rel="alternate" type="application/json" href="/wp-json/wp/v2/pages/2">'
        '<link rel="alternate feed" type="application/atom+xml" href="atom.xml"></head></html>'
    )
    discovered = inspect_html_page(page, url="https://host.example/")
    assert discovered.feed_url == "https://cdn.example/a/atom.xml"


@pytest.mark.parametrize("body", [b"", b"  \n", b"<?xml version='1.0'?><note>hi</note>", b"junk"])
def test_empty_body_or_other_documents_are_not_feeds(body: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        parse(body)
    assert caught.value.message.startswith("not a feed")


def test_empty_valid_feed_is_not_an_error() -> None:
    parsed = parse_corpus_file("rss2-dailymail-world-empty.xml")
    assert (parsed.items, parsed.warning) == ((), None)
    assert parsed.title == "World News Articles | Mail Online"


def test_truncated_feed_of_known_type_is_empty_with_a_warning() -> None:
    parsed = parse_corpus_file("rss2-reuters-mostread-truncated-bozo.xml")
    assert parsed.items == ()
    assert parsed.warning == "malformed XML: no element found at line 19"


def test_malformed_feed_keeps_items_and_warns() -> None:
    parsed = parse_corpus_file("rss2-guardian-world-bozo.xml")
    assert len(parsed.items) == 54
    assert parsed.warning == "malformed XML: not well-formed (invalid token) at line 34"


def test_warning_line_is_the_documents_own_line_without_xml_declaration() -> None:
    body = (
        b'<rss version="2.0"><channel><title>T</title>\n<item><guid>1</guid>\n'
        b"<title>a & b</title></item></channel></rss>"
    )
    parsed = parse(body)
    assert parsed.warning == "malformed XML: not well-formed (invalid token) at line 3"
    assert parsed.items[0].title == "a & b"


# --- hostile XML ------------------------------------------------------------------------


XXE_VARIANTS = {
    "same line": '<!DOCTYPE rss [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
    "own lines": '<!DOCTYPE rss [\n<!ENTITY e SYSTEM "file:///etc/passwd">\n]>',
    "lower case": '<!doctype rss [<!entity e SYSTEM "file:///etc/passwd">]>',
    "after comment with tag": '<!-- <a> -->\n<!DOCTYPE rss [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
    "parameter entity": '<!DOCTYPE rss [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>',
}


@pytest.mark.parametrize("doctype", XXE_VARIANTS.values(), ids=XXE_VARIANTS.keys())
@pytest.mark.parametrize("codec", ["utf-8", "utf-16"])
def test_external_entity_is_refused_and_no_file_is_read(doctype: str, codec: str) -> None:
    body = rss(
        "<item><guid>1</guid><title>a &e; b</title><description>&e;</description></item>",
        prolog=f'<?xml version="1.0" encoding="{codec}"?>\n{doctype}',
    )
    body = body.decode().encode(codec)
    with pytest.raises(ParseError) as caught:
        parse(body)
    assert caught.value.message == ENTITY_REFUSAL
    assert "root:" not in str(caught.value)


def entity_bomb(levels: int = 10) -> bytes:
    declarations = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, levels)
    ]
    doctype = "<!DOCTYPE rss [\n" + "\n".join(declarations) + "\n]>"
    return rss(
        f"<item><guid>1</guid><title>&lol{levels - 1};</title></item>",
        prolog=f'<?xml version="1.0"?>\n{doctype}',
    )


def test_billion_laughs_is_refused_without_expanding() -> None:
    body = entity_bomb()
    assert len(body) < 2_000
    with pytest.raises(ParseError) as caught:
        parse(body)
    assert caught.value.message == ENTITY_REFUSAL


def test_quadratic_blowup_entity_is_refused() -> None:
    """The case feedparser's fallback parser really expands: one large "safe" entity
    used many times (10 KB x 2000 = 20 MB of title from a 30 KB document)."""
    doctype = f'<!DOCTYPE rss [\n<!ENTITY big "{"x" * 10_000}">\n]>'
    body = rss(
        f"<item><guid>1</guid><title>{'&big;' * 2000}</title></item>",
        prolog=f'<?xml version="1.0"?>\n{doctype}',
    )
    with pytest.raises(ParseError):
        parse(body)


def test_doctype_without_entities_and_entity_text_in_content_still_parse() -> None:
    netscape = (
        '<?xml version="1.0"?>\n<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"'
        ' "http://my.netscape.com/publish/formats/rss-0.91.dtd">'
    )
    assert parse(rss("<item><guid>1</guid><title>ok</title></item>", prolog=netscape)).items
    article = "<![CDATA[<p>An XXE payload looks like <code><!ENTITY e SYSTEM ...></code></p>]]>"
    body = rss(f"<item><guid>1</guid><description>{article}</description></item>")
    assert parse(body).items[0].summary == "An XXE payload looks like"


# --- identity ---------------------------------------------------------------------------


def test_duplicate_guid_keeps_the_first_item_only() -> None:
    body = rss(
        "<item><guid>same</guid><title>first</title></item>"
        "<item><guid>same</guid><title>second</title></item>"
        "<item><guid>other</guid><title>third</title></item>"
    )
    assert [(i.key, i.title) for i in parse(body).items] == [
        ("guid:same", "first"),
        ("guid:other", "third"),
    ]


def test_corpus_duplicate_guids_appear_once() -> None:
    figaro = parse_corpus_file("rss2-fr-lefigaro-culture-duplicate-guid.xml")
    duplicate = (
        "guid:http://www.lefigaro.fr/culture/encheres/2017/01/06/03016-20170106ARTFIG00268-"
        "hubert-de-givenchy-et-diego-giacometti-une-collection-sur-mesure.php"
    )
    assert [i.title for i in figaro.items if i.key == duplicate] == [
        "Hubert de Givenchy et Diego Giacometti: une collection sur mesure"
    ]
    braingle = parse_corpus_file("rss2-braingle-duplicate-guid-elements.xml")
    assert [i.key for i in braingle.items] == ["guid:http://www.braingle.com/50366.html"]


def test_untitled_items_have_empty_title_and_their_own_keys() -> None:
    scripting = parse_corpus_file("rss2-scriptingnews-untitled-items-dup-guid.xml")
    untitled = [i for i in scripting.items if i.title == ""]
    assert len(untitled) > 30
    body = rss("<item><description>1</description></item><item><description>2</description></item>")
    items = parse(body).items
    assert [i.title for i in items] == ["", ""]
    assert len({i.key for i in items}) == 2 and all(i.key.startswith("hash:") for i in items)


def test_empty_items_are_left_out() -> None:
    assert len(parse_corpus_file("rss2-pcmag-dvorak-illegally-nested.xml").items) == 10
    assert parse(rss("<item></item><item><guid>1</guid></item>")).items[0].key == "guid:1"


def test_key_prefers_stripped_guid_then_link_then_text_hash() -> None:
    body = rss(
        "<item><guid>\n  abc-1 \t</guid><link>https://site.example/a</link></item>"
        "<item><link>https://site.example/b</link><title>b</title></item>"
        "<item><title>c</title></item>"
    )
    keys = [i.key for i in parse(body).items]
    assert keys[:2] == ["guid:abc-1", "link:https://site.example/b"]
    assert keys[2].startswith("hash:") and len(keys[2]) == len("hash:") + 64


def edited(description: str, link: str = "https://site.example/a") -> ParsedFeed:
    return parse(
        rss(
            f"<item><guid>g</guid><title>T</title><link>{link}</link>"
            f"<description>{description}</description></item>"
        )
    )


def test_edit_changes_content_hash_but_not_key() -> None:
    before, after = edited("Version one").items[0], edited("Version two").items[0]
    assert before.key == after.key == "guid:g"
    assert before.content_hash != after.content_hash
    assert edited("Version one").items[0].content_hash == before.content_hash
    moved = edited("Version one", link="https://site.example/b").items[0]
    assert moved.content_hash != before.content_hash


def test_categories_and_author() -> None:
    body = rss(
        '<item xmlns:dc="http://purl.org/dc/elements/1.1/"><guid>1</guid>'
        "<category>Asia</category><category> Central Asia </category><category>Asia</category>"
        "<dc:creator>Jane Roe</dc:creator></item>"
    )
    item = parse(body).items[0]
    assert item.categories == ("Asia", "Central Asia")
    assert item.author == "Jane Roe"


# --- ttl ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ttl", "period", "frequency", "seconds"),
    [
        ("60", None, None, 3600.0),
        ("60", "daily", None, 3600.0),  # <ttl> first
        (None, "hourly", None, 3600.0),
        (None, "daily", "2", 43200.0),
        (None, " Weekly ", None, 604800.0),
        ("soon", None, None, None),
        ("0", None, None, None),
        (None, "fortnightly", None, None),
        (None, "daily", "0", None),
        (None, None, None, None),
    ],
)
def test_ttl_seconds(
    ttl: str | None, period: str | None, frequency: str | None, seconds: float | None
) -> None:
    channel = "".join(
        f"<{tag}>{value}</{tag}>"
        for tag, value in [
            ("ttl", ttl),
            ("sy:updatePeriod", period),
            ("sy:updateFrequency", frequency),
        ]
        if value is not None
    )
    assert parse(rss("", channel=channel)).ttl_seconds == seconds


def test_corpus_ttl_values() -> None:
    assert parse_corpus_file("rss2-moscowtimes-bom.xml").ttl_seconds == 600 * 60
    assert parse_corpus_file("rdf-rss10-orf-at.xml").ttl_seconds == 1800.0  # hourly / 2


# --- worker process -------------------------------------------------------------------------


def test_result_survives_pickling() -> None:
    parsed = parse_corpus_file("rss2-cp1251-ibash.xml")
    assert pickle.loads(pickle.dumps(parsed)) == parsed


def test_parse_feed_runs_in_a_process_pool() -> None:
    body = (FEEDS / "rss2-koi8r-opennet.xml").read_bytes()
    with ProcessPoolExecutor(max_workers=1) as pool:
        parsed = pool.submit(parse_feed, body, url=BASE, headers={}).result(timeout=60)
    assert parsed.items[0].title == "Выпуск Python 2.7.13"


def test_parse_error_crosses_the_process_boundary() -> None:
    with ProcessPoolExecutor(max_workers=1) as pool:
        future = pool.submit(parse_feed, HTML_PAGE % b"", url="https://host.example/", headers={})
        with pytest.raises(ParseError) as caught:
            future.result(timeout=60)
    assert (caught.value.url, caught.value.message) == (
        "https://host.example/",
        "not a feed (HTML page)",
    )


# --- golden file maintenance ----------------------------------------------------------


def regenerate_golden() -> None:
    """Rewrite parse_expected.json from the current parser, keeping the notes."""
    old = json.loads(GOLDEN.read_text(encoding="utf-8"))["feeds"] if GOLDEN.exists() else {}
    feeds = {}
    for name, row in manifest().items():
        entry = golden_entry(parse_corpus_file(name)) | {"manifest_items": int(row["items"])}
        if old.get(name, {}).get("notes"):
            entry["notes"] = old[name]["notes"]
        feeds[name] = entry
    document = {
        "about": "Expected parse results for tests/data/feeds (see tests/test_parse.py). "
        "items: unique items after de-duplication by key; manifest_items: the raw item "
        "count in MANIFEST.tsv; notes: why the two differ, checked by hand.",
        "feeds": feeds,
    }
    GOLDEN.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(regenerate_golden())
