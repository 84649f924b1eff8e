"""Every corpus feed, served over HTTP and polled by the service, stores the right number
of items with its text decoded correctly, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from feedserver import FeedServer

from monitor.app import poll_once
from monitor.config import load_settings
from monitor.store import Store
from monitor.store.engine import create_db_engine

DATA = Path(__file__).parent / "data"
GOLDEN = json.loads((DATA / "parse_expected.json").read_text(encoding="utf-8"))["feeds"]


async def test_every_corpus_feed_is_stored_with_the_right_item_count(
    tmp_path: Path, db_url: str, feed_server: FeedServer
) -> None:
    for name in GOLDEN:
        kind = "application/json" if name.endswith(".json") else "application/xml"
        # No charset in the header: the documents' own declarations and BOMs must do.
        feed_server.set_feed(f"/{name}", (DATA / "feeds" / name).read_bytes(), content_type=kind)
    feeds = "".join(f"  - url: {feed_server.url('/' + name)}\n" for name in GOLDEN)
    config = tmp_path / "monitor.yaml"
    config.write_text(
        f"database: {db_url}\npolling: {{parse_workers: 1}}\nfeeds:\n{feeds}", encoding="utf-8"
    )
    settings = load_settings(config, {})
    reports, _ = await poll_once(settings)
    assert {r.state for r in reports} <= {"ok", "error"}
    store = Store(create_db_engine(settings.database))
    stored = {f.configured_url.rsplit("/", 1)[1]: f for f in store.list_feeds()}
    counts = {name: stored[name].items for name in GOLDEN}
    assert counts == {name: entry["items"] for name, entry in GOLDEN.items()}

    stored_titles = {
        (row.feed_configured_url.rsplit("/", 1)[1], row.item.title)
        for row in store.items_since(datetime(2000, 1, 1, tzinfo=UTC))
    }
    for expected in DECODED:
        assert expected in stored_titles


# Titles as they must come out of the database: each encoding decoded correctly.
DECODED = [
    ("rss2-cp1251-oren-news.xml", "В Бузулуке главные стройплощадки – детсад и Ледовый дворец"),
    ("rss2-cp1251-xakep.xml", "Руководители разведки США шутят об убийстве Сноудена"),
    ("rss2-koi8r-opennet.xml", "Выпуск Python 2.7.13"),
    ("rss-koi8r-nodecl-chardet-bozo.xml", "Как пережить новогоднюю ночь"),
]
