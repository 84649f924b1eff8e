"""``monitor feeds`` and its import, export and remove, run as a user runs them: real
processes, real servers on 127.0.0.1, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from feedserver import FeedServer
from receivers import WebhookReceiver
from test_cli import Running, monitor
from test_service import NOW, rss

from alerts.controls import UNSAFE
from monitor.store import Store
from monitor.store.engine import create_db_engine
from monitor.types import utcnow

DATA = Path(__file__).parent / "data" / "opml"
TOKAYEV = ("k1", "Tokayev meets the CSTO", "Talks in Astana.", NOW)


def configure(path: Path, db_url: str, feed_server: FeedServer, hook: WebhookReceiver) -> Path:
    path.write_text(
        f"""
database: {db_url}
http: null
defaults: {{interval: 1h, backlog: all}}
service: {{tick: 0.2s}}
polling: {{parse_workers: 0}}
feeds:
  - url: {feed_server.url("/file.xml")}
    name: File feed
    tags: [wire]
watchlists:
  - name: tokayev
    terms: [Tokayev]
    tags: [kz]
    notify: [hook]
channels:
  - name: hook
    type: webhook
    url: {hook.url}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def config(
    tmp_path: Path, sqlite_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> Path:
    """On SQLite: the commands' logic does not depend on the database, and the store's
    side of each rule runs on both in test_feed_sources.py (one test here runs on both)."""
    return configure(tmp_path / "monitor.yaml", sqlite_url, feed_server, webhook_receiver)


def opml_file(tmp_path: Path, feed_server: FeedServer, extra: str = "") -> Path:
    """An export with a folder ``kz`` (tag scoping), a feed outside it, the file's own
    feed, and whatever ``extra`` adds."""
    path = tmp_path / "reader.opml"
    path.write_text(
        f"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>Reader</title></head><body>
  <outline text="kz">
    <outline text="Kazinform" type="rss" xmlUrl="{feed_server.url("/kz.xml")}"/>
  </outline>
  <outline text="Elsewhere" type="rss" xmlUrl="{feed_server.url("/other.xml")}" category="/misc"/>
  <outline text="Also the file's" type="rss" xmlUrl="{feed_server.url("/file.xml")}"/>
  {extra}
</body></opml>
""",
        encoding="utf-8",
    )
    return path


def listed(config: Path) -> dict[str, dict[str, Any]]:
    result = monitor("feeds", "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    return {f["configured_url"]: f for f in json.loads(result.stdout)}


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def test_import_reports_what_it_added_kept_and_skipped(
    tmp_path: Path, db_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    config = configure(tmp_path / "monitor.yaml", db_url, feed_server, webhook_receiver)
    hostile = (
        '<outline text="Bell\x07" type="rss" xmlUrl="https://bell.example/"/>'
        '<outline text="Secret" type="rss" xmlUrl="https://me:hunter2@x.example/f?token=s3cr3t"/>'
        '<outline text="Ftp" type="rss" xmlUrl="ftp://ftp.example/feed"/>'
    )
    path = opml_file(tmp_path, feed_server, hostile)

    dry = ok(monitor("feeds", "import", str(path), "--dry-run", "--config", str(config)))
    assert "would add 3" in dry and "dry run: nothing was changed" in dry
    assert listed(config) == {}

    out = ok(monitor("feeds", "import", str(path), "--config", str(config)))
    assert f"{path}: 6 entries" in out
    assert "added 3 (polled from the service's next tick)" in out
    assert f'+ "Kazinform" {feed_server.url("/kz.xml")} [tags: kz]' in out
    assert "listed in the configuration file, which owns it" in out
    assert '- "Ftp" ftp://ftp.example/feed: not an http(s) URL (ftp:)' in out
    assert '- "Bell\\x07" https://bell.example/: name' in out  # escaped, never raw
    assert not UNSAFE.search(out.replace("\n", ""))
    assert "hunter2" not in out and "s3cr3t" not in out and "token=***" in out

    feeds = listed(config)
    kz = feeds[feed_server.url("/kz.xml")]
    assert (kz["source"], kz["tags"], kz["name"], kz["active"]) == (
        "opml",
        ["kz"],
        "Kazinform",
        True,
    )
    assert feeds[feed_server.url("/other.xml")]["tags"] == ["misc"]
    assert feed_server.url("/file.xml") not in feeds  # the file's, not the import's

    again = ok(monitor("feeds", "import", str(path), "--config", str(config)))
    assert "added 0" in again and "(imported earlier)" in again


def test_a_readers_whole_export_is_imported_and_shared_names_are_pointed_out(
    config: Path,
) -> None:
    """NetNewsWire's export lists 207 feeds, some under the same title (two "Daring
    Fireball" URLs): all are kept, and the import says which names now cover several."""
    path = DATA / "netnewswire-Subs.opml"
    out = ok(monitor("feeds", "import", str(path), "--config", str(config)))
    assert "added 207 (polled" in out and "skipped: 0" in out
    assert 'note: 2 feeds are called "Daring Fireball"' in out
    feeds = listed(config)
    assert len(feeds) == 207 and {f["source"] for f in feeds.values()} == {"opml"}
    assert feeds["http://www.gerrold.com/feed/"]["tags"] == ["Writers"]


def test_a_file_that_cannot_be_imported_is_one_clear_error(config: Path, tmp_path: Path) -> None:
    for name in ("hostile-billion-laughs.opml", "missing.opml"):
        path = DATA / name
        result = monitor("feeds", "import", str(path), "--config", str(config))
        assert result.returncode == 1 and result.stderr.startswith(f"error: {path}: ")
        assert "Traceback" not in result.stderr
    page = tmp_path / "page.opml"
    page.write_text("<html><body>not a list</body></html>", encoding="utf-8")
    result = monitor("feeds", "import", str(page), "--config", str(config))
    assert result.returncode == 1 and "not an OPML document" in result.stderr


def test_listing_shows_each_feeds_source_tags_and_pause(
    config: Path, tmp_path: Path, feed_server: FeedServer, sqlite_url: str
) -> None:
    feed_server.set_feed("/file.xml", rss())
    feed_server.set_feed("/kz.xml", rss())
    feed_server.set_feed("/other.xml", rss())
    ok(monitor("feeds", "import", str(opml_file(tmp_path, feed_server)), "--config", str(config)))
    ok(monitor("poll", "--config", str(config)))  # syncs the file's feed too
    engine = create_db_engine(sqlite_url)
    store = Store(engine)
    other = listed(config)[feed_server.url("/other.xml")]
    [row] = [r for r in store.list_feeds() if r.configured_url == other["configured_url"]]
    assert store.pause_feed(row.id, utcnow())
    engine.dispose()

    feeds = listed(config)
    sources = {url: (f["source"], f["tags"]) for url, f in feeds.items()}
    assert sources == {
        feed_server.url("/file.xml"): ("config", ["wire"]),
        feed_server.url("/kz.xml"): ("opml", ["kz"]),
        feed_server.url("/other.xml"): ("opml", ["misc"]),
    }
    assert feeds[feed_server.url("/other.xml")]["paused_at"] is not None
    assert feeds[feed_server.url("/kz.xml")]["paused_at"] is None

    table = ok(monitor("feeds", "--config", str(config)))
    assert "SOURCE" in table.splitlines()[0]
    [elsewhere] = [line for line in table.splitlines() if line.endswith("Elsewhere")]
    assert elsewhere.split()[1] == "opml" and " paused " in elsewhere
    assert "tags: wire" in table and "tags: kz" in table


def test_a_watchlist_scoped_to_an_imported_tag_or_name_is_accepted_and_alerts(
    config: Path, tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    """No feed in the file has the tag ``kz`` or the name ``Kazinform``: the configuration
    is still valid (imported feeds may), ``monitor feeds`` says so until one does, and once
    the folder ``kz`` is imported, its feed's items alert and the other feeds' do not."""
    text = config.read_text(encoding="utf-8")
    named = "  - name: named\n    terms: [Tokayev]\n    feeds: [Kazinform]\n    notify: [hook]\n"
    config.write_text(text.replace("channels:", named + "channels:"), encoding="utf-8")
    assert ok(monitor("check", "--config", str(config)))
    before = ok(monitor("feeds", "--config", str(config)))
    assert "note: watchlist 'tokayev' is scoped to tag 'kz', which no active feed has" in before
    assert "note: watchlist 'named' is scoped to feed 'Kazinform', which no active feed" in before

    feed_server.set_feed("/file.xml", rss(("f1", "Tokayev in the file's feed", "x", NOW)))
    feed_server.set_feed("/kz.xml", rss(TOKAYEV))
    feed_server.set_feed("/other.xml", rss(("o1", "Tokayev elsewhere", "y", NOW)))
    path = opml_file(tmp_path, feed_server)
    assert "note:" not in ok(monitor("feeds", "import", str(path), "--config", str(config)))
    ok(monitor("poll", "--config", str(config)))
    alerts = [r.json() for r in webhook_receiver.wait_for(2, timeout=30)]
    assert {(a["watchlist"], a["item"]["title"], a["feed"]["name"]) for a in alerts} == {
        ("tokayev", TOKAYEV[1], "Kazinform"),
        ("named", TOKAYEV[1], "Kazinform"),
    }
    assert len(webhook_receiver.requests) == 2


def test_remove_stops_a_database_feed_and_refuses_the_files(
    config: Path, tmp_path: Path, feed_server: FeedServer
) -> None:
    path = opml_file(tmp_path, feed_server)
    ok(monitor("feeds", "import", str(path), "--config", str(config)))
    kz = feed_server.url("/kz.xml")

    out = ok(monitor("feeds", "remove", kz, "--config", str(config)))
    assert out.startswith(f"removed Kazinform ({kz}): no longer polled")
    assert "scoped to tag 'kz', which no active feed has" in out  # its only feed went
    assert listed(config)[kz]["active"] is False

    for url, message in (
        (feed_server.url("/file.xml"), "is listed in the configuration file"),
        ("https://unknown.example/feed", "no feed with the URL"),
    ):
        result = monitor("feeds", "remove", url, "--config", str(config))
        assert result.returncode == 1 and message in result.stderr, result.stderr

    back = ok(monitor("feeds", "import", str(path), "--config", str(config)))
    assert "(brought back: it had been removed)" in back
    assert listed(config)[kz]["active"] is True


def test_export_then_import_into_a_fresh_database_gives_the_same_feeds(
    config: Path,
    tmp_path: Path,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
) -> None:
    secret = '<outline text="Secret" type="rss" xmlUrl="https://me:hunter2@x.example/f"/>'
    ok(monitor("feeds", "import", str(opml_file(tmp_path, feed_server, secret)), "-c", str(config)))
    assert feed_server.url("/file.xml") not in listed(config)  # never polled: not synced yet

    exported = monitor("feeds", "export", "--config", str(config))
    assert exported.returncode == 0, exported.stderr
    assert "hunter2" not in exported.stdout and "x.example" not in exported.stdout
    assert "left out 1 feed(s) whose URL carries credentials" in exported.stderr
    assert "hunter2" not in exported.stderr
    assert '<opml version="2.0">' in exported.stdout and 'category="/kz"' in exported.stdout

    target = tmp_path / "all.opml"
    ok(monitor("feeds", "export", "--with-secrets", "-o", str(target), "--config", str(config)))
    assert "https://me:hunter2@x.example/f" in target.read_text(encoding="utf-8")

    fresh_dir = tmp_path / "fresh"
    fresh_dir.mkdir()
    fresh_url = f"sqlite:///{fresh_dir / 'fresh.db'}"
    fresh = configure(fresh_dir / "monitor.yaml", fresh_url, feed_server, webhook_receiver)
    fresh.write_text(fresh.read_text(encoding="utf-8").split("feeds:")[0] + "feeds: []\n")
    ok(monitor("feeds", "import", str(target), "--config", str(fresh)))

    def summary(config_path: Path) -> set[tuple[str, str, tuple[str, ...]]]:
        return {
            (f["configured_url"], f["name"], tuple(f["tags"]))
            for f in listed(config_path).values()
            if f["active"]
        }

    the_files = (feed_server.url("/file.xml"), "File feed", ("wire",))  # from the file itself
    assert summary(fresh) == summary(config) | {the_files}
    assert len(summary(fresh)) == 4  # the file's, Kazinform, Elsewhere, the secret one


def test_import_works_beside_a_running_service_which_polls_the_new_feed(
    tmp_path: Path, sqlite_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    """On SQLite the service holds the instance lock; the import, like ``alerts retry``,
    does not need it, and the service's next claim reads the new row: no reload."""
    config = configure(tmp_path / "monitor.yaml", sqlite_url, feed_server, webhook_receiver)
    feed_server.set_feed("/file.xml", rss())
    feed_server.set_feed("/kz.xml", rss(TOKAYEV))
    feed_server.set_feed("/other.xml", rss())
    running = Running(config)
    try:
        feed_server.wait_for_requests("/file.xml", 1, timeout=60)  # the service is up
        out = ok(
            monitor("feeds", "import", str(opml_file(tmp_path, feed_server)), "-c", str(config))
        )
        assert "added 2" in out
        feed_server.wait_for_requests("/kz.xml", 1, timeout=30)
        [alert] = webhook_receiver.wait_for(1, timeout=30)
        assert alert.json()["item"]["title"] == TOKAYEV[1]
    finally:
        log = running.stop()
    assert running.process.returncode == 0, log
    assert "configuration reloaded" not in log and "Traceback" not in log
