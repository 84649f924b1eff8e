"""``monitor match`` and ``monitor backtest``: explanations without storing or sending."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from feedserver import FeedServer
from test_service import CSTO_ITEM, OTHER_ITEM, rss

from monitor.app import poll_once
from monitor.cli import app
from monitor.config import load_settings

FEEDS = Path(__file__).parent / "data" / "feeds"


@pytest.fixture
def config(tmp_path: Path, feed_server: FeedServer) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"""
database: sqlite:///{tmp_path / "m.db"}
polling: {{parse_workers: 0}}
defaults: {{backlog: none}}
feeds:
  - url: {feed_server.url("/feed.xml")}
    name: Wire
watchlists:
  - name: csto
    terms: [CSTO, ОДКБ]
  - name: unrest
    query: 'Kazakhstan AND (protest* OR unrest) NOT (football OR "World Cup")'
    feeds: [Wire]
""",
        encoding="utf-8",
    )
    return path


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_match_text_as_json_names_watchlists_terms_fields(config: Path) -> None:
    code, out = invoke("match", "--json", "--config", str(config), "Саммит ОДКБ в Астане")
    assert code == 0
    assert json.loads(out) == [
        {
            "watchlist": "csto",
            "matches": [
                {"term": "ОДКБ", "field": "title", "snippet": "Саммит ОДКБ в Астане"},
                {"term": "ОДКБ", "field": "summary", "snippet": "Саммит ОДКБ в Астане"},
            ],
        }
    ]


def test_match_nothing_gives_empty_list(config: Path) -> None:
    code, out = invoke("match", "--json", "--config", str(config), "Kazakh cuisine and CSTOMER")
    assert (code, json.loads(out)) == (0, [])


def test_match_title_and_summary_fields(config: Path) -> None:
    code, out = invoke(
        "match", "--json", "--config", str(config),
        "--title", "Kazakhstan today", "--summary", "protests in Almaty",
    )  # fmt: skip
    found = json.loads(out)
    assert code == 0 and [f["watchlist"] for f in found] == ["unrest"]
    fields = {(m["term"], m["field"]) for m in found[0]["matches"]}
    assert fields == {("Kazakhstan", "title"), ("protest*", "summary")}


def test_match_text_output_highlights_the_term(config: Path) -> None:
    code, out = invoke("match", "--config", str(config), "The CSTO met")
    assert code == 0 and "«CSTO»" in out


def test_match_feed_file_lists_matching_items(config: Path) -> None:
    code, out = invoke(
        "match", "--json", "--config", str(config), "--feed-file",
        str(FEEDS / "rss2-cp1251-oren-news.xml"),
    )  # fmt: skip
    assert code == 0
    assert len(json.loads(out)) == 10  # one entry per item, matched or not


def test_match_needs_exactly_one_input(config: Path) -> None:
    code, out = invoke("match", "--config", str(config))
    assert code == 2 and "give TEXT" in out


async def test_backtest_lists_what_would_have_alerted(
    config: Path, feed_server: FeedServer
) -> None:
    feed_server.set_feed("/feed.xml", rss(CSTO_ITEM, OTHER_ITEM))
    reports, _ = await poll_once(load_settings(config, {}))
    assert [r.matched for r in reports] == [0]  # backlog none: nothing alerted live
    code, out = invoke("backtest", "--json", "--config", str(config), "--since", "1d")
    assert code == 0
    [hit] = json.loads(out)
    assert hit["item"]["title"] == CSTO_ITEM[1] and hit["feed"]["name"] == "Wire"
    assert [w["watchlist"] for w in hit["watchlists"]] == ["csto"]
    code, out = invoke("backtest", "--config", str(config), "--watchlist", "unrest")
    assert code == 0 and "would have alerted: none" in out
    code, out = invoke("backtest", "--config", str(config), "--watchlist", "nope")
    assert code == 2 and "no watchlist named 'nope'" in out


async def test_match_feed_gives_an_unnamed_feed_the_name_the_pipeline_gives_it(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """One rule for a feed's name: an unnamed feed goes by its own title in ``feed:``
    queries, live and in ``monitor match --feed``."""
    path = tmp_path / "monitor.yaml"
    url = feed_server.url("/feed.xml")
    path.write_text(
        f"""
database: sqlite:///{tmp_path / "m.db"}
polling: {{parse_workers: 0}}
defaults: {{backlog: all}}
feeds:
  - url: {url}
watchlists:
  - name: wire
    query: 'feed:"Central Asia wire" AND CSTO'
""",
        encoding="utf-8",
    )
    feed_server.set_feed("/feed.xml", rss(CSTO_ITEM))
    reports, _ = await poll_once(load_settings(path, {}))
    assert [r.matched for r in reports] == [1]  # live: the feed's title is its name
    code, out = invoke("match", "--json", "--config", str(path), "--feed", url, "CSTO summit")
    assert code == 0
    assert [w["watchlist"] for w in json.loads(out)] == ["wire"]
