"""``monitor match`` and ``monitor backtest``: try watchlists without storing or sending.

``match`` runs the configured watchlists over a text, an item's fields or a feed file and
says which match and why. ``backtest`` runs them over the items already stored and lists
what would have alerted, so a query can be tuned before it goes live.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from click.exceptions import Exit

from alerts.durations import parse_duration
from alerts.render import HIGHLIGHT_END, HIGHLIGHT_START, plain_snippet
from monitor.cli.common import FILE_PATH, config_option, iso, json_option, load, with_store
from monitor.cli.terminal import echo, echo_json
from monitor.errors import ParseError
from monitor.match import Matcher
from monitor.store import FeedStatus, Store
from monitor.trial import (
    Backtest,
    feed_context,
    run_backtest,
    tags_by_url,
    text_item,
    trial_matcher,
)
from monitor.types import Item, WatchlistMatch, utcnow

MAX_BACKTEST_ITEMS = 100_000  # newest first; held in memory while matched


def _list_feeds(store: Store) -> list[FeedStatus]:
    return store.list_feeds()


def _matches_json(found: Sequence[WatchlistMatch]) -> list[dict[str, Any]]:
    return [
        {
            "watchlist": f.watchlist,
            "matches": [
                {"term": m.term, "field": m.field, "snippet": plain_snippet(m.snippet)[0]}
                for m in f.matches
            ],
        }
        for f in found
    ]


def _echo_matches(found: Sequence[WatchlistMatch], indent: str = "") -> None:
    if not found:
        echo(f"{indent}no watchlist matches")
    for f in found:
        echo(f"{indent}{f.watchlist}:")
        for m in f.matches:
            snippet = m.snippet.replace(HIGHLIGHT_START, "«").replace(HIGHLIGHT_END, "»")
            echo(f"{indent}  {m.term!r} in {m.field}: {snippet}")


@click.command()
@click.argument("text", required=False)
@click.option("--title", help="The item's title.")
@click.option("--summary", help="The item's summary.")
@click.option("--feed-file", type=FILE_PATH, help="Match every item of this feed file.")
@click.option("--feed", help="Feed name or URL the item comes from.")
@config_option
@json_option
def match(
    text: str | None,
    title: str | None,
    summary: str | None,
    feed_file: Path | None,
    feed: str | None,
    config: Path | None,
    as_json: bool,
) -> None:
    """Which watchlists match, and why; nothing is stored or sent.

    TEXT: text taken as title and summary."""
    given = [text is not None, title is not None or summary is not None, feed_file is not None]
    if sum(given) != 1:
        echo("error: give TEXT, or --title/--summary, or --feed-file", err=True)
        raise Exit(2)
    settings = load(config)
    matcher = trial_matcher(tuple(settings.watchlists_for()), scoped=feed is not None)
    context = feed_context(settings, feed, lambda: with_store(settings, _list_feeds))
    if feed_file is None:
        item = text_item(title or text or "", (summary or "") if text is None else text)
        found = matcher.match_item(item, context)
        if as_json:
            echo_json(_matches_json(found))
        else:
            _echo_matches(found)
        return
    items = _feed_file_items(feed_file)
    results = [(item, matcher.match_item(item, context)) for item in items]
    if as_json:
        echo_json(
            [
                {"item": {"title": i.title, "link": i.link}, "watchlists": _matches_json(f)}
                for i, f in results
            ]
        )
        return
    for item, found in results:
        if found:
            echo(f"{item.title or '(untitled)'}  {item.link or ''}")
            _echo_matches(found, indent="  ")
    hits = sum(1 for _, found in results if found)
    echo(f"{hits} of {len(results)} item(s) match a watchlist")


def _feed_file_items(path: Path) -> tuple[Item, ...]:
    from monitor.parse.feed import parse_feed

    try:
        body = path.read_bytes()
    except OSError as exc:
        echo(f"error: cannot read {path}: {exc.strerror}", err=True)
        raise Exit(1) from None
    try:
        return parse_feed(body, url=path.resolve().as_uri(), headers={}).items
    except ParseError as exc:
        echo(f"error: {path}: {exc.message}", err=True)
        raise Exit(1) from None


@click.command()
@click.option("--since", default="7d", show_default=True, help="How far back: 7d, 24h ...")
@click.option("--watchlist", help="Only this watchlist.")
@config_option
@json_option
def backtest(since: str, watchlist: str | None, config: Path | None, as_json: bool) -> None:
    """Run the watchlists over stored items: what would have alerted."""
    try:
        window = parse_duration(since)
    except ValueError as exc:
        echo(f"error: --since: {exc}", err=True)
        raise Exit(2) from None
    settings = load(config)
    watchlists = settings.watchlists_for()
    if watchlist is not None:
        watchlists = [w for w in watchlists if w.name == watchlist]
        if not watchlists:
            echo(f"error: no watchlist named {watchlist!r}", err=True)
            raise Exit(2)
    start = utcnow() - timedelta(seconds=window)

    def trial(store: Store) -> Backtest:
        tags = tags_by_url(settings, store.list_feeds())
        return run_backtest(store, Matcher(watchlists), tags, start, MAX_BACKTEST_ITEMS)

    result = with_store(settings, trial)
    if as_json:
        echo_json(
            [
                {
                    "item": {"title": h.stored.item.title, "link": h.stored.item.link},
                    "feed": {"name": h.stored.feed_name, "url": h.stored.feed_url},
                    "first_seen_at": iso(h.stored.first_seen_at),
                    "watchlists": _matches_json(h.found),
                }
                for h in result.hits
            ]
        )
        return
    for hit in result.hits:
        row = hit.stored
        echo(f"{iso(row.first_seen_at)} {row.item.title or '(untitled)'}  ({row.feed_name})")
        _echo_matches(hit.found, indent="    ")
    per = result.per_watchlist()
    summary = ", ".join(f"{name}: {n}" for name, n in per.items()) or "none"
    echo(f"{result.scanned} item(s) since {since}; would have alerted: {summary}")
    if result.truncated:
        echo(f"(only the newest {result.scanned} items were scanned)")


COMMANDS = (match, backtest)
