"""``monitor feeds``: every feed's state and where it is declared; feeds kept in the database.

``feeds`` lists the feeds, failing ones flagged, paused ones marked, each with its source:
``config`` (the configuration file), ``opml`` (imported) or ``api`` (added through the HTTP
API). ``feeds import`` keeps the feeds of an OPML file in the database, ``feeds export``
writes every active feed as OPML, ``feeds remove`` stops a database feed. The rule between
the two kinds is the README's "Feeds in the file and in the database": the file owns what
it lists; the database keeps the rest until ``feeds remove``; a reload never touches them.

These commands change rows without claiming work, so, like ``alerts retry``, they run beside
the service without its instance lock; the service polls an imported feed at its next tick,
since its claims read the table. Everything a file or a feed wrote is shown escaped, and
URLs without their credentials.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.exceptions import Exit

from httpfields import redact_url
from monitor.cli.common import (
    FILE_PATH,
    Commands,
    config_option,
    iso,
    json_option,
    load,
    with_store,
)
from monitor.cli.terminal import echo, echo_json, safe_line
from monitor.config import Settings
from monitor.store import FeedSpec, FeedStatus
from monitor.trial import feed_tags
from monitor.types import FeedSource, FeedState, utcnow

if TYPE_CHECKING:  # imported by the commands that read or write OPML (lxml is not light)
    from monitor.opml import OpmlFeed, OpmlList

_FROM = {
    FeedSource.CONFIG: "the configuration file's",
    FeedSource.OPML: "imported earlier",
    FeedSource.API: "added through the API",
}
_SHOWN_URL = 160  # characters of a URL shown in a report line


@click.group(
    cls=Commands,
    invoke_without_command=True,
    help="Feeds: their state; feeds kept in the database (import, export, remove).",
)
@config_option
@json_option
@click.pass_context
def feeds(ctx: click.Context, config: Path | None, as_json: bool) -> None:
    """List feeds with their state and source; failing feeds are flagged."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load(config)
    rows = with_store(settings, lambda store: store.list_feeds())
    notes = scope_notes(settings, rows)
    if as_json:
        echo_json([_feed_json(r, feed_tags(settings, r)) for r in rows])
        for note in notes:
            echo(f"note: {note}", err=True)
        return
    echo(_feeds_table(rows, settings))
    for note in notes:
        echo(f"note: {note}")


def scope_notes(settings: Settings, rows: list[FeedStatus]) -> list[str]:
    """Watchlist scopes (``feeds:``, ``tags:``) that no active feed answers to. The
    configuration cannot refuse them (feeds kept in the database have names and tags of
    their own), so this is where a typo or a removed feed is pointed out."""
    active = [r for r in rows if r.active]
    names = {f.name for f in settings.feeds if f.name} | {r.name for r in active}
    tags = {t for f in settings.feeds for t in f.tags}
    tags |= {t for r in active for t in feed_tags(settings, r)}
    notes = [
        f"watchlist {w.name!r} is scoped to feed {n!r}, which no active feed is called"
        for w in settings.watchlists
        for n in sorted(w.feeds - names)
    ]
    return notes + [
        f"watchlist {w.name!r} is scoped to tag {t!r}, which no active feed has"
        for w in settings.watchlists
        for t in sorted(w.tags - tags)
    ]


def _feed_json(r: FeedStatus, tags: frozenset[str]) -> dict[str, Any]:
    return {
        "url": r.url,
        "configured_url": r.configured_url,
        "name": r.name,
        "source": r.source,
        "tags": sorted(tags),
        "state": r.state,
        "active": r.active,
        "paused_at": iso(r.paused_at),
        "last_polled_at": iso(r.last_polled_at),
        "last_status": r.last_status,
        "last_error": r.last_error,
        "warning": r.warning,
        "error_count": r.error_count,
        "items": r.items,
        "next_poll_at": iso(r.next_poll_at),
    }


def _feeds_table(rows: list[FeedStatus], settings: Settings) -> str:
    if not rows:
        return "no feeds configured"
    head = f"{'STATE':7} {'SOURCE':6} {'ITEMS':>6} {'ERRS':>4} {'LAST POLL':20} {'NEXT POLL':20} "
    pad = " " * len(head)
    lines = [head + "NAME / URL"]
    for r in rows:
        state = r.state if r.active else f"{r.state}*"
        flag = "!" if r.state in {FeedState.ERROR, FeedState.GONE} else " "
        next_poll = "paused" if r.paused_at else (iso(r.next_poll_at) or "-")[:19]
        lines.append(
            f"{state:7} {r.source:6} {r.items:>6} {r.error_count:>4} "
            f"{(iso(r.last_polled_at) or '-')[:19]:20} {next_poll:20} {flag}{safe_line(r.name)}"
        )
        if r.url != r.name:
            lines.append(pad + _shown(r.url))
        if r.url != r.configured_url:
            lines.append(f"{pad}moved permanently from {_shown(r.configured_url)}")
        if r.paused_at:
            lines.append(f"{pad}paused since {iso(r.paused_at)}")
        tags = feed_tags(settings, r)
        if tags:
            lines.append(f"{pad}tags: {safe_line(', '.join(sorted(tags)))}")
        if r.last_error and r.state != FeedState.OK:
            lines.append(f"{pad}last error: {safe_line(r.last_error)}")
        elif r.warning:
            lines.append(f"{pad}warning: {safe_line(r.warning)}")
    if any(not r.active for r in rows):
        lines.append("* taken out of the file or removed (not polled; items kept)")
    return "\n".join(lines)


@feeds.command("import")
@click.argument("file", type=FILE_PATH)
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@config_option
def import_feeds(file: Path, dry_run: bool, config: Path | None) -> None:
    """Keep the feeds of an OPML file in the database, its folders as tags.

    FILE: the OPML file (a feed reader's export). Feeds already there are left as they are;
    the configuration file's own feeds stay the file's. The running service polls the new
    ones at its next tick."""
    from monitor.opml import OpmlError, read_opml

    settings = load(config)
    try:
        listing = read_opml(file)
    except OpmlError as exc:
        echo(f"error: {exc}", err=True)
        raise Exit(1) from None
    lines = with_store(settings, lambda store: _import(store, settings, listing, dry_run))
    echo(f"{safe_line(str(file))}: {len(listing.feeds) + len(listing.skipped)} entries")
    for line in lines:
        echo(line)


def _import(store: Any, settings: Settings, listing: OpmlList, dry_run: bool) -> list[str]:
    """Add what is new (or was removed), and say for each entry what became of it."""
    from monitor.store.clock import DatabaseClock

    known = {r.configured_url: r for r in store.list_feeds()}
    in_file = {f.url for f in settings.feeds}
    there: list[tuple[OpmlFeed, str]] = []
    wanted: list[OpmlFeed] = []
    for feed in listing.feeds:
        row = known.get(feed.url)
        if feed.url in in_file:
            there.append((feed, "listed in the configuration file, which owns it"))
        elif row is not None and row.active:
            there.append((feed, _FROM[row.source]))
        else:
            wanted.append(feed)
    if dry_run:
        added = {f.url for f in wanted}
    else:
        now = DatabaseClock(store.engine)()  # due now on the clock the service claims by
        specs = [FeedSpec(url=f.url, name=f.name, tags=f.tags) for f in wanted]
        added = set(store.add_feeds(specs, FeedSource.OPML, now))
    there += [(f, "added meanwhile by another process") for f in wanted if f.url not in added]
    new = [f for f in wanted if f.url in added]
    verb = "would add" if dry_run else "added"
    lines = [f"{verb} {len(new)}" + (" (polled from the service's next tick)" * bool(new))]
    for feed in new:
        back = " (brought back: it had been removed)" if feed.url in known else ""
        lines.append(f"  + {_describe(feed)}{back}")
    lines.append(f"already there, left as they are: {len(there)}")
    lines += [f"  = {_describe(feed)} ({why})" for feed, why in there]
    lines += _skipped(listing)
    lines += [f"note: {note}" for note in _shared_names(settings, known.values(), new)]
    if dry_run:
        return [*lines, "dry run: nothing was changed"]
    return lines + [f"note: {note}" for note in scope_notes(settings, store.list_feeds())]


def _skipped(listing: OpmlList) -> list[str]:
    lines = [f"skipped: {len(listing.skipped)}"]
    lines += [
        f"  - {_quoted(s.title)} {_shown(s.url)}: {safe_line(s.reason)}" for s in listing.skipped
    ]
    if listing.repeated:
        lines.append(
            f"{listing.repeated} entries repeat a URL listed before: each feed is kept once, "
            "with the folders and categories of all its entries"
        )
    return lines


def _shared_names(settings: Settings, rows: Iterable[FeedStatus], new: list[OpmlFeed]) -> list[str]:
    """Names the new feeds share with another feed: kept (readers' exports repeat titles),
    but a watchlist's ``feeds:`` naming one then covers them all."""
    names = Counter(f.name for f in settings.feeds if f.name)
    names.update(r.configured_name for r in rows if r.active and r.source != FeedSource.CONFIG)
    names.update(f.name for f in new)
    shared = sorted({f.name for f in new if f.name and names[f.name] > 1})
    return [
        f"{names[n]} feeds are called {_quoted(n)}: a watchlist's `feeds:` naming it takes them all"
        for n in shared
    ]


def _describe(feed: OpmlFeed) -> str:
    tags = f" [tags: {safe_line(', '.join(sorted(feed.tags)))}]" if feed.tags else ""
    return f"{_quoted(feed.name or '')} {_shown(feed.url)}{tags}"


def _quoted(text: str) -> str:
    return f'"{safe_line(text[:200])}"' if text else "(no name)"


def _shown(url: str) -> str:
    """A URL from a file, fit for one report line: no credentials, no controls, short."""
    shown = redact_url(url.strip())
    if len(shown) > _SHOWN_URL:
        shown = shown[: _SHOWN_URL - 1] + "…"
    return safe_line(shown) or "(no URL)"


@feeds.command("export")
@click.option("--output", "-o", type=FILE_PATH, help="Write here [default: stdout].")
@click.option(
    "--with-secrets",
    is_flag=True,
    help="Include feeds whose URL carries credentials (user:password@, ?token=).",
)
@config_option
def export_feeds(output: Path | None, with_secrets: bool, config: Path | None) -> None:
    """Write every active feed, the file's and the database's, as OPML 2.0.

    Tags become folders and categories. Feeds whose URL carries credentials are left out
    unless --with-secrets."""
    from monitor.opml import OpmlFeed, export_name, write_opml

    settings = load(config)
    rows = with_store(settings, lambda store: store.list_feeds())
    titles = {r.configured_url: r.title for r in rows}
    # The file's feeds as the file lists them now (polled or not yet); then the database's.
    listed = [(f.url, export_name(f.name, titles.get(f.url)), f.tags) for f in settings.feeds]
    if any(f.headers for f in settings.feeds):
        echo("note: feeds' request headers are not exported (OPML has no place for them)", err=True)
    declared = {f.url for f in settings.feeds}
    listed += [
        (r.configured_url, export_name(r.configured_name, r.title), r.tags)
        for r in rows
        if r.active and r.source != FeedSource.CONFIG and r.configured_url not in declared
    ]
    chosen: list[OpmlFeed] = []
    withheld: list[tuple[str | None, str]] = []
    for url, name, tags in listed:
        if redact_url(url) != url and not with_secrets:
            withheld.append((name, url))
        else:
            chosen.append(OpmlFeed(url=url, name=name, tags=tags))
    data = write_opml(chosen, title="feed-monitor feeds", now=utcnow())
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        try:
            output.write_bytes(data)
        except OSError as exc:
            echo(f"error: {safe_line(str(output))}: cannot be written ({exc.strerror})", err=True)
            raise Exit(1) from None
        echo(f"exported {len(chosen)} feed(s) to {safe_line(str(output))}", err=True)
    if withheld:
        echo(
            f"left out {len(withheld)} feed(s) whose URL carries credentials "
            "(user:password@ or a secret parameter); --with-secrets includes them:",
            err=True,
        )
        for name, url in withheld:
            echo(f"  {_quoted(name or '')} {_shown(url)}", err=True)


@feeds.command("remove")
@click.argument("url")
@config_option
def remove_feed(url: str, config: Path | None) -> None:
    """Stop polling a feed kept in the database (imported or added through the API).

    URL: the feed's URL, as `monitor feeds` shows it. Its items and alerts stay; importing
    it again brings it back. A feed the configuration file lists is the file's: take it out
    of the file instead."""
    settings = load(config)
    url = url.strip()

    def remove(store: Any) -> tuple[int, str]:
        rows = store.list_feeds()
        row = next((r for r in rows if r.configured_url == url), None)
        row = row or next((r for r in rows if r.url == url and r.active), None)
        declared = {f.url for f in settings.feeds}
        if (
            url in declared
            or (row is not None and row.configured_url in declared)
            or (row is not None and row.source == FeedSource.CONFIG and row.active)
        ):
            return 1, (
                f"error: {_shown(url)} is listed in the configuration file "
                f"({safe_line(settings.source)}): take it out there and reload the service"
            )
        if row is None:
            return 1, f"error: no feed with the URL {_shown(url)}"
        if not store.remove_feed(row.configured_url):
            return 0, f"{safe_line(row.name)} was removed already (not polled)"
        notes = [f"\nnote: {n}" for n in scope_notes(settings, store.list_feeds())]
        return 0, (
            f"removed {safe_line(row.name)} ({_shown(row.configured_url)}): no longer polled; "
            "its items and alerts stay" + "".join(notes)
        )

    status, message = with_store(settings, remove)
    echo(message, err=status != 0)
    if status:
        raise Exit(status)
