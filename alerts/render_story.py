"""Spread update -> the text a channel sends: plain text, HTML, Slack, Discord.

Input: an ``Alert`` whose ``update`` is set (its story reached ``story.source_count``
sources) and that story; output: strings and JSON-ready dicts. The subject and the JSON
payload are alerts/render.py's, which give an update its own headline and ``type``. Pure
like alerts/render.py, whose escaping and link rules it reuses: does not touch the
network, the clock or the database, and never raises on odd feed text.

An update tells people that news they were alerted about is spreading: the headline
``now in 15 sources: story title``, then the sources (feed — title — link), at most
STORY_SOURCES_MAX in a mail and fewer in chat, within each service's limits, then ``and N
more``. Every source's feed name, title and link is feed text: one line, bounded, escaped
for the format, linked only when http(s).
"""

from __future__ import annotations

from typing import Any

from alerts.base import Alert, AlertStory, StorySource
from alerts.render import (
    DISCORD_CONTENT_MAX,
    DISCORD_DESCRIPTION_MAX,
    DISCORD_FOOTER_MAX,
    DISCORD_TITLE_MAX,
    alert_context,
    discord_escape,
    item_link,
    one_line,
    slack_escape,
    slack_link,
    source_link,
    source_total,
    story_title,
    templates,
    truncate,
)
from alerts.render_digest import CHAT_LINK_MAX, SLACK_TEXT_MAX, discord_link

STORY_SOURCES_MAX = 20  # sources listed in a mail; the JSON payload has all the alert carries
CHAT_SOURCES_MAX = 10  # sources listed in a Slack or Discord message
_TITLE_MAX = 200
_FEED_MAX = 100
_MORE_RESERVE = 40  # room kept for the "and N more" line


def _headline(story: AlertStory) -> str:
    return f"now in {story.source_count} sources"


def _feed(source: StorySource) -> str:
    return truncate(one_line(source.feed), _FEED_MAX) or "(unnamed)"


def _title(text: str) -> str:
    return truncate(one_line(text), _TITLE_MAX) or "(untitled)"


def story_context(alert: Alert, story: AlertStory) -> dict[str, Any]:
    """What the update email templates see: the first alert's context (its item, feed and
    matches) with the story's headline and its first STORY_SOURCES_MAX sources."""
    title = _title(story_title(story))
    sources = [
        {"feed": _feed(source), "title": _title(source.title), "link": source_link(source)}
        for source in story.sources[:STORY_SOURCES_MAX]
    ]
    return alert_context(alert) | {
        "also": None,  # the source list says it all
        "story_title": title,
        "headline": f"{_headline(story).capitalize()}: {title}",
        "count": story.source_count,
        "sources": sources,
        "more_sources": source_total(story) - len(sources),
    }


def render_story_text(alert: Alert, story: AlertStory) -> str:
    """The plain-text body of an update email."""
    return templates().get_template("story.txt").render(story_context(alert, story))


def render_story_html(alert: Alert, story: AlertStory) -> str:
    """The HTML body of an update email: all feed text escaped, links http(s) only."""
    return templates().get_template("story.html").render(story_context(alert, story))


def _chat_link(link: str | None) -> str | None:
    return link if link and len(link) <= CHAT_LINK_MAX else None


def _fit(lines: list[str], room: int) -> list[str]:
    """The first lines that fit, joined by newlines, in ``room`` characters, with room kept
    for an ``and N more`` line after them."""
    kept: list[str] = []
    size = -1
    for line in lines:
        if size + 1 + len(line) > room - _MORE_RESERVE:
            break
        kept.append(line)
        size += 1 + len(line)
    return kept


def _slack_source(source: StorySource) -> str:
    title = slack_escape(_title(source.title))
    link = _chat_link(source_link(source))
    return f"• _{slack_escape(_feed(source))}_ — {slack_link(link, title) if link else title}"


def render_story_slack(alert: Alert, story: AlertStory) -> dict[str, Any]:
    """Slack (and Mattermost) body: ``*watchlist*: now in 15 sources: <link|title>``, then
    at most CHAT_SOURCES_MAX sources within SLACK_TEXT_MAX, then ``and N more``."""
    title = slack_escape(_title(story_title(story)))
    link = _chat_link(item_link(alert))
    head = f"*{slack_escape(one_line(alert.watchlist))}*: {_headline(story)}: "
    head += slack_link(link, title) if link else title
    lines = [_slack_source(source) for source in story.sources[:CHAT_SOURCES_MAX]]
    kept = _fit(lines, SLACK_TEXT_MAX - len(head) - 1)
    more = source_total(story) - len(kept)
    if more:
        kept.append(f"_and {more} more_")
    return {"text": "\n".join([head, *kept])}


def _discord_source(source: StorySource) -> str:
    title = discord_escape(_title(source.title))
    link = _chat_link(source_link(source))
    return f"• {discord_escape(_feed(source))} — {discord_link(link, title) if link else title}"


def render_story_discord(alert: Alert, story: AlertStory) -> dict[str, Any]:
    """Discord body: ``**watchlist**: now in 15 sources: title`` in ``content`` and one embed
    (the story's title, linked to the first item) listing at most CHAT_SOURCES_MAX sources,
    then ``…and N more``, within Discord's limits. ``allowed_mentions`` is empty so an
    ``@everyone`` in a feed's text pings no one."""
    title = _title(story_title(story))
    watchlist = discord_escape(one_line(alert.watchlist))
    lines = [_discord_source(source) for source in story.sources[:CHAT_SOURCES_MAX]]
    kept = _fit(lines, DISCORD_DESCRIPTION_MAX)
    more = source_total(story) - len(kept)
    if more:
        kept.append(f"…and {more} more")
    embed: dict[str, Any] = {
        "title": truncate(title, DISCORD_TITLE_MAX),
        "description": "\n".join(kept) or "-",  # Discord rejects an empty description
        "footer": {"text": truncate(one_line(alert.feed.name) or "feed", DISCORD_FOOTER_MAX)},
    }
    link = item_link(alert)
    if link:
        embed["url"] = link
    return {
        "content": truncate(
            f"**{watchlist}**: {_headline(story)}: {discord_escape(title)}", DISCORD_CONTENT_MAX
        ),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    }
