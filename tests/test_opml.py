"""OPML in and out (``monitor.opml``), on real exports (tests/data/opml/MANIFEST.tsv) and on
hostile files: what is read, what is skipped and why, what is refused whole, and that an
export reads back as the same feeds, names and tags."""

from __future__ import annotations

import csv
import re
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.controls import UNSAFE
from monitor.opml import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_OUTLINES,
    OpmlError,
    OpmlFeed,
    export_name,
    parse_opml,
    read_opml,
    write_opml,
)

DATA = Path(__file__).parent / "data" / "opml"
MANIFEST = list(csv.DictReader((DATA / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t"))
READABLE = [row["file"] for row in MANIFEST if row["file"] != "hostile-billion-laughs.opml"]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
_XML_URL = re.compile(r'xmlUrl="([^"]*)"')


def test_the_manifest_lists_every_file_with_its_origin_and_license() -> None:
    listed = {row["file"] for row in MANIFEST}
    assert listed == {p.name for p in DATA.iterdir()} - {"MANIFEST.tsv"}
    assert all(row["project"] and row["origin path"] and row["license"] for row in MANIFEST)


@pytest.mark.parametrize("name", READABLE)
def test_every_xml_url_is_imported_or_skipped_with_a_reason(name: str) -> None:
    """The file's own text is the oracle: each distinct xmlUrl is accounted for once."""
    listing = read_opml(DATA / name)
    written = {u.strip() for u in _XML_URL.findall((DATA / name).read_text(encoding="utf-8"))}
    imported = {f.url for f in listing.feeds}
    skipped = {s.url.strip() for s in listing.skipped if s.url}
    assert len(imported) == len(listing.feeds)
    assert imported | (skipped & written) == written
    assert all(s.reason for s in listing.skipped)


@pytest.mark.parametrize("name", READABLE)
def test_an_export_reads_back_as_the_same_feeds_names_and_tags(name: str) -> None:
    listing = read_opml(DATA / name)
    exported = write_opml(listing.feeds, title="round trip", now=NOW)
    root = ET.fromstring(exported)  # well-formed for a strict XML parser
    assert root.tag == "opml" and root.get("version") == "2.0"
    again = parse_opml(exported, "export")
    assert set(again.feeds) == set(listing.feeds)
    assert again.skipped == () and again.title == "round trip"


def test_a_readers_export_keeps_folders_as_tags_and_non_ascii_names() -> None:
    feeds = {f.url: f for f in read_opml(DATA / "netnewswire-Subs.opml").feeds}
    assert feeds["http://feeds.feedburner.com/alistapart/main"].tags == {"Programming"}
    assert feeds["http://daringfireball.net/feeds/main"].tags == frozenset()
    assert feeds["http://www.gerrold.com/feed/"].tags == {"Writers"}
    assert feeds["http://swift.ayaka.me/posts?format=RSS"].name == "Learn Swift ↯"
    assert feeds["http://optshiftk.com/feed/"].name == "⌥⇧K"
    assert feeds["http://corinnekrych.blogspot.com/feeds/posts/default"].name == "chat & code"
    assert {u.split(":")[0] for u in feeds} == {"http", "https"}


def test_a_malformed_real_export_still_gives_its_feeds() -> None:
    """Plenary wrote a title with raw double quotes: no XML parser accepts the file, a
    reader's import should."""
    with pytest.raises(ET.ParseError):
        ET.fromstring((DATA / "plenary-Russia.opml").read_bytes())
    feeds = {f.url: f for f in read_opml(DATA / "plenary-Russia.opml").feeds}
    assert feeds["https://lenta.ru/rss"].name == "Lenta.ru : Новости"
    assert feeds["https://www.kommersant.ru/RSS/main.xml"].tags == {"Russia"}
    assert all(f.tags == {"Russia"} for f in feeds.values())


@pytest.mark.parametrize(
    ("name", "tags"),
    [
        ("listparser-hier-4-mixed.xml", {"grouping", "tag", "parent", "child"}),
        ("listparser-tags-4-bad.xml", {"tag1", "tag2"}),
        ("listparser-outline-duplication-2.xml", {"hier1", "hier2"}),
    ],
)
def test_folders_and_category_paths_become_tags(name: str, tags: set[str]) -> None:
    [feed] = read_opml(DATA / name).feeds
    assert feed.tags == tags


def test_a_url_listed_twice_is_one_feed_and_counted() -> None:
    listing = read_opml(DATA / "listparser-outline-duplication-2.xml")
    assert len(listing.feeds) == 1 and listing.repeated == 1


def test_html_entities_in_attributes_are_read() -> None:
    names = {f.name for f in read_opml(DATA / "listparser-attribute-node.xml").feeds}
    assert names == {"archæology"}


def test_an_included_list_is_skipped_not_fetched() -> None:
    listing = read_opml(DATA / "listparser-outline_type-include.xml")
    assert listing.feeds == ()
    [skipped] = listing.skipped
    assert "included list" in skipped.reason and skipped.url == "http://domain.com/sublist/"


def test_billion_laughs_is_refused_at_once() -> None:
    started = time.perf_counter()
    with pytest.raises(OpmlError, match="DOCTYPE") as raised:
        read_opml(DATA / "hostile-billion-laughs.opml")
    assert str(DATA / "hostile-billion-laughs.opml") in str(raised.value)
    assert time.perf_counter() - started < 1


HOSTILE_REASONS = {
    "https://bell.example/feed": "name 'Bell \\x07 in the name' contains a control character",
    "https://escape.example/feed": "contains a control character",
    "https://bidi.example/feed": "\\u202e",
    "javascript:alert(1)": "not an http(s) URL (javascript:)",
    "file:///etc/passwd": "not an http(s) URL (file:)",
    "ftp://ftp.example/feed.xml": "not an http(s) URL (ftp:)",
    "/feed.xml": "not an absolute URL",
    "https://spaces.example/a feed.xml": "invalid URL: the URL contains spaces",
    "https:///feed.xml": "invalid URL: must be an absolute http(s) URL",
    "https://long.example/" + "a" * 2100: "URL longer than 2048 characters (2121)",
    "https://long-name.example/feed": "name must be at most 200 characters, got 201",
    "https://folder.example/feed": "folder or category 'Bad folder \\x07'",
    "https://lists.example/more.opml": "an included list",
}


def test_each_hostile_entry_is_skipped_with_its_reason() -> None:
    listing = read_opml(DATA / "hostile-entries.opml")
    reasons = {s.url: s.reason for s in listing.skipped}
    assert reasons.keys() == HOSTILE_REASONS.keys()
    for url, expected in HOSTILE_REASONS.items():
        assert expected in reasons[url], (url, reasons[url])
    assert {f.url: f.name for f in listing.feeds} == {
        "https://fine.example/feed.xml": "Fine https",
        "http://fine.example/rss": "Fine http, title over two lines",  # white space folded
    }


def outlines(inner: str) -> bytes:
    return f'<?xml version="1.0"?><opml version="2.0"><body>{inner}</body></opml>'.encode()


def test_input_that_stalls_pythons_html_parser_is_read_in_linear_time() -> None:
    """``<a b="`` repeated: Python 3.11's html.parser (listparser's fallback) took 400 s on
    240 KB here; the parser used must read a megabyte of it at once."""
    data = outlines('<a b="' * 200_000)
    started = time.perf_counter()
    assert parse_opml(data, "stall.opml").feeds == ()
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (outlines('<outline text="f">' * (MAX_DEPTH + 1)), f"nested more than {MAX_DEPTH}"),
        (outlines('<outline text="f"/>' * (MAX_OUTLINES + 1)), f"more than {MAX_OUTLINES}"),
        (b"", "not an OPML document"),
        (b"<html><body><p>a web page</p></body></html>", "not an OPML document"),
        (b'<rss version="2.0"><channel><title>a feed</title></channel></rss>', "not an OPML"),
        (outlines("")[:-10], "ends before </opml>"),
        (b'<?xml version="1.0" encoding="klingon"?><opml></opml>', "unknown encoding 'klingon'"),
        (b"<opml><body><outline text='\xff\xfe'/></body></opml>", "not valid utf-8 (byte 27)"),
        (b'<!DOCTYPE opml SYSTEM "file:///etc/passwd"><opml></opml>', "<!DOCTYPE>"),
    ],
)
def test_a_file_that_is_not_a_usable_list_is_refused_naming_it(data: bytes, message: str) -> None:
    with pytest.raises(OpmlError, match=re.escape(message)) as raised:
        parse_opml(data, "bad.opml")
    assert str(raised.value).startswith("bad.opml: ")


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.opml"
    path.write_bytes(outlines("") + b" " * MAX_BYTES)
    with pytest.raises(OpmlError, match="larger than 16 MiB"):
        read_opml(path)
    with pytest.raises(OpmlError, match=f"{re.escape(str(tmp_path / 'none.opml'))}: cannot be"):
        read_opml(tmp_path / "none.opml")


KZ = '<opml><body><outline text="Казинформ" xmlUrl="https://inform.kz/rss"/></body></opml>'


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0" encoding="windows-1251"?>\n' + KZ.encode("cp1251"),
        KZ.encode("utf-16"),  # with its byte order mark
        KZ.encode("utf-8"),  # no declaration: UTF-8
    ],
)
def test_the_declared_or_marked_encoding_is_used(data: bytes) -> None:
    [feed] = parse_opml(data, "kz.opml").feeds
    assert feed.name == "Казинформ"


def test_export_writes_tags_as_folders_and_category_paths() -> None:
    feeds = [
        OpmlFeed(url="https://a.example/feed", name="A & B", tags=frozenset({"kz", "a/b"})),
        OpmlFeed(url="https://c.example/feed?x=1&y=2", name=None, tags=frozenset()),
    ]
    document = ET.fromstring(write_opml(feeds, title="t", now=NOW))
    body = document.find("body")
    assert body is not None
    top = [o.get("text") for o in body.findall("outline")]
    assert top == ["", "a/b", "kz"]  # the untagged feed first, then a folder per tag
    [in_kz] = body.findall("outline[@text='kz']/outline")
    # "a/b" cannot be written as a category path: only its folder carries it
    assert (in_kz.get("category"), in_kz.get("text")) == ("/kz", "A & B")
    assert document.findtext("head/dateCreated") == "Tue, 01 Dec 2026 12:00:00 GMT"
    assert set(parse_opml(write_opml(feeds, title="t", now=NOW), "x").feeds) == set(feeds)


def test_export_carries_no_raw_control_and_keeps_values() -> None:
    """A name with a C1 control or a bidi override (a feed's own title, say) is written as
    a character reference: printed to a terminal it steers nothing, read back it is the
    same; characters XML cannot carry at all are dropped."""
    feed = OpmlFeed(url="https://a.example/", name="x\u202ey\x85z\x07", tags=frozenset())
    data = write_opml([feed], title="t\x1b", now=NOW)
    text = data.decode("utf-8")
    assert not UNSAFE.search(text.replace("\n", ""))
    assert "&#x202e;" in text and "&#x85;" in text
    root = ET.fromstring(data)
    assert root.find("body/outline").get("text") == "x\u202ey\x85z"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "title", "expected"),
    [
        ("Mine", "Theirs", "Mine"),
        (None, "Their\u202e title\nover lines", "Their title over lines"),
        (None, "T" * 300, "T" * 200),
        (None, None, None),
        (None, "\x1b\x07", None),
    ],
)
def test_a_feed_is_exported_under_a_name_import_accepts(
    name: str | None, title: str | None, expected: str | None
) -> None:
    assert export_name(name, title) == expected
