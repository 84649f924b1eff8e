"""Hostile documents at the parse stage: text that could not be stored or would rewrite a
terminal is cleaned at the item boundary, whatever the format; entity declarations are
refused in whatever encoding the parser would read them; HTML stripping stays linear on
markup that html.parser looks ahead for in vain; and no exception but ParseError leaves
parse_feed."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import ParseError
from monitor.parse.feed import ENTITY_REFUSAL, parse_feed
from monitor.parse.html import html_to_text, inspect_html_page
from monitor.types import Item, ParsedFeed

URL = "https://site.example/feed.xml"
# What no field may hold: lone surrogates, and C0 (but tab and line feed), DEL and C1.
UNSTORABLE = re.compile("[\ud800-\udfff\x00-\x08\x0b-\x1f\x7f-\x9f]")
# What no single-line field may hold besides: line breaks and bidirectional controls.
NOT_ONE_LINE = re.compile("[\n\u202a-\u202e\u2066-\u2069]")
HOSTILE = "A\u202eB\x1b[31mC\x00D\x9b2J\u2066E\x07F\x0cG\ud800H"
CLEAN_TITLE = "AB[31mCD2JEF G\ufffdH"  # controls dropped, form feed a space, U+FFFD
# feedparser reads a C1 control in XML as the windows-1252 character of its byte
CLEAN_XML_TITLE = CLEAN_TITLE.replace("D2J", "D\u203a2J")


def parse(body: bytes, **headers: str) -> ParsedFeed:
    return parse_feed(body, url=URL, headers={k.replace("_", "-"): v for k, v in headers.items()})


def assert_clean(item: Item) -> None:
    single = [item.title, item.author, item.guid or "", item.link or "", *item.categories]
    for text in [*single, item.summary, item.content, item.key]:
        assert not UNSTORABLE.search(text), repr(text)
        text.encode("utf-8")  # storable and hashable
    for text in single:
        assert not NOT_ONE_LINE.search(text), repr(text)


def xml_escaped(text: str) -> str:
    """``text`` as an XML 1.0 document can carry it: C1 controls as they are, the rest as
    character references, which feedparser's lenient parser decodes even where XML
    forbids the character (a reference in U+0080-U+009F would be read as windows-1252)."""
    return "".join(
        c if c.isalnum() or c in " [" or "\x80" <= c <= "\x9f" else f"&#{ord(c)};" for c in text
    )


def test_rss_item_text_is_cleaned() -> None:
    hostile = xml_escaped(HOSTILE)
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>'
        f"{hostile}</title><item><guid>g{hostile}</guid><title>{hostile}</title>"
        f"<link>https://site.example/a{xml_escaped(chr(0x202E))}b</link>"
        f"<description>{hostile}</description><author>{hostile}</author>"
        f"<category>{hostile}</category></item></channel></rss>"
    ).encode()
    parsed = parse(body)
    (item,) = parsed.items
    assert_clean(item)
    assert parsed.title == item.title == CLEAN_XML_TITLE
    assert item.link == "https://site.example/a%E2%80%AEb"


def test_atom_entry_text_is_cleaned() -> None:
    hostile = xml_escaped(HOSTILE)
    body = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>T</title><entry><id>urn:{hostile}</id><title>{hostile}</title>"
        f'<link href="https://site.example/{xml_escaped(chr(0x1B))}x"/>'
        f'<summary>{hostile}</summary><content type="html">&lt;p&gt;{hostile}&lt;/p&gt;'
        f"</content><author><name>{hostile}</name></author>"
        f'<category term="{hostile}"/></entry></feed>'
    ).encode()
    (item,) = parse(body).items
    assert_clean(item)
    assert item.title == CLEAN_XML_TITLE


def test_json_feed_lone_surrogates_and_controls_are_cleaned() -> None:
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": HOSTILE,
            "items": [
                {
                    "id": "\ud800",
                    "url": "https://site.example/\ud800\u202e\x00",
                    "title": HOSTILE,
                    "content_text": HOSTILE,
                    "summary": HOSTILE,
                    "authors": [{"name": HOSTILE}],
                    "tags": [HOSTILE],
                },
                {"id": 2, "url": "https://site.example/\udfff", "title": "second"},
            ],
        }
    ).encode()  # json.dumps writes lone surrogates as "\ud800" escapes
    assert b"\\ud800" in body
    parsed = parse(body)
    first, second = parsed.items
    for item in parsed.items:
        assert_clean(item)
    assert parsed.title == first.title == CLEAN_TITLE
    assert first.guid == "\ufffd" and first.key == "guid:\ufffd"
    assert first.link == "https://site.example/%EF%BF%BD%E2%80%AE%00"
    assert second.link == "https://site.example/%EF%BF%BD"


def test_messages_about_a_document_are_one_clean_line() -> None:
    declared = '<?xml version="1.0" encoding="x\x1b[31m\u202e"?>'
    body = f'{declared}<rss version="2.0"><channel><title>T</title></channel></rss>'
    warning = parse(body.encode()).warning
    assert warning is not None and "x[31m" in warning
    page = b'<html><link rel="alternate" type="application/rss+xml" href="/f\x1b[2J\n.xml">'
    with pytest.raises(ParseError) as caught:
        parse(page, content_type="text/html")
    for text in (warning, caught.value.message):
        assert not UNSTORABLE.search(text) and not NOT_ONE_LINE.search(text)


def rss_items(*titles: str, image: str = "") -> bytes:
    items = "".join(
        f"<item><guid>{n}</guid><title>{t}</title></item>" for n, t in enumerate(titles)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{image}{items}'
        "</channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    "reference", ["&#xD800;", "&#57343;", "&#x110000;", "&#99999999999;", "&#" + "9" * 5000 + ";"]
)
def test_a_reference_to_no_character_costs_only_that_character(reference: str) -> None:
    parsed = parse(rss_items("first", f"a{reference}b", "third"))
    assert [item.title for item in parsed.items] == ["first", "a\ufffdb", "third"]


def test_markup_the_lenient_parser_raises_on_costs_only_that_markup() -> None:
    image = "<image><url>https://site.example/i.png</url><width>88<br></width></image>"
    parsed = parse(rss_items("first", "second", image=image))
    assert [item.title for item in parsed.items] == ["first", "second"]
    assert parsed.title == "T"
    assert parsed.warning is not None and "skipped" in parsed.warning


# --- entity declarations in encodings that are not ASCII-compatible --------------------

DOCTYPE = '<!DOCTYPE rss [<!ENTITY a "{}"><!ENTITY b "{}">]>'.format("x" * 1000, "&a;" * 10)
FEED = (
    '<rss version="2.0"><channel><title>T</title>'
    "<item><guid>1</guid><title>{}</title></item></channel></rss>"
)
UTF7_DECLARATION = '<!DOCTYPE rss [+ADw-!ENTITY a "{}"+AD4-]>'.format("x" * 1000)


def declared(encoding: str) -> str:
    return f'<?xml version="1.0" encoding="{encoding}"?>'


ENCODED = {
    "cp037 by charset": ((DOCTYPE + FEED.format("&b;" * 100)).encode("cp037"), "cp037"),
    "cp500 by charset": ((DOCTYPE + FEED.format("&b;" * 100)).encode("cp500"), "cp500"),
    "cp875 declared": ((declared("cp875") + DOCTYPE + FEED.format("&b;")).encode("cp875"), ""),
    "utf-7 declared": ((declared("utf-7") + UTF7_DECLARATION + FEED.format("&a;")).encode(), ""),
    "utf-7 by charset": ((UTF7_DECLARATION + FEED.format("&a;")).encode(), "utf-7"),
    "utf-16 without mark": ((DOCTYPE + FEED.format("&b;")).encode("utf-16-be"), "utf-16-be"),
    "utf-32 without mark": ((DOCTYPE + FEED.format("&b;")).encode("utf-32-le"), "utf-32-le"),
}


@pytest.mark.parametrize(("body", "charset"), ENCODED.values(), ids=ENCODED.keys())
def test_entity_declarations_are_refused_in_any_encoding_the_parser_reads(
    body: bytes, charset: str
) -> None:
    content_type = f"application/rss+xml; charset={charset}" if charset else "application/rss+xml"
    with pytest.raises(ParseError) as caught:
        parse(body, content_type=content_type)
    assert caught.value.message == ENTITY_REFUSAL


def test_feeds_in_those_encodings_without_entities_still_parse() -> None:
    feed = FEED.format("Привет")
    assert parse((declared("utf-7") + feed).encode("utf-7")).items[0].title == "Привет"
    ebcdic = FEED.format("Hello").encode("cp037")
    assert parse(ebcdic, content_type="application/rss+xml; charset=cp037").items[0].title == (
        "Hello"
    )


# --- JSON that the decoder refuses by raising something else ------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"title": "t", "items": [{"id": 1' + b"0" * 5000 + b"}]}",  # too many digits
        b'{"title": "t", "items": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # too deep
    ],
    ids=["long number", "deep nesting"],
)
def test_json_the_decoder_refuses_is_a_parse_error(body: bytes) -> None:
    with pytest.raises(ParseError, match="invalid JSON Feed"):
        parse(body)


# --- HTML stripping stays linear ----------------------------------------------------------

UNCLOSED = [
    "<![CDATA[ >",
    "<!-- x >",
    "<![ >",
    "<? >",
    "<!x >",
    "</ >",
    "<!DOCTYPE x",
    "<a x='y'z='>",
    '<a x="',
    "<a <b",
]


def best_time(function: Callable[[str], object], text: str, limit: float = float("inf")) -> float:
    """The best of three rounds, in CPU time of this process (other processes on the
    machine do not count); a round over ``limit`` ends the measure."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        function(text)
        best = min(best, time.process_time() - started)
        if best > limit:
            break
    return best


def page(text: str) -> object:
    return inspect_html_page(text, url="https://host.example/")


@pytest.mark.parametrize("function", [html_to_text, page], ids=["html_to_text", "page"])
@pytest.mark.parametrize("pattern", UNCLOSED)
def test_unclosed_markup_is_stripped_in_linear_time(
    pattern: str, function: Callable[[str], object]
) -> None:
    """Eight times the input takes about eight times as long (sixty-four if quadratic)."""
    repeats = 100_000 // len(pattern)
    small = max(best_time(function, "x " + pattern * repeats), 0.002)
    large = best_time(function, "x " + pattern * repeats * 8, limit=24 * small)
    assert large < 24 * small, (small, large)


def test_a_marked_section_html_parser_cannot_parse_is_text() -> None:
    assert html_to_text("a <![ > b <![foo[ c ]]> d") == "a <![ > b <![foo[ c ]]> d"


def test_a_few_unclosed_constructs_are_parsed_as_written() -> None:
    assert html_to_text("<p>a</p><!-- unclosed comment") == "a\n<!-- unclosed comment"
    assert html_to_text('<a title="x>y">link</a> <!DOCTYPE html>') == "link"


MARKUP = st.lists(
    st.sampled_from(
        [
            "<",
            ">",
            "<!",
            "<!--",
            "-->",
            "<![",
            "]]>",
            "]>",
            "<?",
            "</",
            "<a",
            "<p>",
            "</p>",
            "<![CDATA[",
            "<![if x]",
            "<!DOCTYPE",
            "'",
            '"',
            "=",
            " ",
            "x",
            "&",
            "&#",
            "&lt;",
            "<script>",
            "</script>",
            "\n",
            "/",
            "\x00",
            "\ud800",
            "\u202e",
        ]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=500, deadline=None)
@given(MARKUP)
def test_html_to_text_never_raises_and_returns_clean_text(fragment: str) -> None:
    text = html_to_text(fragment)
    assert not UNSTORABLE.search(text)
    page(fragment)
