"""Digest -> the text a channel sends: subject, plain text, HTML, JSON payload, Slack, Discord.

Input: a ``Digest`` (its alerts newest first, as the outbox builds it); output: strings and
JSON-ready dicts. Pure like alerts/render.py, whose escaping, highlighting and link rules
it reuses for every alert it lists: does not touch the network, the clock or the database,
and never raises on odd feed text.

People read a digest grouped by watchlist: watchlists in the order of their
newest alert, alerts newest first within each. Both orders follow from ``Digest.alerts``
being newest first, so nothing is re-sorted here. Within a watchlist, the alerts of one
story are one entry, where its newest alert stands: the story's title with ``14 sources:
TASS, Reuters, …`` and its items under it (a spread update only raises the count, or
stands for its story when its first alert went out before). The JSON payload keeps the
flat list (receivers group as they like, by ``story.id``) and lists every alert; the
formats meant for people list at most a bounded number and say how many more there are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from alerts.base import Alert, AlertStory, Digest, frozen
from alerts.render import (
    DISCORD_CONTENT_MAX,
    DISCORD_DESCRIPTION_MAX,
    DISCORD_TITLE_MAX,
    SUBJECT_MAX,
    alert_context,
    alert_title,
    discord_escape,
    iso_time,
    item_link,
    one_line,
    render_payload,
    slack_escape,
    slack_link,
    source_total,
    story_sources,
    story_title,
    templates,
    truncate,
    utc_clock,
)

DIGEST_PAYLOAD_TYPE = "feed.digest"
DIGEST_PAYLOAD_VERSION = 1  # bump with a new alerts/schemas/digest-vN.json
EMAIL_ALERTS_MAX = 200  # a longer mail is not read to the end; the JSON payload has all
EMAIL_MATCHES_MAX = 3  # snippets per alert in a digest mail: enough to see why it matched
CHAT_ALERTS_MAX = 20  # alerts listed in one Slack or Discord digest message
# Slack shows long messages truncated behind "show more" and cuts text at 40,000 characters
# (api.slack.com chat.postMessage, "Truncating content"); a digest stays well below.
SLACK_TEXT_MAX = 3500
# Discord's Message resource "Embed Limits": 10 embeds per message, 6000 characters over all
# of them (titles, descriptions, footers ...), each description 4096.
DISCORD_EMBEDS_MAX = 10
DISCORD_EMBEDS_TOTAL_MAX = 6000
_EMBEDS_BUDGET = DISCORD_EMBEDS_TOTAL_MAX - 100  # margin for what Discord counts that we don't
CHAT_LINK_MAX = 512  # a longer URL is left out rather than eat the message's budget
_TITLE_IN_LIST_MAX = 200
_FEED_IN_LIST_MAX = 100
_MORE_RESERVE = 40  # room kept for the "and K more" line
CHAT_STORY_ITEMS_MAX = 3  # items listed under a story in chat; the story line counts them
_ENTRY_MAX = 2000  # characters of one entry in chat, so an embed always holds one


@frozen
class DigestGroup:
    """The alerts of one watchlist within a digest, newest first."""

    watchlist: str
    alerts: tuple[Alert, ...]


@frozen
class DigestEntry:
    """One line of a digest for people: an alert, or a story's alerts of one watchlist.

    ``alerts`` are what is listed, newest first: the story's items (a spread update only
    when the digest holds no item of its story: it then stands for it); ``story`` is the
    largest of the story's snapshots in the digest (an update raises the count);
    ``covers`` counts the digest's alerts the entry stands for."""

    story: AlertStory | None
    alerts: tuple[Alert, ...]
    covers: int


def group_alerts(digest: Digest) -> tuple[DigestGroup, ...]:
    """Group by watchlist, keeping first-seen order (the newest alert's watchlist first)."""
    groups: dict[str, list[Alert]] = {}
    for alert in digest.alerts:
        groups.setdefault(alert.watchlist, []).append(alert)
    return tuple(DigestGroup(watchlist=w, alerts=tuple(a)) for w, a in groups.items())


def story_entries(alerts: tuple[Alert, ...]) -> tuple[DigestEntry, ...]:
    """One entry per (watchlist, story), at its newest alert; an alert without a story is
    an entry of its own."""
    members: dict[tuple[str, str] | int, list[Alert]] = {}
    for index, alert in enumerate(alerts):
        key = (alert.watchlist, alert.story.id) if alert.story is not None else index
        members.setdefault(key, []).append(alert)
    entries = []
    for grouped in members.values():
        items = [alert for alert in grouped if not alert.update] or grouped[:1]
        stories = [alert.story for alert in grouped if alert.story is not None]
        story = max(stories, key=lambda s: (s.source_count, s.size), default=None)
        entries.append(DigestEntry(story=story, alerts=tuple(items), covers=len(grouped)))
    return tuple(entries)


def entry_sources(entry: DigestEntry) -> str | None:
    """``14 sources: bne IntelliNews, TASS, …`` for a story of several sources."""
    story = entry.story
    if story is None or source_total(story) <= 1:
        return None
    return story_sources(story)


def entry_headline(entry: DigestEntry) -> str | None:
    """The story's title above its items when it has several; None for one."""
    if entry.story is None or len(entry.alerts) <= 1:
        return None
    return story_title(entry.story)


def _group_label(group: DigestGroup) -> str:
    return f"{one_line(group.watchlist)} ({len(group.alerts)})"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _headline(digest: Digest) -> str:
    groups = len(group_alerts(digest))
    return f"{_plural(len(digest.alerts), 'alert')} in {_plural(groups, 'watchlist')}"


def render_digest_subject(digest: Digest) -> str:
    """``[digest] 12 alerts: csto (7), kazakhstan (5)``: as many watchlists as fit in
    SUBJECT_MAX, then ``+N more``; one line, cut between code points, never mid-name
    unless a single name is longer than the whole subject."""
    head = f"[digest] {_plural(len(digest.alerts), 'alert')}"
    parts = [_group_label(group) for group in group_alerts(digest)]
    if not parts:
        return head
    for shown in range(len(parts), 0, -1):
        more = len(parts) - shown
        subject = f"{head}: {', '.join(parts[:shown])}" + (f", +{more} more" if more else "")
        if len(subject) <= SUBJECT_MAX:
            return subject
    return truncate(subject, SUBJECT_MAX)


def _entry_context(alert: Alert) -> dict[str, Any]:
    context = alert_context(alert)
    context["time"] = utc_clock(alert.item.published or alert.created_at)
    context["more_matches"] = max(0, len(alert.matches) - EMAIL_MATCHES_MAX)
    context["matches"] = alert.matches[:EMAIL_MATCHES_MAX]
    return context


def digest_context(digest: Digest) -> dict[str, Any]:
    """What the digest email templates see: groups of entries (a story's ``headline``
    and ``sources`` line, and its alert contexts), at most EMAIL_ALERTS_MAX alerts in all,
    and ``more`` for the ones left out."""
    groups = []
    listed = covered = 0
    for group in group_alerts(digest):
        entries = []
        for entry in story_entries(group.alerts):
            room = EMAIL_ALERTS_MAX - listed
            if room <= 0:
                break
            shown = entry.alerts[:room]
            listed += len(shown)
            covered += entry.covers if len(shown) == len(entry.alerts) else len(shown)
            entries.append(
                {
                    "headline": entry_headline(entry),
                    "sources": entry_sources(entry),
                    "alerts": [_entry_context(alert) for alert in shown],
                }
            )
        if not entries:
            break
        groups.append(
            {"watchlist": one_line(group.watchlist), "count": len(group.alerts), "entries": entries}
        )
    return {
        "id": digest.id,
        "channel": one_line(digest.channel),
        "headline": _headline(digest),
        "groups": groups,
        "more": len(digest.alerts) - covered,
    }


def render_digest_text(digest: Digest) -> str:
    """The plain-text body of a digest email; matched spans as *term*."""
    return templates().get_template("digest.txt").render(digest_context(digest))


def render_digest_html(digest: Digest) -> str:
    """The HTML body of a digest email: feed text escaped, titles linked (http(s) only),
    matched spans in <mark>."""
    return templates().get_template("digest.html").render(digest_context(digest))


def render_digest_payload(digest: Digest) -> dict[str, Any]:
    """The webhook body for a digest, described by alerts/schemas/digest-v1.json: each
    alert exactly as its own payload (``feed.item.matched``, or ``feed.story.updated`` for
    a spread update), newest first."""
    return {
        "type": DIGEST_PAYLOAD_TYPE,
        "version": DIGEST_PAYLOAD_VERSION,
        "id": digest.id,
        "channel": digest.channel,
        "created_at": iso_time(digest.created_at),
        "count": len(digest.alerts),
        "alerts": [render_payload(alert) for alert in digest.alerts],
    }


def _listed(digest: Digest) -> Iterator[tuple[DigestGroup, DigestEntry]]:
    for group in group_alerts(digest):
        for entry in story_entries(group.alerts):
            yield group, entry


def _terms(alert: Alert) -> str:
    return ", ".join(dict.fromkeys(one_line(match.term) for match in alert.matches))


def _chat_link(alert: Alert) -> str | None:
    link = item_link(alert)
    return link if link and len(link) <= CHAT_LINK_MAX else None


def _feed_label(alert: Alert) -> str:
    return truncate(one_line(alert.feed.name), _FEED_IN_LIST_MAX)


def _slack_line(alert: Alert, bullet: str = "•") -> str:
    title = slack_escape(truncate(alert_title(alert), _TITLE_IN_LIST_MAX))
    link = _chat_link(alert)
    headline = slack_link(link, title) if link else title
    terms = f" ({slack_escape(truncate(_terms(alert), _TITLE_IN_LIST_MAX))})"
    feed = f" — _{slack_escape(_feed_label(alert))}_"
    return f"{bullet} {headline}{terms if alert.matches else ''}{feed}"


def _entry_lines(
    entry: DigestEntry, line: Callable[[Alert, str], str], escape: Callable[[str], str]
) -> list[str]:
    """An entry for chat: one alert's line (`` — 14 sources: …`` after it for a story), or
    the story's title and sources with at most CHAT_STORY_ITEMS_MAX items under it; at
    most _ENTRY_MAX characters (the first line always)."""
    sources = entry_sources(entry)
    suffix = f" — {escape(sources)}" if sources else ""
    headline = entry_headline(entry)
    if headline is None:
        return [line(entry.alerts[0], "•") + suffix]
    lines = [f"• {escape(truncate(headline, _TITLE_IN_LIST_MAX))}{suffix}"]
    size = len(lines[0])
    for alert in entry.alerts[:CHAT_STORY_ITEMS_MAX]:
        item = line(alert, "    ◦")
        if size + len(item) + 1 > _ENTRY_MAX - _MORE_RESERVE:
            break
        lines.append(item)
        size += len(item) + 1
    left = len(entry.alerts) - (len(lines) - 1)
    if left:
        lines.append(f"    ◦ {left} more")
    return lines


def render_digest_slack(digest: Digest) -> dict[str, Any]:
    """One Slack message: a headline, then per watchlist a bold name and its alerts as
    links, at most CHAT_ALERTS_MAX of them within SLACK_TEXT_MAX, then ``and K more``."""
    lines = [f"*Digest*: {slack_escape(_headline(digest))}"]
    size = len(lines[0])
    covered = 0
    current: DigestGroup | None = None
    for group, entry in islice(_listed(digest), CHAT_ALERTS_MAX):
        new = [] if group is current else [f"*{slack_escape(one_line(group.watchlist))}*"]
        new.extend(_entry_lines(entry, _slack_line, slack_escape))
        added = sum(len(line) + 1 for line in new)
        if size + added > SLACK_TEXT_MAX - _MORE_RESERVE:
            break
        lines.extend(new)
        size += added
        covered += entry.covers
        current = group
    more = len(digest.alerts) - covered
    if more:
        lines.append(f"_and {more} more_")
    return {"text": "\n".join(lines)}


def discord_link(url: str, text: str) -> str:
    """``[text](url)``, ``text`` already escaped. Parentheses would end the Markdown link
    early; encoded, the URL stays the same."""
    return f"[{text}]({url.replace('(', '%28').replace(')', '%29')})"


def _discord_line(alert: Alert, bullet: str = "•") -> str:
    title = discord_escape(truncate(alert_title(alert), _TITLE_IN_LIST_MAX))
    link = _chat_link(alert)
    if link:
        title = discord_link(link, title)
    return f"{bullet} {title} — {discord_escape(_feed_label(alert))}"


def _discord_embeds(digest: Digest) -> tuple[list[dict[str, Any]], int]:
    """One embed per watchlist, within Discord's limits; returns them and how many
    alerts they stand for. An entry is at most ~2,000 characters (a line under ~1,100,
    a story's sources line under ~700), so each embed holds its first."""
    embeds: list[dict[str, Any]] = []
    current: DigestGroup | None = None
    total = covered = 0
    for group, entry in islice(_listed(digest), CHAT_ALERTS_MAX):
        line = "\n".join(_entry_lines(entry, _discord_line, discord_escape))
        if group is not current:
            title = truncate(_group_label(group), DISCORD_TITLE_MAX)
            if len(embeds) == DISCORD_EMBEDS_MAX or total + len(title) + len(line) > _EMBEDS_BUDGET:
                break
            embeds.append({"title": title, "description": line})
            total += len(title) + len(line)
            current = group
        else:
            grown = f"{embeds[-1]['description']}\n{line}"
            if len(grown) > DISCORD_DESCRIPTION_MAX or total + len(line) + 1 > _EMBEDS_BUDGET:
                break
            embeds[-1]["description"] = grown
            total += len(line) + 1
        covered += entry.covers
    return embeds, covered


def render_digest_discord(digest: Digest) -> dict[str, Any]:
    """Discord execute-webhook body: a headline in ``content`` and one embed per watchlist
    listing its alerts as links, within Discord's limits; ``and K more`` when cut.
    ``allowed_mentions`` is empty so an ``@everyone`` in a feed title pings no one."""
    embeds, listed = _discord_embeds(digest)
    content = f"Digest: **{discord_escape(_headline(digest))}**"
    more = len(digest.alerts) - listed
    if more:
        content += f"\n…and {more} more"
    return {
        "content": truncate(content, DISCORD_CONTENT_MAX),
        "embeds": embeds,
        "allowed_mentions": {"parse": []},
    }
