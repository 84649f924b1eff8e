"""Alert -> the text a channel sends: subject, plain text, HTML, JSON payload, Slack, Discord.

Input: an ``Alert``; output: strings and JSON-ready dicts. Pure and shared by the channels:
does not touch the network, the clock or the database, and never raises on odd feed text.

Feed text is untrusted. Every format escapes it for its own markup (HTML entities, Slack's
``& < >``, Discord's Markdown) and only http(s) links are ever made clickable, so a title
such as ``<script>`` or a link such as ``javascript:`` stays inert.

Snippets arrive from the matcher with each matched span wrapped between HIGHLIGHT_START and
HIGHLIGHT_END (private-use characters that cannot occur in feed text after matching). Each
format turns them into its own emphasis; the JSON payload removes them and gives the spans
as ``highlights`` offsets instead.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from alerts.base import Alert, AlertStory, StorySource

if TYPE_CHECKING:
    import jinja2
    from markupsafe import Markup

HIGHLIGHT_START = "\ue000"
HIGHLIGHT_END = "\ue001"

PAYLOAD_TYPE = "feed.item.matched"
PAYLOAD_VERSION = 1  # bump with a new alerts/schemas/alert-vN.json when a field changes meaning
# A spread update (alerts/schemas/story-updated-v1.json); it follows PAYLOAD_VERSION.
STORY_UPDATED_TYPE = "feed.story.updated"

SUBJECT_MAX = 200  # long subjects are cut by mail clients anyway; keep the watchlist visible
SUMMARY_MAX = 600
# Discord's documented limits (Message resource, "Embed Limits"): content 2000, title 256,
# description 4096, footer 2048, all embeds together 6000 (ours stay under 4700).
DISCORD_CONTENT_MAX = 2000
DISCORD_TITLE_MAX = 256
DISCORD_DESCRIPTION_MAX = 4096
DISCORD_FOOTER_MAX = 256
CHAT_MATCHES_MAX = 10  # a chat message with 40 snippets is noise; the JSON payload has all
SOURCE_NAMES_MAX = 5  # feed names in a "14 sources: TASS, Reuters, …" line
SOURCE_NAME_MAX = 60
LINK_MAX = 2048  # a source's link shown to people; a longer one is left out, not cut

_SPACE = re.compile(r"\s+")
_DISCORD_SPECIAL = re.compile(r"([\\*_~`|>\[\]#])")
# Mattermost finds mentions with an ASCII ``\B@`` (so ``a@b.org`` is an address, not a
# mention, but ``й@all`` is one); the name may start with any letter.
_MENTION = re.compile(f"(?<![A-Za-z0-9_])@(?=[{HIGHLIGHT_START}{HIGHLIGHT_END}]*\\w)")


def split_highlights(snippet: str) -> Iterator[tuple[str, bool]]:
    """Yield (text, is_highlighted) segments. An unclosed start highlights to the end;
    a stray end marker is dropped."""
    highlighted = False
    for piece in re.split(f"([{HIGHLIGHT_START}{HIGHLIGHT_END}])", snippet):
        if piece == HIGHLIGHT_START:
            highlighted = True
        elif piece == HIGHLIGHT_END:
            highlighted = False
        elif piece:
            yield piece, highlighted


def plain_snippet(snippet: str) -> tuple[str, list[tuple[int, int]]]:
    """The snippet without markers and its highlighted [start, end) spans (code points)."""
    text: list[str] = []
    spans: list[tuple[int, int]] = []
    length = 0
    for piece, highlighted in split_highlights(snippet):
        if highlighted:
            spans.append((length, length + len(piece)))
        text.append(piece)
        length += len(piece)
    return "".join(text), spans


def emphasise(snippet: str, escape_piece: Any, before: str, after: str) -> str:
    out = []
    for piece, highlighted in split_highlights(snippet):
        safe = escape_piece(piece)
        out.append(f"{before}{safe}{after}" if highlighted else safe)
    return "".join(out)


def highlight_text(snippet: str) -> str:
    """Plain text: the matched span as *term*."""
    return emphasise(one_line(snippet), str, "*", "*")


def highlight_html(snippet: str) -> Markup:
    """HTML: each piece escaped first, then the matched span wrapped in <mark>."""
    from markupsafe import Markup, escape  # only where HTML is made (mail, the dashboard)

    return Markup(emphasise(one_line(snippet), lambda p: str(escape(p)), "<mark>", "</mark>"))


def http_link(link: str | None, base: str = "") -> str | None:
    """``link`` made absolute against ``base``; None unless it is http(s) with a host
    (``urlsplit`` refuses a broken IPv6 host such as ``http://[x``: None too)."""
    if not link:
        return None
    try:
        link = urljoin(base, link.strip())
        parts = urlsplit(link)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return link


def item_link(alert: Alert) -> str | None:
    """The item's link made absolute against the feed URL; None unless it is http(s)."""
    return http_link(alert.item.link, alert.feed.url)


def source_link(source: StorySource) -> str | None:
    """A story source's link for people: absolute http(s) only (there is no feed URL to
    resolve against) and at most LINK_MAX characters."""
    link = http_link(source.link)
    return link if link and len(link) <= LINK_MAX else None


def one_line(text: str) -> str:
    """Whitespace runs (newlines included) as one space: safe for headers and list lines."""
    return _SPACE.sub(" ", text).strip()


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` code points, an ellipsis marking the cut (never half a character)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def iso_time(moment: datetime | None) -> str | None:
    """ISO 8601 with an offset; a naive time is taken to be UTC (how the store keeps them)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def utc_clock(moment: datetime | None) -> str | None:
    """``2026-11-05 14:03 UTC`` for people; a naive time is taken to be UTC."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def alert_title(alert: Alert) -> str:
    return one_line(alert.item.title) or "(untitled)"


def spread_story(alert: Alert) -> AlertStory | None:
    """The story when ``alert`` is a spread update; None for an alert of an item."""
    return alert.story if alert.update else None


def source_total(story: AlertStory) -> int:
    """The sources a story counts: never fewer than it lists, whatever the store sent."""
    return max(story.source_count, len(story.sources))


def story_title(story: AlertStory) -> str:
    return one_line(story.title) or "(untitled)"


def source_names(sources: tuple[StorySource, ...], total: int) -> str:
    """``TASS, Reuters, …``: the first SOURCE_NAMES_MAX feed names, each one line and
    bounded, an ellipsis when ``total`` counts more than are named."""
    names = [
        truncate(one_line(source.feed), SOURCE_NAME_MAX) or "(unnamed)"
        for source in sources[:SOURCE_NAMES_MAX]
    ]
    if total > len(names):
        names.append("…")
    return ", ".join(names)


def story_sources(story: AlertStory) -> str:
    """``14 sources: bne IntelliNews, TASS, Reuters, …``."""
    count = source_total(story)
    return f"{count} sources: {source_names(story.sources, count)}"


def other_sources(alert: Alert) -> str | None:
    """``Also in 2 other sources: TASS, Reuters``: an alert that waited while its story
    grew says so. None for a story of one source (or no story)."""
    story = alert.story
    if story is None or source_total(story) <= 1:
        return None
    others = tuple(source for source in story.sources if source.feed != alert.feed.name)
    count = source_total(story) - 1
    noun = "source" if count == 1 else "sources"
    return f"Also in {count} other {noun}: {source_names(others, count)}"


def render_subject(alert: Alert) -> str:
    """``[watchlist] item title`` on one line (a newline in a header would be an injection);
    a spread update: ``[watchlist] now in 15 sources: story title``."""
    story = spread_story(alert)
    if story is not None:
        headline = f"now in {story.source_count} sources: {story_title(story)}"
    else:
        headline = alert_title(alert)
    return truncate(f"[{one_line(alert.watchlist)}] {headline}", SUBJECT_MAX)


@functools.cache
def templates() -> jinja2.Environment:
    """Built on first use, not at import; autoescape is on for the .html templates only."""
    import jinja2  # here: the log channel and JSON webhooks use this module, not its templates

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("alerts", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["highlight_text"] = highlight_text
    env.filters["highlight_html"] = highlight_html
    return env


def alert_context(alert: Alert) -> dict[str, Any]:
    """What the email templates (and each entry of a digest's) see of one alert."""
    return {
        "id": alert.id,
        "watchlist": one_line(alert.watchlist),
        "title": alert_title(alert),
        "link": item_link(alert),
        "feed_name": one_line(alert.feed.name),
        "feed_url": alert.feed.url,
        "published": utc_clock(alert.item.published),
        "summary": truncate(one_line(alert.item.summary), SUMMARY_MAX),
        "matches": alert.matches,
        "also": other_sources(alert),
    }


def render_text(alert: Alert) -> str:
    """The plain-text body of an email (and of the log line's richer cousins)."""
    return templates().get_template("email.txt").render(alert_context(alert))


def render_html(alert: Alert) -> str:
    """The HTML body of an email: all feed text escaped, matched spans in <mark>."""
    return templates().get_template("email.html").render(alert_context(alert))


def story_payload(story: AlertStory) -> dict[str, Any]:
    """The ``story`` object of alert-v1.json: values as they are, links http(s) only."""
    return {
        "id": story.id,
        "title": story.title,
        "size": story.size,
        "source_count": story.source_count,
        "sources": [
            {
                "feed": source.feed,
                "title": source.title,
                "link": http_link(source.link),
                "published": iso_time(source.published),
            }
            for source in story.sources
        ],
    }


def render_payload(alert: Alert) -> dict[str, Any]:
    """The default webhook body, described by alerts/schemas/alert-v1.json; a spread update
    by story-updated-v1.json (the same keys, its own ``type``, and ``count``). ``story`` is
    left out, not null, for an alert without one: the body stays what it was."""
    matches = []
    for match in alert.matches:
        snippet, spans = plain_snippet(match.snippet)
        matches.append(
            {
                "term": match.term,
                "field": match.field,
                "snippet": snippet,
                "highlights": [list(span) for span in spans],
            }
        )
    update = spread_story(alert)
    payload: dict[str, Any] = {
        "type": PAYLOAD_TYPE if update is None else STORY_UPDATED_TYPE,
        "version": PAYLOAD_VERSION,
        "id": alert.id,
        "watchlist": alert.watchlist,
        "created_at": iso_time(alert.created_at),
    }
    if update is not None:
        payload["count"] = update.source_count
    payload["item"] = {
        "title": alert.item.title,
        "link": item_link(alert),
        "published": iso_time(alert.item.published),
        "summary": alert.item.summary,
        "guid": alert.item.guid,
    }
    payload["feed"] = {"name": alert.feed.name, "url": alert.feed.url}
    payload["matches"] = matches
    if alert.story is not None:
        payload["story"] = story_payload(alert.story)
    return payload


def _slack_markup(text: str) -> str:
    # Slack's three control characters (api.slack.com, "Formatting text": escaping).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mute_mentions(text: str) -> str:
    """A zero-width space after each ``@`` that starts a name. Mattermost, which takes
    Slack's webhook body, notifies on plain ``@channel``, ``@all``, ``@here`` and
    ``@someone`` (Slack's own ``<!channel>`` is inert once ``<`` is escaped). Highlight
    markers between the ``@`` and the name are looked through, so a matched span cannot
    split a mention from its ``@``. Reads the same; notifies no one."""
    return _MENTION.sub("@\u200b", text)


def slack_escape(text: str) -> str:
    """Feed text for Slack's mrkdwn: its control characters escaped, mentions muted."""
    return mute_mentions(_slack_markup(text))


def slack_link(url: str, text: str) -> str:
    """``<url|text>``, ``text`` already escaped. ``|`` would end the URL part; percent-encoded,
    the URL stays the same. The URL is not muted: a zero-width space would break it."""
    return f"<{_slack_markup(url.replace('|', '%7C'))}|{text}>"


def render_slack(alert: Alert) -> dict[str, Any]:
    """Slack incoming-webhook body: ``{"text": ...}`` in mrkdwn.

    Mattermost accepts the same body and translates ``<url|text>`` links (its "Slack
    compatibility" page); it shows ``*term*`` as italic rather than bold.
    """
    title = slack_escape(alert_title(alert))
    link = item_link(alert)
    headline = slack_link(link, title) if link else title
    lines = [
        f"*{slack_escape(one_line(alert.watchlist))}*: {headline}",
        f"_{slack_escape(one_line(alert.feed.name))}_",
    ]
    also = other_sources(alert)
    if also:
        lines.append(slack_escape(also))
    for match in alert.matches[:CHAT_MATCHES_MAX]:
        snippet = emphasise(mute_mentions(one_line(match.snippet)), slack_escape, "*", "*")
        lines.append(f"• {slack_escape(one_line(match.term))}: {snippet}")
    return {"text": "\n".join(lines)}


def discord_escape(text: str) -> str:
    return _DISCORD_SPECIAL.sub(r"\\\1", text)


def render_discord(alert: Alert) -> dict[str, Any]:
    """Discord execute-webhook body: a short ``content`` and one embed, within the limits.

    ``allowed_mentions`` is empty so an ``@everyone`` in a feed title pings no one.
    """
    watchlist = discord_escape(one_line(alert.watchlist))
    also = other_sources(alert)  # first: long snippets may fill the rest
    lines = [discord_escape(also)] if also else []
    for match in alert.matches[:CHAT_MATCHES_MAX]:
        snippet = emphasise(one_line(match.snippet), discord_escape, "**", "**")
        lines.append(f"• {discord_escape(one_line(match.term))}: {snippet}")
    embed: dict[str, Any] = {
        "title": truncate(alert_title(alert), DISCORD_TITLE_MAX),
        "footer": {"text": truncate(one_line(alert.feed.name) or "feed", DISCORD_FOOTER_MAX)},
    }
    if lines:  # Discord rejects an empty description
        embed["description"] = truncate("\n".join(lines), DISCORD_DESCRIPTION_MAX)
    link = item_link(alert)
    if link:
        embed["url"] = link
    published = iso_time(alert.item.published)
    if published:
        embed["timestamp"] = published
    return {
        "content": truncate(f"New match for **{watchlist}**", DISCORD_CONTENT_MAX),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    }
