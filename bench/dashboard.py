"""Dashboard benchmark: ``.venv/bin/python bench/dashboard.py [--items N] [--database URL]``.

Fills a fresh database with ``--feeds`` feeds and ``--items`` items whose titles and
summaries come from the corpus feeds (cycled, each copy its own item), spread over the
last 30 days, one in ``--alert-every`` with an alert (most deliveries sent, some failed or
dead), then asks every page of the dashboard ``--repeat`` times through the app
in-process (httpx over ASGI: the server's own work, no socket) and prints the median and
the slowest time of each, with the size of the HTML. The query tester and the searches
run with their per-request bounds, so their figures are the most a request costs.

It measures, it does not check content (the suite does that).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from feedhost import REPO, corpus_files, default_corpus

sys.path.insert(0, str(REPO))

PASSWORD = "bench dashboard password"
WATCHLISTS = {
    "csto": "CSTO OR ОДКБ",
    "kazakhstan": "Kazakhstan OR Казахстан OR Қазақстан",
    "tokayev": "Tokayev OR Токаев OR Тоқаев",
    "energy": "gas OR oil OR нефть OR газ",
}
TAG = re.compile(r"<[^>]+>")


def corpus_texts(limit_files: int) -> list[tuple[str, str]]:
    import feedparser

    texts: list[tuple[str, str]] = []
    for path in corpus_files(default_corpus())[:limit_files]:
        parsed = feedparser.parse(path.read_bytes())
        for entry in parsed.entries:
            title = TAG.sub("", entry.get("title", "")).strip()
            summary = TAG.sub("", entry.get("summary", "")).strip()[:1000]
            if title:
                texts.append((title, summary))
    return texts


def fill(url: str, args: argparse.Namespace) -> None:
    from sqlalchemy import insert

    from alerts.render import HIGHLIGHT_END, HIGHLIGHT_START
    from monitor.store.engine import create_db_engine, migrate
    from monitor.store.schema import AlertRow, DeliveryRow, FeedRow, ItemRow

    engine = create_db_engine(url)
    migrate(engine)
    texts = corpus_texts(args.corpus_files)
    now = datetime.now(UTC)
    states = ["ok"] * 95 + ["error"] * 4 + ["gone"]
    feeds = [
        {
            "id": i + 1,
            "url": f"http://127.0.0.{i % 20 + 1}/feed/{i}.xml",
            "current_url": f"http://127.0.0.{i % 20 + 1}/feed/{i}.xml",
            "name": f"Feed {i}",
            "title": f"Corpus feed {i}",
            "state": states[i % len(states)],
            "last_error": "HTTP 500 Internal Server Error" if states[i % 100] == "error" else None,
            "error_count": 3 if states[i % 100] == "error" else 0,
            "last_polled_at": now - timedelta(seconds=i % 600),
            "last_status": 200,
            "next_poll_at": now + timedelta(minutes=15),
            "created_at": now - timedelta(days=60),
            "source": "config",
        }
        for i in range(args.feeds)
    ]
    names = list(WATCHLISTS)
    items, alerts, deliveries = [], [], []
    for n in range(args.items):
        title, summary = texts[n % len(texts)]
        seen = now - timedelta(seconds=30 * 86400 * n / args.items)
        key = f"bench:{n}"
        items.append(
            {
                "id": n + 1,
                "feed_id": n % args.feeds + 1,
                "key": key,
                "key_hash": hashlib.sha256(key.encode()).hexdigest(),
                "guid": key,
                "link": f"https://example.org/news/{n}",
                "title": title,
                "summary": summary,
                "content": "",
                "author": "",
                "categories": [],
                "published": seen,
                "updated": None,
                "content_hash": hashlib.sha256(f"{title}{summary}".encode()).hexdigest(),
                "first_seen_at": seen,
                "changed_at": seen,
            }
        )
        if n % args.alert_every == 0:
            word = title.split()[0]
            alert_id = str(uuid.uuid4())
            snippet = f"{HIGHLIGHT_START}{word}{HIGHLIGHT_END}{title[len(word) :]}"
            alerts.append(
                {
                    "id": alert_id,
                    "item_id": n + 1,
                    "watchlist": names[n // args.alert_every % len(names)],
                    "matches": [{"term": word, "field": "title", "snippet": snippet}],
                    "created_at": seen,
                }
            )
            state = "dead" if n % 97 == 0 else "failed" if n % 89 == 0 else "sent"
            deliveries.append(
                {
                    "alert_id": alert_id,
                    "channel": "hook",
                    "state": state,
                    "attempts": 1,
                    "last_error": None if state == "sent" else "HTTP 400 Bad Request",
                    "sent_at": seen if state == "sent" else None,
                }
            )
    with engine.begin() as conn:
        conn.execute(insert(FeedRow), feeds)
        for table, rows in ((ItemRow, items), (AlertRow, alerts), (DeliveryRow, deliveries)):
            for start in range(0, len(rows), 5000):
                conn.execute(insert(table), rows[start : start + 5000])
    engine.dispose()
    print(
        f"filled: {args.feeds} feeds, {len(items)} items, {len(alerts)} alerts "
        f"({len(texts)} distinct corpus texts)"
    )


def write_config(path: Path, url: str) -> Path:
    watchlists = "".join(
        f"  - name: {name}\n    query: '{query}'\n    notify: [hook]\n"
        for name, query in WATCHLISTS.items()
    )
    config = path / "monitor.yaml"
    config.write_text(
        f"database: {url}\n"
        f'http: {{listen: "127.0.0.1:0", password: "{PASSWORD}"}}\n'
        f"watchlists:\n{watchlists}"
        "channels:\n  - name: hook\n    type: webhook\n    url: http://127.0.0.1:9/hook\n",
        encoding="utf-8",
    )
    return config


PAGES = [
    "/",
    "/feeds",
    "/feeds?sort=items&dir=desc",
    "/feeds/1",
    "/alerts",
    "/alerts?state=dead",
    "/alerts?q=Kazakhstan",
    "/watchlists",
    "/watchlists/kazakhstan",
    "/watchlists/kazakhstan?q=Kazakhstan+OR+Uzbekistan&days=7",
    "/watchlists/kazakhstan?q=Kazakhstan+OR+Uzbekistan&days=30",
    "/items",
    "/items?q=Токаев",
]


async def measure(config: Path, repeat: int) -> None:
    import httpx

    from monitor.app import App
    from monitor.config import load_settings
    from monitor.schedule import Service
    from monitor.web.app import create_web_app
    from monitor.web.context import WebContext

    settings = load_settings(config, {})
    app = await asyncio.to_thread(App, settings)
    try:
        web = create_web_app(WebContext(Service(app)))
        transport = httpx.ASGITransport(app=web)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            form = await client.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf, form.text
            signed = await client.post("/login", data={"csrf": csrf[1], "password": PASSWORD})
            assert signed.status_code == 303, signed.text
            print(f"{'page':<58} {'median':>9} {'slowest':>9} {'html':>9}")
            for page in PAGES:
                times, size, status = [], 0, 0
                for _ in range(repeat):
                    start = time.perf_counter()
                    response = await client.get(page)
                    times.append(time.perf_counter() - start)
                    size, status = len(response.content), response.status_code
                flag = "" if status == 200 else f"  (HTTP {status})"
                print(
                    f"{page:<58} {statistics.median(times) * 1000:>7.0f}ms "
                    f"{max(times) * 1000:>7.0f}ms {size / 1024:>7.0f}KB{flag}"
                )
    finally:
        await app.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--alert-every", type=int, default=10)
    parser.add_argument("--corpus-files", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", help="a fresh PostgreSQL database URL (default: SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{Path(tmp) / 'bench.db'}"
        start = time.perf_counter()
        fill(url, args)
        print(f"filled in {time.perf_counter() - start:.1f}s")
        asyncio.run(measure(write_config(Path(tmp), url), args.repeat))


if __name__ == "__main__":
    main()
