"""Full text for teaser feeds: a feed's new items matched on their article pages too.

Against real things over loopback: the feed server serves a teaser feed and the article
pages its items link to, the pipeline polls it as the service does, on SQLite and
PostgreSQL. Slow, failing, hostile and guarded pages each cost only their own text: the
alert on the feed's own text arrives, within the bound, once. The extractor itself is also
run on real saved pages (tests/data/articles, with their origins in MANIFEST.tsv).
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from feedserver import FeedServer, Request, Response
from test_service import NOW, store_for

from monitor.app import App, fetch_settings
from monitor.config import Settings, load_settings
from monitor.config_ops import RetentionConfig
from monitor.errors import ConfigError
from monitor.fetch import Fetcher
from monitor.fetch.guard import refuse_private
from monitor.fetch.resolver import IPAddress
from monitor.fulltext import TEASER_CHARS, fetch_articles, wants_fulltext
from monitor.parse import ParseWorkers
from monitor.parse.article import extract_article
from monitor.pipeline import PollReport
from monitor.retention import prune_old_items
from monitor.types import Item

ARTICLES = Path(__file__).parent / "data" / "articles"
HTML = {"Content-Type": "text/html; charset=utf-8"}
# What a teaser feed gives, and what only its articles say.
TEASER = "Ministers met in the capital on Tuesday."
ARTICLE_WORDS = "The CSTO secretary general opened the session on regional security."


def article_page(*sentences: str, title: str = "Ministers meet") -> bytes:
    """A news page as sites serve them: navigation, the article, related links, footer."""
    body = "".join(
        f"<p>{s} Delegations from five countries attended the two-day meeting, which "
        "ended with a joint statement on border cooperation and trade routes.</p>"
        for s in sentences
    )
    nav = "".join(f'<a href="/section/{n}">{n}</a> ' for n in ("world", "business", "sport"))
    related = "".join(f'<li><a href="/news/{n}">Other story {n}</a></li>' for n in range(8))
    return (
        f"<!DOCTYPE html><html><head><title>{title}</title></head><body>"
        f"<header><nav>{nav}</nav></header><main><article><h1>{title}</h1>{body}"
        f"</article><aside><h2>Most read</h2><ul>{related}</ul></aside></main>"
        "<footer>Copyright Example News. All rights reserved.</footer></body></html>"
    ).encode()


def teaser_feed(server: FeedServer, *items: tuple[str, str, str], link_base: str = "") -> bytes:
    """An RSS feed of (guid, title, description) teasers linking to ``/articles/<guid>``."""
    entries = "".join(
        f"<item><guid>{guid}</guid><title>{title}</title>"
        f"<link>{link_base or server.url('')}/articles/{guid}</link>"
        f"<description>{text}</description><pubDate>{NOW:%a, %d %b %Y %H:%M:%S +0000}"
        "</pubDate></item>"
        for guid, title, text in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Wire</title><link>https://example.org/</link>{entries}</channel></rss>"
    ).encode()


@pytest.fixture
def settings_for(tmp_path: Path, db_url: str, feed_server: FeedServer) -> Callable[..., Settings]:
    def make(
        fulltext: str = "true", polling: str = "", retention: str = "", workers: int = 0
    ) -> Settings:
        path = tmp_path / "monitor.yaml"
        path.write_text(
            f"""
database: {db_url}
defaults: {{interval: 1m, backlog: 24h}}
polling: {{parse_workers: {workers}, jitter: 0{polling or ", fulltext_wait: 5s"}}}
{retention}
feeds:
  - url: {feed_server.url("/feed.xml")}
    fulltext: {fulltext}
watchlists:
  - name: csto
    terms: [CSTO]
""",
            encoding="utf-8",
        )
        return load_settings(path, {})

    return make


async def poll(settings: Settings, fetcher: Fetcher | None = None) -> PollReport:
    async with App(settings) as app:
        if fetcher is not None:
            app.pipeline.fetcher = fetcher
        [report] = await app.pipeline.poll_feeds(await app.pipeline.claim_feeds(only_due=False))
        return report


def alerts_of(settings: Settings) -> list[tuple[str, str, str]]:
    """(item title, field, snippet) of each match of each stored alert."""
    return [
        (r.alert.item.title, m.field, m.snippet)
        for r in store_for(settings).list_alerts()
        for m in r.alert.matches
    ]


def stored_content(settings: Settings) -> dict[str, str]:
    since = NOW - timedelta(days=1)
    return {s.item.title: s.item.content for s in store_for(settings).items_since(since)}


@pytest.mark.parametrize("workers", [0, 1])
async def test_a_word_only_in_the_article_alerts_once_with_the_article_as_snippet(
    settings_for: Callable[..., Settings], feed_server: FeedServer, workers: int
) -> None:
    feed_server.set_feed("/feed.xml", teaser_feed(feed_server, ("a1", "Ministers meet", TEASER)))
    feed_server.set_response("/articles/a1", 200, article_page(ARTICLE_WORDS), HTML)
    settings = settings_for(workers=workers)

    report = await poll(settings)
    assert report.matched == 1 and report.articles is not None
    assert (report.articles.fetched, report.articles.failed, report.articles.late) == (1, 0, 0)
    [(title, field, snippet)] = alerts_of(settings)
    assert (title, field) == ("Ministers meet", "content")
    assert "secretary general" in snippet
    assert "joint statement on border cooperation" in stored_content(settings)["Ministers meet"]

    await poll(settings)  # the same item again: neither fetched again nor alerted again
    assert len(feed_server.requests_for("/articles/a1")) == 1
    assert len(alerts_of(settings)) == 1


async def test_an_article_that_adds_matches_still_makes_one_alert(
    settings_for: Callable[..., Settings], feed_server: FeedServer
) -> None:
    # The title alerts on its own; the article, there within the bound, adds a second
    # match to that alert: one alert with both, not one per text.
    feed = teaser_feed(feed_server, ("m1", "CSTO ministers meet", TEASER))
    feed_server.set_feed("/feed.xml", feed)
    feed_server.set_response("/articles/m1", 200, article_page(ARTICLE_WORDS), HTML)
    settings = settings_for()

    report = await poll(settings)
    await poll(settings)

    assert report.matched == 1
    [record] = store_for(settings).list_alerts()
    assert [m.field for m in record.alert.matches] == ["title", "content"]
    assert "secretary general" in record.alert.matches[1].snippet
    assert len(feed_server.requests_for("/articles/m1")) == 1


async def test_one_article_fetch_per_new_item_and_none_for_known_items(
    settings_for: Callable[..., Settings], feed_server: FeedServer
) -> None:
    items = [(f"n{n}", f"Story {n}", TEASER) for n in range(3)]
    for guid, _, _ in items:
        feed_server.set_response(f"/articles/{guid}", 200, article_page("Nothing watched."), HTML)
    settings = settings_for()
    feed_server.set_feed("/feed.xml", teaser_feed(feed_server, *items[:2]))
    await poll(settings)
    feed_server.set_feed("/feed.xml", teaser_feed(feed_server, *items))
    report = await poll(settings)
    assert report.articles is not None and report.articles.wanted == 1
    assert [len(feed_server.requests_for(f"/articles/n{n}")) for n in range(3)] == [1, 1, 1]


async def test_a_slow_article_neither_delays_nor_loses_the_alert_nor_alerts_twice(
    settings_for: Callable[..., Settings], feed_server: FeedServer
) -> None:
    # The title alerts; the article would add a match, but the server holds it until the
    # poll is over (longer than the fetch deadline): "late", not "failed", is the bound.
    released = threading.Event()

    def held(request: Request) -> Response:
        released.wait(60)
        return Response(body=article_page(ARTICLE_WORDS), headers=HTML)

    feed = teaser_feed(feed_server, ("s1", "CSTO ministers meet", TEASER))
    feed_server.set_feed("/feed.xml", feed)
    feed_server.set_handler("/articles/s1", held)
    settings = settings_for(polling=", fulltext_wait: 0.5s")
    try:
        report = await poll(settings)
        assert len(feed_server.requests_for("/articles/s1")) == 1
    finally:
        released.set()
    assert report.matched == 1 and report.articles is not None and report.articles.late == 1
    assert [field for _, field, _ in alerts_of(settings)] == ["title"]
    assert stored_content(settings) == {"CSTO ministers meet": ""}  # a late page is dropped

    await poll(settings)  # the page is there now; the known item is not fetched again
    assert len(feed_server.requests_for("/articles/s1")) == 1
    assert [field for _, field, _ in alerts_of(settings)] == ["title"]


@pytest.mark.parametrize(
    "response",
    [
        Response(status=404, body=b"not found"),
        Response(status=500, body=b"oops"),
        Response(body=b"%PDF-1.7 " + b"x" * 5000, headers={"Content-Type": "application/pdf"}),
        Response(body=b"<html><body>" + b"<p>CSTO CSTO</p>" * 20_000, headers=HTML),  # > cap
        Response(body=b"<html><body></body></html>", headers=HTML),  # no main text
    ],
    ids=["404", "500", "pdf", "huge", "empty"],
)
async def test_a_failed_article_leaves_the_alert_on_the_feed_text(
    settings_for: Callable[..., Settings], feed_server: FeedServer, response: Response
) -> None:
    feed_server.set_feed("/feed.xml", teaser_feed(feed_server, ("f1", "CSTO meets", TEASER)))
    feed_server.set_handler("/articles/f1", lambda request: response)
    settings = settings_for(polling=", max_body: 64KiB")
    report = await poll(settings)
    assert report.state == "ok" and report.error is None
    assert report.articles is not None and report.articles.failed == 1
    assert [(t, f) for t, f, _ in alerts_of(settings)] == [("CSTO meets", "title")]


@pytest.mark.parametrize("teasers", [True, False])
async def test_auto_fetches_articles_only_for_a_feed_of_teasers(
    settings_for: Callable[..., Settings], feed_server: FeedServer, teasers: bool
) -> None:
    text = TEASER if teasers else "A full story, as some feeds give it. " * 20
    items = [(f"u{n}", f"Story {n}", text) for n in range(3)]
    feed_server.set_feed("/feed.xml", teaser_feed(feed_server, *items))
    for guid, _, _ in items:
        feed_server.set_response(f"/articles/{guid}", 200, article_page(ARTICLE_WORDS), HTML)
    settings = settings_for(fulltext="auto")
    report = await poll(settings)
    fetched = sum(len(feed_server.requests_for(f"/articles/{g}")) for g, _, _ in items)
    assert fetched == (3 if teasers else 0)
    assert report.matched == (3 if teasers else 0)


def item(summary: str, content: str = "", link: str | None = "https://example.org/a") -> Item:
    return Item(
        key=summary[:20] + content[:20],
        guid=None,
        link=link,
        title="t",
        summary=summary,
        content=content,
        author="",
        categories=(),
        published=None,
        updated=None,
        content_hash="h",
    )


def test_auto_looks_at_the_median_of_the_items_own_text() -> None:
    short, long = "x" * (TEASER_CHARS - 1), "x" * TEASER_CHARS
    assert wants_fulltext("auto", [item(short), item(short), item(long)])
    assert not wants_fulltext("auto", [item(short), item(long), item(long)])
    assert not wants_fulltext("auto", [item(short, content=long), item(short, content=long)])
    assert not wants_fulltext("auto", [])
    assert wants_fulltext(True, [item(long)]) and not wants_fulltext(False, [item(short)])


async def test_the_guard_refuses_an_article_link_to_a_private_address(
    settings_for: Callable[..., Settings], feed_server: FeedServer
) -> None:
    # The feed's own host is let through (it is on loopback in tests); its item links to
    # localhost, which the guard refuses as it would any private address.
    port = feed_server.base_url.rsplit(":", 1)[1]

    def feed_host_only(host: str, port: int, addresses: Sequence[IPAddress]) -> str | None:
        return None if host == "127.0.0.1" else refuse_private(host, port, addresses)

    feed = teaser_feed(
        feed_server, ("p1", "CSTO meets", TEASER), link_base=f"http://localhost:{port}"
    )
    feed_server.set_feed("/feed.xml", feed)
    feed_server.set_response("/articles/p1", 200, article_page(ARTICLE_WORDS), HTML)
    settings = settings_for()
    async with Fetcher(fetch_settings(settings), guard=feed_host_only) as fetcher:
        report = await poll(settings, fetcher)
    assert report.articles is not None and report.articles.failed == 1
    assert feed_server.requests_for("/articles/p1") == []
    assert [(t, f) for t, f, _ in alerts_of(settings)] == [("CSTO meets", "title")]


async def test_the_article_text_is_stored_and_pruned_with_its_item(
    settings_for: Callable[..., Settings], feed_server: FeedServer
) -> None:
    feed_server.set_feed("/feed.xml", teaser_feed(feed_server, ("r1", "Ministers meet", TEASER)))
    feed_server.set_response("/articles/r1", 200, article_page(ARTICLE_WORDS), HTML)
    settings = settings_for(retention="retention: {items: 30d}")
    await poll(settings)
    assert "secretary general" in stored_content(settings)["Ministers meet"]
    later = NOW + timedelta(days=31)
    report = await prune_old_items(
        store_for(settings), RetentionConfig(items=30 * 86400), lambda: later
    )
    assert report.pruned == 1 and stored_content(settings) == {}


async def test_at_most_the_per_poll_cap_of_articles_is_fetched(feed_server: FeedServer) -> None:
    items = [
        replace(item("short", link=feed_server.url(f"/articles/c{n}")), key=f"c{n}")
        for n in range(5)
    ]
    for n in range(5):
        feed_server.set_response(f"/articles/c{n}", 200, article_page(ARTICLE_WORDS), HTML)
    parser = ParseWorkers(0)
    try:
        async with Fetcher(fetch_settings(Settings())) as fetcher:
            texts, report = await fetch_articles(
                items, fetcher=fetcher, parser=parser, wait=5, limit=2
            )
    finally:
        parser.close()
    assert sorted(texts) == ["c0", "c1"] and (report.fetched, report.skipped) == (2, 3)
    assert len([r for r in feed_server.requests if r.path.startswith("/articles/")]) == 2


def saved_pages() -> list[dict[str, str]]:
    with (ARTICLES / "MANIFEST.tsv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.mark.parametrize("page", saved_pages(), ids=lambda p: p["file"])
def test_saved_pages_yield_their_article_text(page: dict[str, str]) -> None:
    body = (ARTICLES / page["file"]).read_bytes()
    article = extract_article(body, url=page["original_url"], headers=HTML)
    assert article.error is None and len(article.text) > 1000
    # The article found is the one the feed announced: it starts with its title or teaser.
    starts = (" ".join(page[field].split()[:4]) for field in ("title", "teaser"))
    assert any(start and start in article.text[:1000] for start in starts)


def test_a_page_is_decoded_with_the_charset_its_response_declares() -> None:
    page = article_page("Секретарь ОДКБ открыл заседание.", title="Заседание").decode()
    headers = {"Content-Type": "text/html; charset=windows-1251"}
    article = extract_article(page.encode("cp1251"), url="https://example.org/", headers=headers)
    assert "Секретарь ОДКБ открыл заседание." in article.text


def test_what_is_not_an_html_page_is_an_error_value_not_an_exception() -> None:
    article = extract_article(b"%PDF-1.7", url="x", headers={"content-type": "application/pdf"})
    assert article.text == "" and article.error == "not an HTML page (application/pdf)"
    assert extract_article(b"\x00\xff" * 100, url="x", headers={}).error == "no main text found"


@pytest.mark.parametrize("fulltext", ["auto", "false"])
def test_the_lease_must_outlast_a_poll_that_waits_for_its_articles(
    tmp_path: Path, fulltext: str
) -> None:
    # deadline 30s + parse_budget 20s fits a 1m lease; with fulltext_wait 15s it does not.
    path = tmp_path / "monitor.yaml"
    path.write_text(
        "service: {lease: 1m}\n"
        f"feeds: [{{url: 'https://example.org/f', fulltext: {fulltext}}}]\n",
        encoding="utf-8",
    )
    if fulltext == "false":
        load_settings(path, {})
        return
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    assert "polling.deadline + polling.parse_budget + polling.fulltext_wait (1m5s)" in str(
        caught.value
    )
