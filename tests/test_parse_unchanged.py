"""A changed feed's items whose bytes the last parse saw are not parsed again, and that
loses nothing: every corpus document gives the same new items as a whole parse, anything
an item's parse depends on outside its bytes makes every item new, the fingerprint is kept
only once the items are stored, and a document that cannot be cut is parsed whole."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import feedparser
import hypothesis
import pytest
from feedserver import FeedServer
from hypothesis import strategies as st
from test_service import CSTO_ITEM, NOW, OTHER_ITEM, config, rss, store_for  # noqa: F401

from monitor.app import App
from monitor.config import Settings
from monitor.errors import ParseError
from monitor.parse.feed import parse_feed
from monitor.parse.prolog import read_document
from monitor.parse.unchanged import MAX_ITEMS, Fingerprints, layout
from monitor.types import FeedState, ParsedFeed

FEEDS = Path(__file__).parent / "data" / "feeds"
URL = "https://example.org/feed.xml"
NEW_ITEM = b"<item><guid>fresh-1</guid><title>Tokayev meets CSTO envoys</title></item>"


def parse(body: bytes, known: bytes | None = None, url: str = URL) -> ParsedFeed:
    return parse_feed(body, url=url, headers={}, known=known)


def with_new_item(body: bytes) -> bytes:
    """The document with one more item before its items' closing tag."""
    for end in (b"</rdf:RDF>", b"</channel>", b"</feed>"):
        at = body.rfind(end)
        if at >= 0:
            item = NEW_ITEM
            if end == b"</feed>":
                item = b"<entry><id>fresh-1</id><title>Tokayev meets CSTO envoys</title></entry>"
            return body[:at] + item + body[at:]
    raise AssertionError("no end tag")


@pytest.fixture
def entries_read(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many entries each feedparser run read."""
    counts: list[int] = []
    real = feedparser.parse

    def counting(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        counts.append(len(result.get("entries") or ()))
        return result

    monkeypatch.setattr(feedparser, "parse", counting)
    yield counts


CUT = [p.name for p in sorted(FEEDS.glob("*.xml")) if parse(p.read_bytes()).fingerprint]


def test_most_of_the_corpus_can_be_cut() -> None:
    # The others: not well-formed (feedparser's lenient parser reads them), empty, or
    # items nested in items (PCMag), where feedparser's entries are not the elements.
    assert len(CUT) >= 60


@pytest.mark.parametrize("name", CUT)
def test_a_changed_document_gives_the_items_a_whole_parse_would_add(
    name: str, entries_read: list[int]
) -> None:
    body = (FEEDS / name).read_bytes()
    first = parse(body)
    changed = with_new_item(body)
    entries_read.clear()
    again = parse(changed, first.fingerprint)
    whole = parse(changed)
    assert entries_read[0] == 1  # feedparser read the new item alone
    assert again.items == tuple(i for i in whole.items if i not in first.items)
    assert again.fingerprint == whole.fingerprint
    assert (again.title, again.link, again.ttl_seconds) == (
        whole.title,
        whole.link,
        whole.ttl_seconds,
    )
    assert parse(changed, again.fingerprint).items == ()
    # Per-feed state kept between polls: 16 bytes per item, at most MAX_ITEMS of them.
    document = read_document(changed, "")
    cut = layout(document.data, url=URL, encoding=document.encoding)
    assert again.fingerprint is not None and cut is not None
    assert len(again.fingerprint) == 16 + 16 * len(cut.ranges) <= 16 + 16 * MAX_ITEMS


def test_an_edited_item_is_parsed_again() -> None:
    body = rss(CSTO_ITEM, OTHER_ITEM)
    first = parse(body)
    edited = body.replace(b"Leaders of the CSTO met.", b"Leaders of the CSTO met in Astana.")
    [item] = parse(edited, first.fingerprint).items
    assert item.key == "guid:a1" and item.summary == "Leaders of the CSTO met in Astana."


@pytest.mark.parametrize(
    ("change", "url"),
    [
        # Relative links resolve against xml:base on the channel, and against the URL.
        ((b"<channel>", b'<channel xml:base="https://mirror.example/">'), URL),
        ((b"<channel>", b"<channel>"), "https://example.net/feed.xml"),
        # A prefix means another namespace: the same bytes are another element.
        ((b'version="2.0"', b'version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"'), URL),
    ],
)
def test_a_change_around_the_items_makes_every_item_new(
    change: tuple[bytes, bytes], url: str
) -> None:
    body = rss(CSTO_ITEM, OTHER_ITEM)
    first = parse(body)
    changed = body.replace(*change)
    again = parse(changed, first.fingerprint, url=url)
    assert len(again.items) == 2 and again.items == parse(changed, url=url).items


def test_another_encoding_makes_every_item_new() -> None:
    body = rss(CSTO_ITEM).replace(b'encoding="utf-8"', b'encoding="iso-8859-1"')
    first = parse(rss(CSTO_ITEM))
    assert [i.key for i in parse(body, first.fingerprint).items] == ["guid:a1"]


def test_the_first_item_of_a_key_still_wins_when_it_is_not_parsed() -> None:
    # Feeds repeat guids; the store keeps the first. Editing the second must not make it
    # the item of that key when the first is left out of the parse.
    first_copy = ("a1", "CSTO summit opens", "First copy.", NOW)
    second_copy = ("a1", "CSTO summit opens", "Second copy.", NOW)
    body = rss(first_copy, second_copy)
    first = parse(body)
    assert [i.summary for i in first.items] == ["First copy."]
    edited = body.replace(b"Second copy.", b"Second copy, edited.")
    assert parse(edited, first.fingerprint).items == ()


@pytest.mark.parametrize(
    "name",
    [
        "rss2-guardian-world-bozo.xml",  # not well-formed
        "rss2-pcmag-dvorak-illegally-nested.xml",  # items in items: entries != elements
        # xml:base in an item: feedparser carries it over to the items after it.
        "atom-ru-touchnokia-large.xml",
        "rss2-insanity-industries-xmlbase-relurl.xml",
    ],
)
def test_a_document_that_cannot_be_cut_is_parsed_whole(name: str) -> None:
    body = (FEEDS / name).read_bytes()
    first = parse(body)
    assert first.fingerprint is None
    assert parse(with_new_item(body)).items == parse(with_new_item(body), b"\0" * 40).items


@pytest.mark.parametrize(
    "fingerprint",
    [b"", b"\0", b"x" * 17, b"\xff" * 1000, parse(rss(OTHER_ITEM), url=URL + "?2").fingerprint],
    ids=["empty", "short", "odd-length", "garbage", "another-feed"],
)
def test_a_fingerprint_that_does_not_fit_changes_nothing(fingerprint: bytes | None) -> None:
    body = rss(CSTO_ITEM, OTHER_ITEM)
    assert parse(body, fingerprint).items == parse(body).items


def test_the_feed_s_own_categories_are_not_read_and_the_items_keep_theirs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Blogger feed lists all its labels in the channel (1,800 here): feedparser's cost
    for them grows with the square of their number, and nothing uses them."""
    body = (FEEDS / "rss2-sv-blogger-cornucopia-channel-categories.xml").read_bytes()
    atom = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><category term="feedwide"/>'
        b'<entry><id>e1</id><title>x</title><category term="kept"/></entry>'
        b'<category term="after">text</category></feed>'
    )
    read: list[bytes] = []
    real = feedparser.parse

    def reading(source: Any, **kwargs: Any) -> Any:
        read.append(source.getvalue())
        return real(source, **kwargs)

    monkeypatch.setattr(feedparser, "parse", reading)
    for document, feedwide in ((body, b"<category>bostadsbubblan</category>"), (atom, b"feedwide")):
        items = parse(document).items
        reference = real(document, sanitize_html=False, resolve_relative_uris=False)
        assert feedwide in document and feedwide not in read[-1]
        assert b"after" not in read[-1]
        assert [i.categories for i in items] == [
            tuple(t.term for t in e.get("tags", ())) for e in reference.entries
        ]
        assert any(i.categories for i in items)


def test_an_element_closed_by_its_start_tag_ends_there() -> None:
    """``<entry/>``: expat's position at its end is past it (the next tag): its range,
    taken from there, ran into the next item."""
    data = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><entry/><category term="a"/>'
        b"<entry><id>e1</id></entry><category>b</category></feed>"
    )
    cut = layout(data, url=URL, encoding="utf-8")
    assert cut is not None
    assert [data[a:b] for a, b in cut.ranges] == [b"<entry/>", b"<entry><id>e1</id></entry>"]
    assert [data[a:b] for a, b in cut.unused] == [
        b'<category term="a"/>',
        b"<category>b</category>",
    ]
    assert layout(b"<category/>", url=URL, encoding="utf-8") is None  # a root, no item
    odd = layout(b"<category><item/></category>", url=URL, encoding="utf-8")
    assert odd is not None and odd.unused == ()


def test_items_in_unexpected_places_are_not_cut() -> None:
    nested = (
        b'<rss version="2.0"><channel><group><item><title>x</title></item></group></channel></rss>'
    )
    assert layout(nested, url=URL, encoding="utf-8") is None
    many = rss(*((f"g{i}", "t", "d", None) for i in range(MAX_ITEMS + 1)))
    assert parse(many).fingerprint is None


def test_a_fingerprint_is_used_until_the_recheck_then_the_feed_is_parsed_whole() -> None:
    now = [0.0]
    kept = Fingerprints(recheck=100.0, clock=lambda: now[0])
    kept.put(1, b"first", whole=True)
    now[0] = 60.0
    kept.put(1, b"second", whole=False)  # a partial parse does not restart the clock
    assert kept.get(1) == b"second"
    now[0] = 101.0
    assert kept.get(1) is None
    kept.put(1, b"third", whole=True)
    assert kept.get(1) == b"third"
    kept.put(1, None, whole=False)  # a document that could not be cut
    assert kept.get(1) is None and len(kept) == 0


def test_fingerprints_past_their_recheck_are_dropped_so_the_cache_stays_bounded() -> None:
    """Feeds that were removed or stopped changing leave nothing behind for long: what is
    kept is the feeds parsed whole within the last two recheck periods, whatever ran before."""
    now = [0.0]
    kept = Fingerprints(recheck=100.0, clock=lambda: now[0])
    for period in range(5):
        for feed in range(1000):
            kept.put(period * 1000 + feed, b"x" * 16, whole=True)
        now[0] += 60.0
        assert len(kept) <= 3000  # one minute apart: two periods hold at most three
    now[0] += 101.0
    kept.put(1, b"x" * 16, whole=True)
    assert len(kept) == 1


async def test_a_poll_parses_only_the_new_item_and_an_unstored_one_is_parsed_again(
    config: Callable[..., Settings],  # noqa: F811
    feed_server: FeedServer,
) -> None:
    feed_server.set_feed("/feed.xml", rss(OTHER_ITEM))
    settings = config()
    parsed: list[tuple[bool, int]] = []
    async with await asyncio.to_thread(App, settings) as app:
        pipeline = app.pipeline
        real_parse, real_add = pipeline.parser.parse, pipeline.store.add_items

        async def parse(result: Any, *, known: bytes | None = None) -> ParsedFeed:
            done = await real_parse(result, known=known)
            parsed.append((known is not None, len(done.items)))
            return done

        pipeline.parser.parse = parse  # type: ignore[method-assign]

        async def poll() -> None:
            await pipeline.poll_feeds(await pipeline.claim_feeds(only_due=False))

        await poll()
        feed_server.set_feed("/feed.xml", rss(CSTO_ITEM, OTHER_ITEM))

        def failing(*args: Any, **kwargs: Any) -> Any:
            raise OSError("disk full")

        pipeline.store.add_items = failing  # type: ignore[method-assign]
        await poll()  # the new item is parsed, and its storing fails
        pipeline.store.add_items = real_add  # type: ignore[method-assign]
        await poll()  # so it is parsed again, and stored
        await poll()
    assert parsed == [(False, 1), (True, 1), (True, 1), (True, 0)]
    store = store_for(settings)
    [feed] = store.list_feeds()
    assert feed.state == FeedState.OK and feed.items == 2
    assert [r.alert.item.title for r in store.list_alerts()] == [CSTO_ITEM[1]]


SAMPLES = [
    "rss2-bbc-news.xml",
    "atom-youtube-channel.xml",
    "rdf-rss10-orf-at.xml",
    "rss2-moscowtimes-bom.xml",
    "rss2-scriptingnews-untitled-items-dup-guid.xml",
]
REPEATED_GUIDS = {"rss2-scriptingnews-untitled-items-dup-guid.xml"}


def _edit(body: bytes, draw: Any) -> bytes:
    """One edit a feed makes between two polls, somewhere in the document: an item
    dropped, doubled or moved, a byte changed, a base or namespace added around it."""
    cut = layout(body, url=URL, encoding="utf-8")
    if cut is None:  # an earlier edit put a base in an item
        return body
    start, end = cut.ranges[draw(st.integers(0, len(cut.ranges) - 1))]
    piece = body[start:end]
    kind = draw(st.sampled_from(["drop", "double", "move", "byte", "base", "prefix"]))
    if kind == "drop":
        return body[:start] + body[end:]
    if kind == "double":
        return body[:end] + piece + body[end:]
    if kind == "move":
        first = cut.ranges[0][0]
        return body[:first] + piece + body[first:start] + body[end:]
    if kind == "byte":
        at = draw(st.integers(start, end - 1))
        return body[:at] + bytes([draw(st.integers(32, 126))]) + body[at + 1 :]
    tag = b" xml:base='https://elsewhere.example/x/'" if kind == "base" else b" xmlns:zz='urn:z'"
    gt = piece.index(b">")
    return body[:start] + piece[:gt].rstrip(b"/") + tag + piece[gt:].lstrip(b"/") + body[end:]


@hypothesis.settings(max_examples=150, deadline=None)
@hypothesis.given(st.sampled_from(SAMPLES), st.data())
def test_no_edit_between_two_polls_loses_or_invents_an_item(name: str, data: Any) -> None:
    """Whatever changed, the items parsed with the fingerprint include every item of the
    whole parse with a key the first poll did not have, and are all items of the whole
    parse; all of them when the changed document cannot be cut. (An item whose bytes did
    not change is not parsed again even where a whole parse would now pick another copy of
    a repeated guid: the stored copy stays, where a whole parse would switch between them.)"""
    original = (FEEDS / name).read_bytes()
    first = parse(original)
    changed = original
    for _ in range(data.draw(st.integers(1, 3))):
        changed = _edit(changed, data.draw)
    try:
        whole = parse(changed)
    except ParseError:
        return  # the edit broke the document: nothing to compare
    again = parse(changed, first.fingerprint)
    if whole.fingerprint is None:
        assert again.items == whole.items
    else:
        assert set(again.items) <= set(whole.items)
        known = {i.key for i in first.items}
        assert {i for i in whole.items if i.key not in known} <= set(again.items)
        if name not in REPEATED_GUIDS:  # and every edit, with one copy of each key
            assert {i for i in whole.items if i not in first.items} <= set(again.items)
