"""``monitor match`` and ``monitor backtest``: try watchlists without storing or sending.

``match`` runs the configured watchlists over a text, an item's fields or a feed file and
says which match and why. ``backtest`` runs them over the items already stored and lists
what would have alerted, so a query can be tuned before it goes live.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from alerts.durations import parse_duration
from alerts.render import HIGHLIGHT_END, HIGHLIGHT_START, plain_snippet
from monitor.cli.common import ConfigOption, JsonOption, iso, load, with_store
from monitor.cli.terminal import echo, echo_json
from monitor.config import Settings
from monitor.errors import ParseError
from monitor.match import Matcher
from monitor.types import Item, MatchContext, WatchlistMatch, feed_display_name, utcnow

app = typer.Typer()


def _matches_json(found: list[WatchlistMatch]) -> list[dict[str, Any]]:
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


def _echo_matches(found: list[WatchlistMatch], indent: str = "") -> None:
    if not found:
        echo(f"{indent}no watchlist matches")
    for f in found:
        echo(f"{indent}{f.watchlist}:")
        for m in f.matches:
            snippet = m.snippet.replace(HIGHLIGHT_START, "«").replace(HIGHLIGHT_END, "»")
            echo(f"{indent}  {m.term!r} in {m.field}: {snippet}")


def _text_item(title: str, summary: str) -> Item:
    digest = hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()
    return Item(
        key=f"hash:{digest}",
        guid=None,
        link=None,
        title=title,
        summary=summary,
        content="",
        author="",
        categories=(),
        published=None,
        updated=None,
        content_hash=digest,
    )


def _matcher(settings: Settings, scoped: bool) -> Matcher:
    """Unscoped: a watchlist limited to some feeds or tags still shows whether its query
    matches (``--feed`` gives the item a feed, and scoping then applies)."""
    watchlists = settings.watchlists_for()
    if not scoped:
        watchlists = [
            dataclasses.replace(w, feeds=frozenset(), tags=frozenset()) for w in watchlists
        ]
    return Matcher(watchlists)


def _context(settings: Settings, feed: str | None) -> MatchContext:
    """The feed as the live pipeline sees it: an unnamed feed goes by the title it gave
    itself when it was last polled (so ``feed:`` queries see the same name), read from the
    database."""
    config = next((f for f in settings.feeds if feed in {f.name, f.url}), None)
    if config is None:
        return MatchContext(feed_name=feed or "", feed_url=feed or "")
    stored = None
    if config.name is None:
        stored = with_store(
            settings,
            lambda s: next((f for f in s.list_feeds() if f.configured_url == config.url), None),
        )
    return MatchContext(
        feed_name=feed_display_name(config.name, stored and stored.title, config.url),
        feed_url=stored.url if stored else config.url,
        feed_tags=config.tags,
    )


@app.command()
def match(
    text: Annotated[str | None, typer.Argument(help="Text taken as title and summary.")] = None,
    title: Annotated[str | None, typer.Option("--title", help="The item's title.")] = None,
    summary: Annotated[str | None, typer.Option("--summary", help="The item's summary.")] = None,
    feed_file: Annotated[
        Path | None, typer.Option("--feed-file", help="Match every item of this feed file.")
    ] = None,
    feed: Annotated[
        str | None, typer.Option("--feed", help="Feed name or URL the item comes from.")
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Which watchlists match, and why; nothing is stored or sent."""
    given = [text is not None, title is not None or summary is not None, feed_file is not None]
    if sum(given) != 1:
        echo("error: give TEXT, or --title/--summary, or --feed-file", err=True)
        raise typer.Exit(2)
    settings = load(config)
    matcher = _matcher(settings, scoped=feed is not None)
    context = _context(settings, feed)
    if feed_file is None:
        item = _text_item(title or text or "", (summary or "") if text is None else text)
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
    from monitor.parse import parse_feed

    try:
        body = path.read_bytes()
    except OSError as exc:
        echo(f"error: cannot read {path}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    try:
        return parse_feed(body, url=path.resolve().as_uri(), headers={}).items
    except ParseError as exc:
        echo(f"error: {path}: {exc.message}", err=True)
        raise typer.Exit(1) from None


@app.command()
def backtest(
    since: Annotated[str, typer.Option("--since", help="How far back: 7d, 24h ...")] = "7d",
    watchlist: Annotated[
        str | None, typer.Option("--watchlist", help="Only this watchlist.")
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run the watchlists over stored items: what would have alerted."""
    try:
        window = parse_duration(since)
    except ValueError as exc:
        echo(f"error: --since: {exc}", err=True)
        raise typer.Exit(2) from None
    settings = load(config)
    watchlists = settings.watchlists_for()
    if watchlist is not None:
        watchlists = [w for w in watchlists if w.name == watchlist]
        if not watchlists:
            echo(f"error: no watchlist named {watchlist!r}", err=True)
            raise typer.Exit(2)
    matcher = Matcher(watchlists)
    tags = {f.url: f.tags for f in settings.feeds}
    stored = with_store(settings, lambda s: s.items_since(utcnow() - timedelta(seconds=window)))
    hits = []
    for row in stored:
        context = MatchContext(
            feed_name=row.feed_name,
            feed_url=row.feed_url,
            feed_tags=tags.get(row.feed_configured_url, frozenset()),
        )
        found = matcher.match_item(row.item, context)
        if found:
            hits.append((row, found))
    if as_json:
        echo_json(
            [
                {
                    "item": {"title": r.item.title, "link": r.item.link},
                    "feed": {"name": r.feed_name, "url": r.feed_url},
                    "first_seen_at": iso(r.first_seen_at),
                    "watchlists": _matches_json(found),
                }
                for r, found in hits
            ]
        )
        return
    for row, found in hits:
        echo(f"{iso(row.first_seen_at)} {row.item.title or '(untitled)'}  ({row.feed_name})")
        _echo_matches(found, indent="    ")
    per: dict[str, int] = {}
    for _, found in hits:
        for f in found:
            per[f.watchlist] = per.get(f.watchlist, 0) + 1
    summary = ", ".join(f"{name}: {n}" for name, n in sorted(per.items())) or "none"
    echo(f"{len(stored)} item(s) since {since}; would have alerted: {summary}")
