"""Full text for teaser feeds, measured: ``.venv/bin/python bench/fulltext.py``.

Three figures:

1. Extraction time per page: ``extract_article`` (trafilatura, fast mode) over the saved
   pages in ``tests/data/articles`` (origins in its MANIFEST.tsv: three real saved pages and
   five pages assembled from corpus feed items), ``--runs`` times each in this process after
   one warm-up; per page the median, then the median and max over pages.
2. Extra fetches and time per poll: a teaser feed of those pages on a loopback server,
   served twice, polled by one ``App`` (SQLite in a temporary directory, one parse worker,
   started before timing) without and with ``fulltext: true``, three times: first poll
   (every item new), one new item, nothing new. Article requests counted by the server;
   the extraction's median from the poll's report (as the metric sees it: in the worker,
   with the pipe and the wait for the one worker).
3. What the watchlists gain: the watchlists of ``examples/monitor.yaml`` matched on each
   item's teaser (title and summary) and on the same item with its full text as content;
   and, for any watchlist, the distinct words each offers to match.
   Over the saved pages, and over the corpus feeds (``../shared/corpus/feeds``) whose items
   carry both a short summary and a long content: real teaser/article pairs.

It does not test correctness (the suite does) and needs no network.
"""

from __future__ import annotations

import asyncio
import csv
import glob
import re
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.app import App  # noqa: E402
from monitor.config import load_settings  # noqa: E402
from monitor.fulltext import TEASER_CHARS  # noqa: E402
from monitor.match import Matcher  # noqa: E402
from monitor.parse.article import extract_article  # noqa: E402
from monitor.parse.feed import parse_feed  # noqa: E402
from monitor.types import FetchResult, Item, MatchContext  # noqa: E402

ARTICLES = REPO / "tests" / "data" / "articles"
CORPUS = REPO.parent / "shared" / "corpus" / "feeds"
HTML = {"Content-Type": "text/html; charset=utf-8"}


def pages() -> list[dict[str, str]]:
    with (ARTICLES / "MANIFEST.tsv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def extraction_times(runs: int) -> None:
    print(f"1. extraction time per page (median of {runs} runs, after one warm-up)")
    medians = []
    for page in pages():
        body = (ARTICLES / page["file"]).read_bytes()
        extract_article(body, url=page["original_url"], headers=HTML)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            article = extract_article(body, url=page["original_url"], headers=HTML)
            times.append(time.perf_counter() - started)
        medians.append(statistics.median(times))
        print(
            f"   {page['file']:34} {len(body) / 1024:6.1f} KiB -> {len(article.text):6} chars "
            f"{medians[-1] * 1000:7.1f} ms"
        )
    print(
        f"   over {len(medians)} pages: median {statistics.median(medians) * 1000:.1f} ms, "
        f"max {max(medians) * 1000:.1f} ms"
    )
    real = [m for m, page in zip(medians, pages(), strict=True) if page["kind"].startswith("real")]
    print(
        f"   over the {len(real)} real saved pages (not assembled): median "
        f"{statistics.median(real) * 1000:.1f} ms, max {max(real) * 1000:.1f} ms"
    )


class _Site(BaseHTTPRequestHandler):
    feed: ClassVar[bytes] = b""
    articles: ClassVar[dict[str, bytes]] = {}
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        if self.path in ("/feed.xml", "/plain.xml"):
            body, kind = self.feed, "application/rss+xml"
        elif self.path in self.articles:
            body, kind = self.articles[self.path], "text/html; charset=utf-8"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def teaser_feed(base: str, rows: list[dict[str, str]]) -> bytes:
    now = format_datetime(datetime.now(UTC))
    items = "".join(
        f"<item><guid>{escape(r['file'])}</guid><title>{escape(r['title'])}</title>"
        f"<link>{base}/{escape(r['file'])}</link><description>{escape(r['teaser'])}"
        f"</description><pubDate>{now}</pubDate></item>"
        for r in rows
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Teasers</title>{items}'
        "</channel></rss>"
    ).encode()


async def fetches_per_poll() -> None:
    print("2. extra fetches and time per poll (teaser feed of the saved pages, one parse worker)")
    rows = pages()
    _Site.articles = {f"/{r['file']}": (ARTICLES / r["file"]).read_bytes() for r in rows}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "monitor.yaml"
        # The same items twice: a feed without full text, the baseline, and one with it.
        config.write_text(
            f"database: sqlite:///{tmp}/monitor.db\n"
            "polling: {parse_workers: 1, jitter: 0}\n"
            f"feeds: [{{url: '{base}/plain.xml'}}, {{url: '{base}/feed.xml', fulltext: true}}]\n"
            "watchlists: [{name: w, terms: [Kazakhstan]}]\n",
            encoding="utf-8",
        )
        settings = load_settings(config, {})
        async with App(settings) as app:
            # The parse worker starts (about 5 s here) and imports trafilatura (0.4 s) before
            # anything is timed.
            warm = FetchResult(url=base, final_url=base, status=200, body=teaser_feed(base, rows))
            await app.parser.parse(warm)
            await app.parser.extract(replace(warm, body=_Site.articles[f"/{rows[0]['file']}"]))
            for label, shown in (
                ("first poll", rows[:-1]),
                ("one new item", rows),
                ("none new", rows),
            ):
                _Site.feed = teaser_feed(base, shown)
                claimed = await app.pipeline.claim_feeds(only_due=False)
                feeds = {f.url.rsplit("/", 1)[1]: f for f in claimed}
                ms = {}
                for name in ("plain.xml", "feed.xml"):
                    _Site.requests = []
                    [report] = await app.pipeline.poll_feeds([feeds[name]])
                    ms[name] = report.ms
                extra = len([p for p in _Site.requests if not p.endswith(".xml")])
                articles = report.articles
                extract = (
                    f"extraction {statistics.median(articles.extract_seconds) * 1000:.0f} ms "
                    "median per page (in the worker, waiting for it included)"
                    if articles and articles.extract_seconds
                    else "no extraction"
                )
                print(
                    f"   {label:13} items={len(shown)} new={report.new} extra fetches={extra}: "
                    f"poll {ms['feed.xml']:.0f} ms (without full text {ms['plain.xml']:.0f} ms), "
                    f"{extract}"
                )
    server.shutdown()


def gain(label: str, pairs: list[tuple[Item, Item]], matcher: Matcher) -> None:
    """Items each watchlist matches on the teaser, and with the full text."""
    context = MatchContext(feed_name="bench", feed_url="https://example.org/feed")
    names = [w.name for w in matcher.watchlists]
    teaser = dict.fromkeys(names, 0)
    full = dict.fromkeys(names, 0)
    for short, long in pairs:
        for m in matcher.match_item(short, context):
            teaser[m.watchlist] += 1
        for m in matcher.match_item(long, context):
            full[m.watchlist] += 1
    shown = ", ".join(f"{n}: {teaser[n]} -> {full[n]}" for n in names)
    print(f"   {label:44} {len(pairs):4} items; matched on teaser -> full text: {shown}")
    # What any watchlist could match: the distinct words an item offers.
    words = [(len(_words(s)), len(_words(f))) for s, f in pairs]
    print(
        f"   {'':44} distinct words per item, median: teaser "
        f"{statistics.median(w[0] for w in words):.0f} -> full text "
        f"{statistics.median(w[1] for w in words):.0f}"
    )


def _words(item: Item) -> set[str]:
    return set(re.findall(r"\w+", f"{item.title} {item.summary} {item.content}".casefold()))


def corpus_pairs() -> list[tuple[Item, Item]]:
    """Items with a short summary and a long content: the teaser alone, and the whole."""
    pairs = []
    for path in sorted(glob.glob(str(CORPUS / "*"))):
        if path.endswith(".tsv"):
            continue
        try:
            parsed = parse_feed(Path(path).read_bytes(), url="https://example.org/", headers={})
        except Exception:  # a corpus file that is no feed: not this benchmark's business
            continue
        for item in parsed.items:
            if 0 < len(item.summary) < TEASER_CHARS and len(item.content) >= 3 * TEASER_CHARS:
                pairs.append((replace(item, content=""), item))
    return pairs


def watchlist_gain() -> None:
    print("3. watchlists of examples/monitor.yaml: items matched, teaser -> with full text")
    settings = load_settings(REPO / "examples" / "monitor.yaml", {})
    matcher = Matcher(settings.watchlists_for())
    saved = []
    for page in pages():
        body = (ARTICLES / page["file"]).read_bytes()
        text = extract_article(body, url=page["original_url"], headers=HTML).text
        short = Item(
            key=page["file"], guid=None, link=page["original_url"], title=page["title"],
            summary=page["teaser"], content="", author="", categories=(), published=None,
            updated=None, content_hash="",
        )  # fmt: skip
        saved.append((short, replace(short, content=text)))
    gain("saved pages (extracted by trafilatura)", saved, matcher)
    gain("corpus items, short summary + long content", corpus_pairs(), matcher)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    extraction_times(runs)
    asyncio.run(fetches_per_poll())
    watchlist_gain()


if __name__ == "__main__":
    main()
