"""``monitor discover URL``: the feeds behind a URL, confirmed, and a snippet to paste.

A feed URL is confirmed as one; a page is searched for the feeds it advertises and the
site for feeds at the usual paths (:mod:`monitor.discover`). Each feed found is listed
with its title, type, item count and where it was found, then as ``feeds:`` entries of the
configuration file. Fetching is the service's own: with a configuration (``--config``,
``$MONITOR_CONFIG``, else ``./monitor.yaml`` if there is one) its ``polling`` limits,
timeouts and private-network guard apply; without one, the defaults do. No database is
opened.

A URL that gives nothing (not a URL, refused by the guard, timed out, an HTTP error, not a
page nor a feed, no feed found) is one ``error:`` line naming it and the problem, exit
status 1; a configuration problem exits 2. Whatever a page or a feed wrote is shown
escaped (:mod:`monitor.cli.terminal`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml
from click.exceptions import Exit

from monitor.cli.common import config_option, json_option, load
from monitor.cli.terminal import echo, echo_json, safe_line
from monitor.config import DEFAULT_CONFIG, Settings
from monitor.errors import MonitorError
from monitor.fetch.urls import shown_url

if TYPE_CHECKING:  # the fetch and parse stages, imported by the command that runs them
    from monitor.discover import Discovery, FoundFeed

_PARSERS = 2  # parse processes: a discovery checks a few documents, not a feed list
_SHOWN_TITLE = 200


@click.command()
@click.argument("url")
@config_option
@json_option
@click.option("--verbose", "-v", is_flag=True, help="Also list the candidates that are not feeds.")
def discover(url: str, config: Path | None, as_json: bool, verbose: bool) -> None:
    """Find the feeds a page advertises or its site serves, and print them ready to paste.

    URL: a page (https://example.org/) or a feed URL."""
    settings = _settings(config)
    try:
        found: Discovery = _run(url, settings)
    except MonitorError as exc:
        echo(f"error: {safe_line(str(exc))}", err=True)
        raise Exit(1) from None
    if as_json:
        echo_json(_as_json(found))
    else:
        echo(_report(found, verbose))
    if not found.feeds:
        echo(f"error: {safe_line(_nothing_found(found))}", err=True)
        raise Exit(1)


def _settings(config: Path | None) -> Settings:
    """The named configuration, or the default one if it exists, or the defaults."""
    if (
        config is None
        and not os.environ.get("MONITOR_CONFIG")
        and not Path(DEFAULT_CONFIG).exists()
    ):
        return Settings()
    return load(config)


def _run(url: str, settings: Settings) -> Discovery:
    import asyncio

    from monitor.app import fetch_settings
    from monitor.discover import discover
    from monitor.fetch import Fetcher
    from monitor.parse import ParseWorkers

    async def run() -> Discovery:
        p = settings.polling
        count = p.parse_workers if p.parse_workers is not None else os.cpu_count() or 1
        parsers = ParseWorkers(min(count, _PARSERS), p.parse_budget)
        try:
            async with Fetcher(fetch_settings(settings)) as fetcher:
                # Candidates start within two fetch deadlines: all are done within three.
                budget = 2 * p.deadline
                return await discover(url, fetcher=fetcher, parse=parsers.parse, budget=budget)
        finally:
            parsers.close()

    return asyncio.run(run())


def _report(found: Discovery, verbose: bool) -> str:
    if found.is_feed:
        feed = found.feeds[0]
        lines = [f"{_url(found.url)} is a feed: {_title(feed)} ({_counts(feed)})"]
        lines += [f"warning: {safe_line(feed.warning)}"] if feed.warning else []
    else:
        lines = [f"{_url(found.page_url)}: {_plural(len(found.feeds), 'feed')} found"]
        for feed in found.feeds:
            lines += [
                f"  {_title(feed)}",
                f"    {_url(feed.url)}",
                f"    {_counts(feed)}; {_WHERE[feed.found]}",
            ]
            lines += [f"    warning: {safe_line(feed.warning)}"] if feed.warning else []
        lines += _not_feeds(found, verbose)
    if found.more_advertised:
        from monitor.discover import MAX_ADVERTISED

        lines.append(
            f"note: the page advertises {found.more_advertised} more feed link(s), "
            f"not checked: only the first {MAX_ADVERTISED} are"
        )
    if found.feeds:
        lines += ["", "# for the configuration file:", snippet(found.feeds).rstrip("\n")]
    return "\n".join(lines)


_WHERE = {
    "given": "the URL given",
    "advertised": "advertised by the page",
    "common path": "at a common path",
}


def _not_feeds(found: Discovery, verbose: bool) -> list[str]:
    if not found.not_feeds:
        return []
    if not verbose:
        count = len(found.not_feeds)
        verb = "candidate is not a feed" if count == 1 else "candidates are not feeds"
        return [f"{count} other {verb} (--verbose says why)"]
    lines = [f"not feeds ({len(found.not_feeds)}):"]
    lines += [f"  {_url(c.url)} ({c.found}): {safe_line(c.reason)}" for c in found.not_feeds]
    return lines


def _nothing_found(found: Discovery) -> str:
    advertised = sum(c.found == "advertised" for c in found.not_feeds)
    head = f"{shown_url(found.page_url)}: no feed found: "
    if advertised:
        return head + (
            f"none of the {advertised} feed link(s) the page advertises is a feed, "
            "nor is anything at the common paths (--verbose says why)"
        )
    return head + "the page advertises none, and there is none at the common paths"


def snippet(feeds: tuple[FoundFeed, ...]) -> str:
    """``feeds:`` entries for the configuration file, names made valid names (their
    controls gone, cut to length) as an OPML import would."""
    from monitor.opml import export_name

    entries: list[dict[str, str]] = []
    for feed in feeds:
        name = export_name(None, feed.title)
        entries.append({"url": feed.url, **({"name": name} if name else {})})
    return yaml.safe_dump(
        {"feeds": entries}, sort_keys=False, allow_unicode=True, default_flow_style=False
    )


def _as_json(found: Discovery) -> dict[str, Any]:
    return {
        "url": found.url,
        "page_url": found.page_url,
        "is_feed": found.is_feed,
        "feeds": [
            {
                "url": f.url,
                "title": f.title,
                "type": f.kind,
                "items": f.items,
                "found": str(f.found),
                "warning": f.warning,
            }
            for f in found.feeds
        ],
        "not_feeds": [
            {"url": c.url, "found": str(c.found), "reason": c.reason} for c in found.not_feeds
        ],
        "more_advertised": found.more_advertised,
        "yaml": snippet(found.feeds) if found.feeds else None,
    }


def _title(feed: FoundFeed) -> str:
    title = feed.title[:_SHOWN_TITLE] + ("…" if len(feed.title) > _SHOWN_TITLE else "")
    return f'"{safe_line(title)}"' if title else "(no title)"


def _counts(feed: FoundFeed) -> str:
    return f"{feed.kind}, {_plural(feed.items, 'item')}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _url(url: str) -> str:
    return safe_line(url)
