"""Stories in every channel's rendering: an alert's ``story`` in the JSON payloads, a spread
update (``Alert.update``) in each format, "Also in N other sources" for an alert whose story
grew while it waited, and digests that group a story's alerts into one entry. Pure
renderers, plus the webhook and log channels end to end."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest
from receivers import WebhookReceiver, check_payload, sample_alert, sample_digest, schema_validator

from alerts.base import Alert, AlertStory, StorySource
from alerts.config_email import EmailConfig
from alerts.config_log import LogConfig
from alerts.config_webhook import WebhookConfig
from alerts.controls import UNSAFE
from alerts.email import build_message
from alerts.errors import DeliveryError
from alerts.log import LogChannel, format_line
from alerts.render import (
    DISCORD_CONTENT_MAX,
    DISCORD_DESCRIPTION_MAX,
    DISCORD_TITLE_MAX,
    SUBJECT_MAX,
    render_discord,
    render_html,
    render_payload,
    render_slack,
    render_subject,
    render_text,
)
from alerts.render_apprise import ELLIPSIS, Limits, fit_message
from alerts.render_digest import (
    SLACK_TEXT_MAX,
    render_digest_discord,
    render_digest_html,
    render_digest_payload,
    render_digest_slack,
    render_digest_text,
)
from alerts.render_story import (
    STORY_SOURCES_MAX,
    render_story_discord,
    render_story_html,
    render_story_slack,
    render_story_text,
)
from alerts.webhook import WebhookChannel

XSS = "<script>alert(1)</script>"
PUBLISHED = datetime(2026, 11, 5, 13, 0, tzinfo=UTC)
OUTLETS = ("Example News", "TASS", "Reuters", "bne IntelliNews", "Kazinform", "Fergana", "Kloop")


def source(feed: str, n: int = 0, **fields: Any) -> StorySource:
    values: dict[str, Any] = {
        "title": f"Summit story {n} from {feed}",
        "link": f"https://{n}.example.net/story",
        "published": PUBLISHED,
    }
    return StorySource(feed=feed, **(values | fields))


def story(
    count: int = 3, *, sources: tuple[StorySource, ...] | None = None, **fields: Any
) -> AlertStory:
    """A story of ``count`` sources, all listed (the first the sample alert's feed)."""
    if sources is None:
        names = [*OUTLETS, *(f"Outlet {n}" for n in range(len(OUTLETS), count))]
        sources = tuple(source(name, n) for n, name in enumerate(names[:count]))
    values: dict[str, Any] = {"id": "story-1", "title": "CSTO summit in Astana", "size": count}
    return AlertStory(**(values | {"source_count": count, "sources": sources} | fields))


def with_story(alert: Alert, grown: AlertStory | None, *, update: bool = False) -> Alert:
    return dataclasses.replace(alert, story=grown, update=update)


def update(count: int = 15, **fields: Any) -> Alert:
    """A spread update: the story's first alert (sample_alert) reached ``count`` sources."""
    return with_story(sample_alert(id="u-15"), story(count, **fields), update=True)


# ---------------------------------------------------------------------------------------
# JSON payloads and their schemas


def test_payload_with_a_story_validates_against_alert_v1() -> None:
    hostile = source("Bad feed", 9, link="javascript:alert(1)", published=None)
    grown = story(2, sources=(source("Example News", 0), hostile))
    payload = json.loads(json.dumps(render_payload(with_story(sample_alert(), grown))))
    check_payload(payload)
    assert payload["type"] == "feed.item.matched"
    assert payload["story"] == {
        "id": "story-1",
        "title": "CSTO summit in Astana",
        "size": 2,
        "source_count": 2,
        "sources": [
            {
                "feed": "Example News",
                "title": "Summit story 0 from Example News",
                "link": "https://0.example.net/story",
                "published": "2026-11-05T13:00:00+00:00",
            },
            {
                "feed": "Bad feed",
                "title": "Summit story 9 from Bad feed",
                "link": None,
                "published": None,
            },
        ],
    }


def test_payload_without_a_story_is_what_it_was() -> None:
    payload = render_payload(sample_alert())
    assert list(payload) == [
        "type", "version", "id", "watchlist", "created_at", "item", "feed", "matches",
    ]  # fmt: skip
    assert render_payload(with_story(sample_alert(), None)) == payload


def test_schema_rejects_a_story_without_its_source_count() -> None:
    payload = render_payload(with_story(sample_alert(), story(3)))
    del payload["story"]["source_count"]
    with pytest.raises(jsonschema.ValidationError):
        check_payload(payload)


def test_update_payload_has_its_type_and_count_and_validates() -> None:
    payload = json.loads(json.dumps(render_payload(update(15))))
    check_payload(payload)  # story-updated-v1.json, by its type
    assert payload["type"] == "feed.story.updated" and payload["version"] == 1
    assert payload["count"] == 15 == payload["story"]["source_count"]
    assert payload["id"] == "u-15" and payload["watchlist"] == "CSTO"
    assert payload["item"]["title"] == "Саммит ОДКБ в Астане"  # the first alert's
    assert payload["matches"][0]["highlights"] == [[13, 17]]
    for damage in ("count", "story", "item"):
        broken = dict(payload)
        del broken[damage]
        with pytest.raises(jsonschema.ValidationError):
            schema_validator("story-updated-v1.json").validate(broken)


def test_digest_payload_lists_an_update_with_its_type_and_validates() -> None:
    lead = with_story(sample_alert(id="lead"), story(3))
    digest = sample_digest(update(15), lead, sample_alert(id="plain"))
    payload = json.loads(json.dumps(render_digest_payload(digest)))
    check_payload(payload)
    assert [a["type"] for a in payload["alerts"]] == [
        "feed.story.updated",
        "feed.item.matched",
        "feed.item.matched",
    ]
    assert "story" not in payload["alerts"][2]
    del payload["alerts"][0]["count"]  # an update entry is checked as an update
    with pytest.raises(jsonschema.ValidationError):
        check_payload(payload)


# ---------------------------------------------------------------------------------------
# Email: subject, text, HTML


def email_config() -> EmailConfig:
    raw = {"type": "email", "name": "mail", "to": ["a@example.org"], "from": "m@example.org"}
    return EmailConfig.model_validate(raw | {"smtp": {"host": "127.0.0.1"}})


def test_update_email_subject_says_how_many_sources() -> None:
    mail = build_message(update(15), email_config())
    assert str(mail["Subject"]) == "[CSTO] now in 15 sources: CSTO summit in Astana"
    assert render_subject(update(15, title="Line one\r\nBcc: x@evil")) == (
        "[CSTO] now in 15 sources: Line one Bcc: x@evil"
    )
    long = render_subject(update(15, title="x" * 500))
    assert len(long) == SUBJECT_MAX and long.endswith("…")


def test_update_email_lists_the_first_sources_then_how_many_more() -> None:
    mail = build_message(update(200), email_config())
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert text.startswith(
        "Now in 200 sources: CSTO summit in Astana\nhttps://example.org/news/1\n"
    )
    assert "- TASS — Summit story 1 from TASS — https://1.example.net/story\n" in text
    assert text.count("\n- Outlet ") == STORY_SOURCES_MAX - len(OUTLETS)
    assert "- and 180 more\n" in text
    assert html.count("<li>Outlet ") == STORY_SOURCES_MAX - len(OUTLETS)
    assert "and 180 more" in html
    assert "Лидеры стран <mark>ОДКБ</mark> встретились" in html  # why the story alerted


def test_update_email_escapes_every_feed_controlled_text() -> None:
    hostile = source(f"Feed {XSS}", 1, title=f"Title {XSS}\r\nBcc: x@evil", link="javascript:x()")
    alert = update(2, title=f"Story {XSS}", sources=(source("Example News"), hostile))
    html = render_story_html(alert, alert.story)  # type: ignore[arg-type]
    assert "<script" not in html and 'href="javascript' not in html
    assert "<li>Feed &lt;script&gt;alert(1)&lt;/script&gt; &mdash; Title &lt;script&gt;" in html
    assert "Now in 2 sources: Story &lt;script&gt;" in html
    text = render_story_text(alert, alert.story)  # type: ignore[arg-type]
    assert f"- Feed {XSS} — Title {XSS} Bcc: x@evil\n" in text  # one line, link left out
    subject = render_subject(alert)
    assert "\n" not in subject and "\r" not in subject


def test_an_alert_whose_story_grew_says_where_else_it_is() -> None:
    alert = with_story(sample_alert(), story(3))
    also = "Also in 2 other sources: TASS, Reuters"
    assert f"\n{also}\n" in render_text(alert)
    assert f'<p style="margin: 0 0 1em;">{also}</p>' in render_html(alert)
    assert also in render_slack(alert)["text"]
    assert render_discord(alert)["embeds"][0]["description"].startswith(also)
    fitted = fit_message(alert, Limits(title_max=250, body_max=4000))
    assert also in fitted.body.split("\n")


def test_a_story_of_one_source_adds_nothing() -> None:
    alone = with_story(sample_alert(), story(1))
    plain = sample_alert()
    assert render_text(alone) == render_text(plain)
    assert render_html(alone) == render_html(plain)
    assert render_slack(alone) == render_slack(plain)
    assert render_discord(alone) == render_discord(plain)


def test_also_in_names_a_bounded_number_of_escaped_feeds() -> None:
    names = [f"<b>{'N' * 500}</b>", *(f"Outlet {n}" for n in range(199))]
    sources = tuple(source(name, n) for n, name in enumerate(["Example News", *names]))
    alert = with_story(sample_alert(), story(200, sources=sources[:50]))
    text = render_text(alert)
    [line] = [line for line in text.split("\n") if line.startswith("Also in")]
    assert line.startswith("Also in 199 other sources: <b>NNN")
    assert line.endswith(", Outlet 0, Outlet 1, Outlet 2, Outlet 3, …") and len(line) < 400
    assert "&lt;b&gt;NNN" in render_html(alert) and "<b>NNN" not in render_html(alert)


# ---------------------------------------------------------------------------------------
# Digests


def separate(n: int, grown: AlertStory, minute: int) -> Alert:
    """An alert of story ``grown`` from its n-th source (a route with ``stories: separate``)."""
    alert = sample_alert(id=f"s{n}", title=f"Summit story {n}", link=f"/s/{n}")
    alert = dataclasses.replace(alert, created_at=datetime(2026, 11, 5, 14, minute, tzinfo=UTC))
    return with_story(alert, grown)


def test_a_digest_shows_two_alerts_of_one_story_as_one_entry() -> None:
    grown = story(14)
    digest = sample_digest(
        separate(2, grown, 40), sample_alert(id="other", title="Other news"), separate(1, grown, 30)
    )
    text = render_digest_text(digest)
    assert text.count("CSTO summit in Astana\n— 14 sources: Example News, TASS, Reuters") == 1
    head = text.index("— 14 sources")
    assert head < text.index("    Summit story 2\n") < text.index("    Summit story 1\n")
    assert text.index("    Summit story 1\n") < text.index(
        "\nOther news\n"
    )  # story where its newest is
    html = render_digest_html(digest)
    assert html.count("14 sources: Example News, TASS, Reuters, bne IntelliNews, Kazinform, …") == 1
    slack = render_digest_slack(digest)["text"]
    assert slack.count("\n• ") == 2  # the story and the other alert
    assert "\n• CSTO summit in Astana — 14 sources: Example News, TASS" in slack
    assert "\n    ◦ <https://example.org/s/2|Summit story 2>" in slack
    embeds = render_digest_discord(digest)["embeds"]
    assert embeds[0]["description"].count("• ") == 2


def test_an_update_and_its_first_alert_in_one_digest_are_one_entry() -> None:
    lead = with_story(sample_alert(id="lead"), story(3))
    digest = sample_digest(update(15), lead)
    text = render_digest_text(digest)
    assert text.count("Саммит ОДКБ в Астане") == 1
    assert "— 15 sources: Example News, TASS, Reuters, bne IntelliNews, Kazinform, …" in text
    assert "more not listed" not in text
    slack = render_digest_slack(digest)["text"]
    assert slack.count("\n• ") == 1 and "— 15 sources:" in slack and "more_" not in slack
    body = fit_message(digest, Limits(title_max=250, body_max=2000)).body
    assert body.count("• ") == 1 and "15 sources" in body and "more" not in body


def test_a_lone_update_stands_for_its_story_in_a_digest() -> None:
    text = render_digest_text(sample_digest(update(15), sample_alert(id="x", watchlist="Other")))
    assert "Саммит ОДКБ в Астане\nhttps://example.org/news/1\n" in text
    assert "— 15 sources: Example News" in text


def test_a_story_is_one_entry_per_watchlist() -> None:
    grown = story(4)
    kz = with_story(sample_alert(id="kz", watchlist="Kazakhstan"), grown)
    csto = with_story(sample_alert(id="csto"), grown)
    text = render_digest_text(sample_digest(kz, csto))
    assert text.count("— 4 sources:") == 2


# ---------------------------------------------------------------------------------------
# Chat and Apprise: limits with 200 sources


def big_update() -> Alert:
    sources = tuple(
        source(
            f"*{n}* {'@everyone ' * 20}", n, title="T&<>" * 300, link=f"https://x.org/{'p' * 400}"
        )
        for n in range(200)
    )
    return update(200, title="S" * 2000, sources=sources)


def test_slack_update_stays_within_its_budget() -> None:
    text = render_story_slack(big_update(), big_update().story)["text"]  # type: ignore[arg-type]
    assert len(text) <= SLACK_TEXT_MAX
    assert text.startswith("*CSTO*: now in 200 sources: <https://example.org/news/1|SSS")
    listed = text.count("\n• ")
    assert 0 < listed < 20 and text.endswith(f"\n_and {200 - listed} more_")
    assert "@everyone" not in text and "<script" not in text


def test_discord_update_stays_within_discord_limits() -> None:
    body = render_story_discord(big_update(), big_update().story)  # type: ignore[arg-type]
    [embed] = body["embeds"]
    assert len(body["content"]) <= DISCORD_CONTENT_MAX
    assert body["content"].startswith("**CSTO**: now in 200 sources: SSS")
    assert len(embed["title"]) <= DISCORD_TITLE_MAX
    assert len(embed["description"]) <= DISCORD_DESCRIPTION_MAX
    total = len(embed["title"]) + len(embed["description"]) + len(embed["footer"]["text"])
    assert total <= 6000 and body["allowed_mentions"] == {"parse": []}
    listed = embed["description"].count("• ")
    assert 0 < listed <= 10 and embed["description"].endswith(f"…and {200 - listed} more")
    assert r"\*0\*" in embed["description"]  # Markdown in a feed name escaped


def hook(receiver: WebhookReceiver, **options: Any) -> WebhookChannel:
    raw = {"type": "webhook", "name": "hook", "url": receiver.url, "timeout": 5.0}
    return WebhookChannel(WebhookConfig.model_validate(raw | options))


@pytest.mark.parametrize("fmt", ["json", "slack", "discord"])
async def test_webhook_sends_an_update_in_each_format(
    webhook_receiver: WebhookReceiver, fmt: str
) -> None:
    channel = hook(webhook_receiver, format=fmt)
    try:
        await channel.send(update(15))
    finally:
        await channel.aclose()
    [request] = webhook_receiver.requests
    if fmt == "json":
        body = request.checked_json()
        assert body["type"] == "feed.story.updated" and body["count"] == 15
    elif fmt == "slack":
        text = request.json()["text"]
        assert text.startswith("*CSTO*: now in 15 sources: <https://example.org/news/1|CSTO")
    else:
        body = request.json()
        assert body["content"] == "**CSTO**: now in 15 sources: CSTO summit in Astana"


async def test_a_template_tells_an_update_apart_and_sees_its_story(
    webhook_receiver: WebhookReceiver,
) -> None:
    template = (
        "{{ is_story_update }}|{% if story %}{{ story.source_count }} "
        "{{ story.sources[1].feed }}{% else %}none{% endif %}|{{ subject }}|"
        "{% for alert in alerts %}{{ alert.story.id if alert.story is defined }};{% endfor %}"
    )
    channel = hook(webhook_receiver, template=template, content_type="text/plain")
    try:
        await channel.send(update(15))
        await channel.send(sample_alert())
        await channel.send(sample_digest(update(15), sample_alert()))
    finally:
        await channel.aclose()
    bodies = [request.body.decode() for request in webhook_receiver.requests]
    assert bodies[0] == "True|15 TASS|[CSTO] now in 15 sources: CSTO summit in Astana|story-1;"
    assert bodies[1] == "False|none|[CSTO] Саммит ОДКБ в Астане|;"
    assert bodies[2].startswith("False|")  # a digest: no story of its own
    assert bodies[2].endswith("|story-1;;")
    with pytest.raises(DeliveryError, match="template failed"):  # the story is read-only
        broken = hook(webhook_receiver, template="{{ story.sources.append(1) }}")
        try:
            await broken.send(update(15))
        finally:
            await broken.aclose()


@pytest.mark.parametrize("markup", ["text", "html", "markdown"])
@pytest.mark.parametrize("body_max", [200, 1000, 4096])
def test_apprise_update_stays_within_the_service_limits(markup: str, body_max: int) -> None:
    limits = Limits(title_max=0, body_max=body_max, markup=markup)  # type: ignore[arg-type]
    body = fit_message(big_update(), limits).body
    assert len(body) <= body_max
    start = {"text": "*[CSTO]", "html": "<b>[CSTO]", "markdown": r"**\[CSTO\]"}[markup]
    assert body.startswith(f"{start} now in 200 sources")
    assert "<script" not in body and "@everyone" not in body
    if body_max >= 1000:
        assert re.search(rf"{ELLIPSIS} and 1\d\d more$", body)


def test_chat_digests_with_200_source_stories_stay_within_limits() -> None:
    grown = big_update().story
    assert grown is not None
    same = [separate(n, grown, n % 60) for n in range(30)]  # one story, 30 items
    apart = [
        dataclasses.replace(alert, id=f"o{n}", story=dataclasses.replace(grown, id=f"x{n}"))
        for n, alert in enumerate(same)
    ]  # 30 stories of one item each
    digest = sample_digest(*same, *apart)
    slack = render_digest_slack(digest)["text"]
    assert len(slack) <= SLACK_TEXT_MAX and re.search(r"\n_and \d+ more_$", slack)
    assert slack.count("\n    ◦ ") <= 4  # at most 3 items under the story, then "N more"
    body = render_digest_discord(digest)
    assert sum(len(e["title"]) + len(e["description"]) for e in body["embeds"]) <= 6000
    assert all(len(e["description"]) <= DISCORD_DESCRIPTION_MAX for e in body["embeds"])
    assert len(body["content"]) <= DISCORD_CONTENT_MAX and "more" in body["content"]
    fitted = fit_message(digest, Limits(title_max=250, body_max=1000, markup="html"))
    assert len(fitted.body) <= 1000 and re.search(rf"{ELLIPSIS} and \d+ more$", fitted.body)


# ---------------------------------------------------------------------------------------
# Log channel


async def test_log_channel_writes_one_update_line(caplog: pytest.LogCaptureFixture) -> None:
    channel = LogChannel(LogConfig(type="log", name="log"))
    with caplog.at_level(logging.INFO, logger="alerts.log"):
        await channel.send(update(15, title=f"Summit \x1b[2J {XSS}"))
    [record] = caplog.records
    line = record.getMessage()
    assert line == (
        'update watchlist=CSTO count=15 title="Summit \\u001b[2J <script>alert(1)</script>" '
        "story=story-1 alert=u-15"
    )
    assert not UNSAFE.search(line)
    lead = format_line(with_story(sample_alert(), story(3)))
    assert lead.endswith(" story=story-1 sources=3 alert=a1b2c3d4")
