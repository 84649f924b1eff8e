"""Notice -> the text a channel sends: subject, plain text, HTML, JSON payload, Slack, Discord.

Input: a ``Notice`` (a feed failing, silent, gone, moved or recovered); output: strings and
JSON-ready dicts. Pure like alerts/render.py, whose escaping rules it reuses: does not
touch the network, the clock or the database, and never raises on odd feed text.

A feed's name is its title when none is configured, and a title is text the feed
controls: every format for people gets it on one line with its control characters made
visible (alerts.controls), then escaped for its own markup (HTML entities, Slack's
``& < >`` with mentions muted, Discord's Markdown). The JSON payload carries the values as
they are, for receivers to escape in their own output.
"""

from __future__ import annotations

from typing import Any

from alerts.base import Notice, NoticeKind
from alerts.controls import escape_controls
from alerts.render import (
    DISCORD_CONTENT_MAX,
    DISCORD_DESCRIPTION_MAX,
    DISCORD_TITLE_MAX,
    SUBJECT_MAX,
    discord_escape,
    iso_time,
    one_line,
    slack_escape,
    templates,
    truncate,
    utc_clock,
)

NOTICE_PAYLOAD_TYPE = "feed.health"
NOTICE_PAYLOAD_VERSION = 1  # bump with a new alerts/schemas/health-vN.json
NOTICE_LIST = "feed health"  # the List-Id label every notice mail shares
SUBJECT_PREFIX = "[monitor]"
_NAME_MAX = 100  # leaves room in the subject for what happened and when
_URL_MAX = 300
DETAIL_MAX = 2000


def shown(text: str, limit: int) -> str:
    """One line, control characters visible, at most ``limit`` code points."""
    return truncate(escape_controls(one_line(text)), limit)


def notice_headline(notice: Notice) -> str:
    """``feed Kazinform failing since 2026-11-30 08:00 UTC``: what happened, in one line."""
    name = shown(notice.feed.name, _NAME_MAX) or "(unnamed)"
    since = utc_clock(notice.since)
    what = {
        NoticeKind.FAILING: f"failing since {since}",
        NoticeKind.SILENT: f"silent since {since}",
        NoticeKind.GONE: f"gone since {since}",
        NoticeKind.MOVED: f"moved to {shown(notice.feed.url, _URL_MAX)}",
        NoticeKind.RECOVERED: f"recovered at {since}",
    }[notice.kind]
    return f"feed {name} {what}"


def render_notice_subject(notice: Notice) -> str:
    """``[monitor] feed Kazinform failing since 2026-11-30 08:00 UTC``, one bounded line."""
    return truncate(f"{SUBJECT_PREFIX} {notice_headline(notice)}", SUBJECT_MAX)


def notice_context(notice: Notice) -> dict[str, Any]:
    """What the notice email templates see: every value one line (the detail excepted),
    bounded, its control characters visible; the HTML template escapes them too."""
    return {
        "id": notice.id,
        "kind": notice.kind.value,
        "headline": notice_headline(notice),
        "feed_name": shown(notice.feed.name, _NAME_MAX),
        "feed_url": shown(notice.feed.url, _URL_MAX),
        "previous_url": shown(notice.previous_url, _URL_MAX) if notice.previous_url else None,
        "recovered_from": notice.recovered_from.value if notice.recovered_from else None,
        "since": utc_clock(notice.since),
        "detail": truncate(escape_controls(notice.detail.strip()), DETAIL_MAX),
    }


def render_notice_text(notice: Notice) -> str:
    return templates().get_template("notice.txt").render(notice_context(notice))


def render_notice_html(notice: Notice) -> str:
    """Every value escaped by the template's autoescape; the feed's URL is not linked."""
    return templates().get_template("notice.html").render(notice_context(notice))


def render_notice_payload(notice: Notice) -> dict[str, Any]:
    """The webhook body for a notice, described by alerts/schemas/health-v1.json."""
    return {
        "type": NOTICE_PAYLOAD_TYPE,
        "version": NOTICE_PAYLOAD_VERSION,
        "id": notice.id,
        "kind": notice.kind.value,
        "created_at": iso_time(notice.created_at),
        "feed": {"name": notice.feed.name, "url": notice.feed.url},
        "since": iso_time(notice.since),
        "detail": notice.detail,
        "previous_url": notice.previous_url,
        "recovered_from": notice.recovered_from.value if notice.recovered_from else None,
    }


def render_notice_slack(notice: Notice) -> dict[str, Any]:
    """Slack (and Mattermost) body: a bold headline, then the detail."""
    detail = shown(notice.detail, DETAIL_MAX)
    return {"text": f"*{slack_escape(notice_headline(notice))}*\n{slack_escape(detail)}"}


def render_notice_discord(notice: Notice) -> dict[str, Any]:
    """Discord body: the headline and one embed with the detail, within Discord's limits;
    ``allowed_mentions`` empty so a feed title's ``@everyone`` pings no one."""
    headline = discord_escape(notice_headline(notice))
    embed = {
        "title": truncate(f"Feed health: {notice.kind.value}", DISCORD_TITLE_MAX),
        "description": truncate(
            discord_escape(shown(notice.detail, DETAIL_MAX)) or "-", DISCORD_DESCRIPTION_MAX
        ),
        "timestamp": iso_time(notice.since),
    }
    return {
        "content": truncate(headline, DISCORD_CONTENT_MAX),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    }
