"""``monitor discover``: feeds found on a page or at the usual paths, confirmed by the parse
path of polling; the command as a user runs it, against a real server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml
from feedserver import FeedServer, Response

from alerts.controls import UNSAFE
from monitor.config import load_settings
from monitor.discover import (
    CHECKS_AT_ONCE,
    COMMON_PATHS,
    MAX_ADVERTISED,
    MAX_PAGE_BYTES,
    Discovery,
    DiscoveryError,
    Found,
    advertised_feeds,
    discover,
    feed_kind,
    looks_like_html,
)
from monitor.errors import FetchError
from monitor.fetch import Fetcher, FetchSettings
from monitor.parse import ParseWorkers

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))


def rss(title: str, items: int) -> bytes:
    entries = "".join(
        f"<item><title>Item {i}</title><link>https://example.org/{i}</link></item>"
        for i in range(items)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>https://example.org/</link>{entries}</channel></rss>"
    ).encode()


def atom(title: str, items: int) -> bytes:
    entries = "".join(
        f"<entry><id>urn:e:{i}</id><title>Entry {i}</title>"
        f'<link href="https://example.org/e{i}"/><updated>2026-01-01T00:00:00Z</updated></entry>'
        for i in range(items)
    )
    return (
        f'<?xml version="1.0"?><!-- generated --><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{title}</title><id>urn:feed</id>{entries}</feed>"
    ).encode()


def json_feed(title: str, items: int) -> bytes:
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": title,
            "items": [{"id": str(i), "content_text": f"Post {i}"} for i in range(items)],
        }
    ).encode()


def page(head: str, body: str = "<p>Hello</p>") -> bytes:
    html = f"<!DOCTYPE html><html><head><title>Site</title>{head}</head><body>{body}</body></html>"
    return html.encode()


def serve_page(server: FeedServer, path: str, html: bytes) -> None:
    server.set_response(path, 200, html, {"Content-Type": "text/html; charset=utf-8"})


# Three feed types, relative hrefs resolved against a relative <base>; a second <base>,
# stylesheets, an HTML alternate and links that are no http(s) URL are no candidates.
ADVERTISING = page(
    '<base href="/blog/">'
    '<base href="/elsewhere/">'
    '<link rel="stylesheet" type="text/css" href="style.css">'
    '<link rel="alternate" hreflang="fr" type="text/html" href="/fr/">'
    '<link rel="alternate" type="application/rss+xml" title="RSS" href="rss.xml">'
    '<link rel="ALTERNATE home" type="Application/Atom+XML; charset=utf-8" href="sub/atom.xml#top">'
    '<link rel="alternate" type="application/feed+json" href="../json/feed.json">'
    '<link rel="alternate" type="application/rss+xml" href="rss.xml">'  # the same feed again
    '<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">'
    '<link rel="alternate" type="application/rss+xml" href="ftp://example.org/feed">'
)


def serve_advertised_feeds(server: FeedServer) -> None:
    serve_page(server, "/site/index.html", ADVERTISING)
    server.set_feed("/blog/rss.xml", rss("Blog RSS", 3))
    server.set_feed("/blog/sub/atom.xml", atom("Blog Atom", 2), content_type="application/atom+xml")
    server.set_feed("/json/feed.json", json_feed("Blog JSON", 4), content_type="application/json")


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(FetchSettings(timeout=2.0, deadline=5.0)) as fetcher:
        yield fetcher


@pytest.fixture
def parsers() -> Iterator[ParseWorkers]:
    workers = ParseWorkers(0)
    yield workers
    workers.close()


async def run(url: str, fetcher: Fetcher, parsers: ParseWorkers) -> Discovery:
    return await discover(url, fetcher=fetcher, parse=parsers.parse)


async def test_advertised_rss_atom_and_json_feed_are_found_resolved_against_base(
    feed_server: FeedServer, fetcher: Fetcher, parsers: ParseWorkers
) -> None:
    serve_advertised_feeds(feed_server)
    found = await run(feed_server.url("/site/index.html"), fetcher, parsers)

    assert not found.is_feed
    advertised = [(f.url, f.title, f.kind, f.items) for f in found.feeds]
    assert advertised == [
        (feed_server.url("/blog/rss.xml"), "Blog RSS", "RSS", 3),
        (feed_server.url("/blog/sub/atom.xml"), "Blog Atom", "Atom", 2),
        (feed_server.url("/json/feed.json"), "Blog JSON", "JSON Feed", 4),
    ]
    assert {f.found for f in found.feeds} == {Found.ADVERTISED}
    assert len(feed_server.requests_for("/blog/rss.xml")) == 1  # listed twice, fetched once
    for path in ("/blog/style.css", "/fr/", "/elsewhere/rss.xml"):
        assert not feed_server.requests_for(path)
    # The common paths were tried too, and are not feeds here.
    assert {c.url for c in found.not_feeds} == {feed_server.url(p) for p in COMMON_PATHS}
    assert all(c.reason == "HTTP 404 Not Found" for c in found.not_feeds)


async def test_page_advertising_nothing_has_its_feeds_found_at_common_paths(
    feed_server: FeedServer, fetcher: Fetcher, parsers: ParseWorkers
) -> None:
    serve_page(feed_server, "/", page(""))
    feed_server.set_feed("/feed", rss("WordPress", 10))
    feed_server.set_feed("/index.xml", atom("Hugo", 1), content_type="application/atom+xml")
    serve_page(feed_server, "/rss", page(""))  # a site that answers every path with a page

    found = await run(feed_server.url("/"), fetcher, parsers)

    assert [(f.url, f.title, f.items, f.found) for f in found.feeds] == [
        (feed_server.url("/feed"), "WordPress", 10, Found.COMMON_PATH),
        (feed_server.url("/index.xml"), "Hugo", 1, Found.COMMON_PATH),
    ]
    reasons = {c.url: c.reason for c in found.not_feeds}
    assert reasons[feed_server.url("/rss")].startswith("not a feed (HTML page)")


async def test_common_paths_are_on_the_origin_of_the_page_after_redirects(
    feed_server: FeedServer, fetcher: Fetcher, parsers: ParseWorkers
) -> None:
    feed_server.set_handler("/old", lambda request: Response.redirect("/blog/2026/post.html"))
    serve_page(feed_server, "/blog/2026/post.html", page(""))
    feed_server.set_feed("/rss.xml", rss("Root", 1))

    found = await run(feed_server.url("/old"), fetcher, parsers)

    assert found.page_url == feed_server.url("/blog/2026/post.html")
    assert [f.url for f in found.feeds] == [feed_server.url("/rss.xml")]


async def test_a_feed_reached_twice_is_listed_once(
    feed_server: FeedServer, fetcher: Fetcher, parsers: ParseWorkers
) -> None:
    link = '<link rel="alternate" type="application/rss+xml" href="/blog/feed/">'
    serve_page(feed_server, "/", page(link))
    feed_server.set_feed("/blog/feed/", rss("Blog", 2))
    feed_server.set_handler("/feed", lambda request: Response.redirect("/blog/feed/", 302))

    found = await run(feed_server.url("/"), fetcher, parsers)

    assert [(f.url, f.found) for f in found.feeds] == [
        (feed_server.url("/blog/feed/"), Found.ADVERTISED)
    ]


async def test_a_feed_url_given_directly_is_confirmed_without_looking_further(
    feed_server: FeedServer, fetcher: Fetcher, parsers: ParseWorkers
) -> None:
    feed_server.set_feed("/news.xml", rss("News", 5))

    found = await run(feed_server.url("/news.xml"), fetcher, parsers)

    assert found.is_feed
    assert [(f.url, f.title, f.kind, f.items, f.found) for f in found.feeds] == [
        (feed_server.url("/news.xml"), "News", "RSS", 5, Found.GIVEN)
    ]
    assert [r.path for r in feed_server.requests] == ["/news.xml"]


async def test_a_feed_moved_permanently_is_given_at_its_new_url(
    feed_server: FeedServer, fetcher: Fetcher, parsers: ParseWorkers
) -> None:
    feed_server.set_handler("/old.xml", lambda request: Response.redirect("/new.xml", 301))
    feed_server.set_feed("/new.xml", rss("Moved", 1))

    found = await run(feed_server.url("/old.xml"), fetcher, parsers)

    assert [f.url for f in found.feeds] == [feed_server.url("/new.xml")]


async def test_thousands_of_advertised_links_are_checked_up_to_the_bound(
    feed_server: FeedServer, fetcher: Fetcher, parsers: ParseWorkers
) -> None:
    links = "".join(
        f'<link rel="alternate" type="application/rss+xml" href="/f/{i}">' for i in range(3000)
    )
    serve_page(feed_server, "/", page(links))

    found = await run(feed_server.url("/"), fetcher, parsers)

    asked = [r.path for r in feed_server.requests if r.path.startswith("/f/")]
    assert sorted(asked) == sorted(f"/f/{i}" for i in range(MAX_ADVERTISED))
    assert found.more_advertised == 3000 - MAX_ADVERTISED
    assert found.feeds == ()


async def test_candidates_still_waiting_when_the_budget_is_spent_are_not_checked(
    feed_server: FeedServer, parsers: ParseWorkers
) -> None:
    links = "".join(
        f'<link rel="alternate" type="application/rss+xml" href="/slow/{i}">' for i in range(12)
    )
    serve_page(feed_server, "/", page(links))
    for i in range(12):
        feed_server.set_handler(f"/slow/{i}", lambda request: Response(delay=10))

    async with Fetcher(
        FetchSettings(timeout=1.5, deadline=2.0, per_host=CHECKS_AT_ONCE)
    ) as fetcher:
        found = await discover(
            feed_server.url("/"), fetcher=fetcher, parse=parsers.parse, budget=0.5
        )

    # The first ones time out after the budget is spent: none of the others is started.
    unchecked = [c for c in found.not_feeds if c.reason.startswith("not checked")]
    asked = [r.path for r in feed_server.requests if r.path != "/"]
    assert len(unchecked) == len(found.not_feeds) - len(asked)
    assert sorted(asked) == sorted(f"/slow/{i}" for i in range(CHECKS_AT_ONCE))


def test_a_page_is_read_for_links_only_up_to_its_cap() -> None:
    link = '<link rel="alternate" type="application/rss+xml" href="/late.xml">'
    early = '<link rel="alternate" type="application/rss+xml" href="/early.xml">'
    padding = "<!-- " + "x" * MAX_PAGE_BYTES + " -->"
    html = page(early + padding + link)

    found, more = advertised_feeds(html, url="https://example.org/")

    assert (found, more) == (["https://example.org/early.xml"], 0)


def test_entities_a_page_declares_are_not_expanded_into_links() -> None:
    html = (
        b'<!DOCTYPE html [<!ENTITY u "http://internal.example/">]>'
        b'<html><head><link rel="alternate" type="application/rss+xml" href="&u;feed">'
        b"</head></html>"
    )

    found, _ = advertised_feeds(html, url="https://example.org/page")

    assert not any(url.startswith("http://internal.example") for url in found)


def test_a_base_that_is_no_http_url_leaves_the_page_url_as_the_base() -> None:
    html = page(
        '<base href="javascript:void(0)">'
        '<link rel="alternate" type="application/atom+xml" href="atom.xml">'
    )

    found, _ = advertised_feeds(html, url="https://example.org/dir/page")

    assert found == ["https://example.org/dir/atom.xml"]


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"<html><body>x</body></html>", "", True),
        (b"\xef\xbb\xbf  <!-- a --> <!-- b --><!DOCTYPE HTML><p>", "text/plain", True),
        (b"<rss version='2.0'/>", "text/html", True),  # the label decides
        (b"<rss version='2.0'/>", "application/xml", False),
        (b"\x89PNG\r\n\x1a\n", "image/png", False),
        (b"<!-- " * 1000, "", False),  # comments that never end
    ],
)
def test_an_html_page_is_told_by_its_label_or_its_start(
    body: bytes, content_type: str, expected: bool
) -> None:
    assert looks_like_html(body, content_type) is expected


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (rss("x", 1), "RSS"),
        (atom("x", 1), "Atom"),
        (json_feed("x", 1), "JSON Feed"),
        (b'<?xml version="1.0"?><!-- <feed> --><rdf:RDF xmlns:rdf="x"/>', "RSS 1.0"),
    ],
)
def test_the_type_of_a_feed_is_told_by_its_root(body: bytes, kind: str) -> None:
    assert feed_kind(body, "") == kind


async def test_what_is_neither_a_feed_nor_a_page_is_refused(
    feed_server: FeedServer, fetcher: Fetcher, parsers: ParseWorkers
) -> None:
    feed_server.set_response("/logo.png", 200, PNG, {"Content-Type": "image/png"})

    with pytest.raises(DiscoveryError) as caught:
        await run(feed_server.url("/logo.png"), fetcher, parsers)

    assert "neither a feed nor an HTML page (Content-Type: image/png" in str(caught.value)


async def test_a_page_that_cannot_be_fetched_is_a_fetch_error(
    feed_server: FeedServer, fetcher: Fetcher, parsers: ParseWorkers
) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        await run(feed_server.url("/missing"), fetcher, parsers)


# The command, as a user runs it.


def monitor(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )


def config(tmp_path: Path, polling: str = "") -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(f"polling: {{parse_workers: 0, {polling}}}\n", encoding="utf-8")
    return path


def snippet_of(stdout: str) -> object:
    return yaml.safe_load(stdout[stdout.index("\nfeeds:\n") :])


def test_cli_lists_the_feeds_and_a_snippet_the_configuration_accepts(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    serve_advertised_feeds(feed_server)

    done = monitor("discover", feed_server.url("/site/index.html"), cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert "3 feeds found" in done.stdout
    assert '"Blog Atom"' in done.stdout and "Atom, 2 items; advertised by the page" in done.stdout
    assert "7 other candidates are not feeds (--verbose says why)" in done.stdout
    expected = [
        {"url": feed_server.url("/blog/rss.xml"), "name": "Blog RSS"},
        {"url": feed_server.url("/blog/sub/atom.xml"), "name": "Blog Atom"},
        {"url": feed_server.url("/json/feed.json"), "name": "Blog JSON"},
    ]
    snippet = snippet_of(done.stdout)
    assert snippet == {"feeds": expected}
    pasted = tmp_path / "pasted.yaml"
    pasted.write_text(yaml.safe_dump(snippet), encoding="utf-8")
    assert [(f.url, f.name) for f in load_settings(pasted).feeds] == [
        (e["url"], e["name"]) for e in expected
    ]


def test_cli_confirms_a_feed_url_and_says_why_candidates_are_not_feeds(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.set_feed("/news.xml", rss("News", 2))
    serve_page(feed_server, "/", page(""))
    feed_server.set_feed("/feed", rss("Only", 1))
    cfg = str(config(tmp_path))

    given = monitor("discover", feed_server.url("/news.xml"), "--config", cfg, cwd=tmp_path)
    verbose = monitor("discover", feed_server.url("/"), "-v", "--config", cfg, cwd=tmp_path)
    as_json = monitor("discover", feed_server.url("/"), "--json", "--config", cfg, cwd=tmp_path)

    assert given.returncode == 0, given.stderr
    assert f'{feed_server.url("/news.xml")} is a feed: "News" (RSS, 2 items)' in given.stdout
    assert snippet_of(given.stdout) == {
        "feeds": [{"url": feed_server.url("/news.xml"), "name": "News"}]
    }
    assert f"  {feed_server.url('/atom.xml')} (common path): HTTP 404 Not Found" in verbose.stdout
    report = json.loads(as_json.stdout)
    assert [(f["url"], f["type"], f["items"], f["found"]) for f in report["feeds"]] == [
        (feed_server.url("/feed"), "RSS", 1, "common path")
    ]
    assert yaml.safe_load(report["yaml"]) == {
        "feeds": [{"url": feed_server.url("/feed"), "name": "Only"}]
    }


def test_cli_shows_hostile_feed_titles_escaped(feed_server: FeedServer, tmp_path: Path) -> None:
    # What the parse stage keeps of a title (a right-to-left mark; the ANSI escape and the
    # bidi override it drops) reaches the terminal escaped, and the snippet's name clean.
    title = "Evil\u200f \u001b[2J\u001b]0;pwned\u0007 \u202egnp.exe \u0085end"
    feed_server.set_feed("/feed.json", json_feed(title, 1), content_type="application/json")
    serve_page(feed_server, "/", page(""))

    done = monitor(
        "discover", feed_server.url("/"), "--config", str(config(tmp_path)), cwd=tmp_path
    )

    assert done.returncode == 0, done.stderr
    assert not UNSAFE.search(done.stdout.replace("\n", ""))
    assert "\\u200f" in done.stdout
    assert "\x1b" not in done.stdout and "\u202e" not in done.stdout
    [entry] = snippet_of(done.stdout)["feeds"]
    assert not UNSAFE.search(entry["name"]) and entry["name"].startswith("Evil")


@pytest.mark.parametrize(
    ("path", "polling", "problem"),
    [
        ("/logo.png", "", "neither a feed nor an HTML page (Content-Type: image/png"),
        ("/missing", "", "HTTP 404 Not Found"),
        ("/slow", "timeout: 0.5s, deadline: 1s", "timed out"),
        (
            "/",
            "allow_private_networks: false",
            "refusing private address 127.0.0.1 for host 127.0.0.1 "
            "(allow_private_networks is false)",
        ),
        ("/empty-page", "", "no feed found: the page advertises none"),
    ],
)
def test_cli_names_the_url_and_the_problem_on_one_line(
    feed_server: FeedServer, tmp_path: Path, path: str, polling: str, problem: str
) -> None:
    feed_server.set_response("/logo.png", 200, PNG, {"Content-Type": "image/png"})
    feed_server.set_handler("/slow", lambda request: Response(body=rss("Slow", 1), delay=10))
    serve_page(feed_server, "/", page(""))
    serve_page(feed_server, "/empty-page", page(""))
    url = feed_server.url(path)

    done = monitor("discover", url, "--config", str(config(tmp_path, polling)), cwd=tmp_path)

    assert done.returncode == 1
    assert done.stderr.startswith(f"error: {url}: ")
    assert problem in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("example.org", "example.org: not an http(s) URL (did you mean https://example.org?)"),
        ("ftp://example.org/feed", "ftp://example.org/feed: unsupported URL scheme 'ftp'"),
        ("http://exa mple.org/\x1b[2J", "invalid URL"),
    ],
)
def test_cli_refuses_what_is_not_an_http_url(tmp_path: Path, url: str, problem: str) -> None:
    done = monitor("discover", url, cwd=tmp_path)  # no configuration: the defaults

    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and problem in done.stderr
    assert done.stderr.count("\n") == 1 and "\x1b" not in done.stderr
    assert done.stdout == ""
