"""Rendering an alert (alerts/render.py) and a digest (alerts/render_digest.py): subject,
text, HTML, the JSON payloads and their schemas, Slack, Discord. Pure functions: no servers
here; the email message built from them is tested in test_email.py."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from receivers import check_payload, sample_alert, sample_digest, schema_validator

import alerts
from alerts.base import Alert, AlertMatch, Digest
from alerts.render import (
    DISCORD_DESCRIPTION_MAX,
    DISCORD_TITLE_MAX,
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    item_link,
    plain_snippet,
    render_discord,
    render_html,
    render_payload,
    render_slack,
    render_subject,
    render_text,
)
from alerts.render_digest import (
    CHAT_ALERTS_MAX,
    DISCORD_EMBEDS_MAX,
    EMAIL_ALERTS_MAX,
    SLACK_TEXT_MAX,
    group_alerts,
    render_digest_discord,
    render_digest_html,
    render_digest_payload,
    render_digest_slack,
    render_digest_subject,
    render_digest_text,
)

S, E = HIGHLIGHT_START, HIGHLIGHT_END
SCHEMA_PATH = Path(alerts.__file__).parent / "schemas" / "alert-v1.json"
XSS = "<script>alert(1)</script>"


def with_matches(alert: Alert, *matches: AlertMatch) -> Alert:
    return Alert(
        id=alert.id,
        watchlist=alert.watchlist,
        item=alert.item,
        feed=alert.feed,
        matches=matches,
        created_at=alert.created_at,
    )


# ---------------------------------------------------------------------------------------
# Highlights and links


def test_plain_snippet_removes_markers_and_reports_code_point_spans() -> None:
    text, spans = plain_snippet(f"Саммит {S}ОДКБ{E} и {S}ЕАЭС{E}")
    assert text == "Саммит ОДКБ и ЕАЭС"
    assert [text[a:b] for a, b in spans] == ["ОДКБ", "ЕАЭС"]


def test_unbalanced_markers_do_not_break_rendering() -> None:
    assert plain_snippet(f"a{E}b{S}c") == ("abc", [(2, 3)])


def test_relative_link_is_made_absolute_against_the_feed() -> None:
    assert item_link(sample_alert(link="/news/2?a=1")) == "https://example.org/news/2?a=1"


@pytest.mark.parametrize("link", ["javascript:alert(1)", "data:text/html,x", "mailto:a@b.c", None])
def test_only_http_links_are_linked(link: str | None) -> None:
    alert = sample_alert(link=link)
    assert item_link(alert) is None
    assert render_payload(alert)["item"]["link"] is None
    assert 'href="javascript' not in render_html(alert)
    assert "data:text" not in render_html(alert)


# ---------------------------------------------------------------------------------------
# Subject, text, HTML


def test_subject_is_watchlist_and_title_on_one_line() -> None:
    assert render_subject(sample_alert(title="Line one\r\nBcc: x@evil")) == (
        "[CSTO] Line one Bcc: x@evil"
    )
    assert render_subject(sample_alert(title="  ")) == "[CSTO] (untitled)"
    long = render_subject(sample_alert(title="x" * 500))
    assert len(long) == 200 and long.endswith("…")


def test_text_shows_title_link_feed_and_highlighted_snippet() -> None:
    text = render_text(sample_alert())
    assert text.startswith("Саммит ОДКБ в Астане\nhttps://example.org/news/1\n")
    assert "Feed: Example News <https://example.org/feed.xml>" in text
    assert "Published: 2026-11-05 14:03 UTC" in text
    assert "- ОДКБ (in title): Лидеры стран *ОДКБ* встретились" in text
    assert S not in text and E not in text


def test_html_escapes_all_feed_text_and_marks_matches_after_escaping() -> None:
    alert = sample_alert(title=XSS, summary=XSS, snippet=f"{XSS} {S}<b>ОДКБ</b>{E} & co")
    alert = with_matches(alert, AlertMatch(term=XSS, field=XSS, snippet=alert.matches[0].snippet))
    html = render_html(alert)
    assert XSS not in html
    assert "<script" not in html
    assert "<mark>&lt;b&gt;ОДКБ&lt;/b&gt;</mark> &amp; co" in html
    assert '<a href="https://example.org/news/1">&lt;script&gt;' in html


def test_html_links_the_item_and_survives_an_item_without_link() -> None:
    assert '<a href="https://example.org/news/1">' in render_html(sample_alert())
    html = render_html(sample_alert(link=None, published=None))
    assert "news/1" not in html and "Саммит ОДКБ в Астане" in html


# ---------------------------------------------------------------------------------------
# JSON payload


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


def validate(payload: dict[str, Any], schema: dict[str, Any]) -> None:
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    jsonschema.Draft202012Validator(schema, format_checker=checker).validate(payload)


def test_payload_matches_the_published_schema(schema: dict[str, Any]) -> None:
    payload = render_payload(sample_alert())
    validate(json.loads(json.dumps(payload)), schema)
    assert payload["type"] == "feed.item.matched" and payload["version"] == 1
    assert payload["created_at"] == "2026-11-05T14:05:00+00:00"
    [match] = payload["matches"]
    assert match == {
        "term": "ОДКБ",
        "field": "title",
        "snippet": "Лидеры стран ОДКБ встретились",
        "highlights": [[13, 17]],
    }


def test_payload_with_nulls_matches_the_schema(schema: dict[str, Any]) -> None:
    payload = render_payload(sample_alert(link=None, published=None, guid=None))
    validate(payload, schema)
    assert payload["item"]["link"] is None and payload["item"]["published"] is None


def test_schema_rejects_a_payload_missing_the_alert_id(schema: dict[str, Any]) -> None:
    payload = render_payload(sample_alert())
    del payload["id"]
    with pytest.raises(jsonschema.ValidationError):
        validate(payload, schema)


def test_naive_times_are_given_as_utc() -> None:
    payload = render_payload(sample_alert(published=datetime(2026, 1, 2, 3, 4)))
    assert payload["item"]["published"] == "2026-01-02T03:04:00+00:00"


# ---------------------------------------------------------------------------------------
# Slack and Discord


def test_slack_text_escapes_control_characters_and_links_the_title() -> None:
    alert = sample_alert(
        title="A & B <!channel>",
        link="https://example.org/a?x=1&y=|2",
        snippet=f"Tom & {S}<Jerry>{E}",
    )
    text = render_slack(alert)["text"]
    assert "<https://example.org/a?x=1&amp;y=%7C2|A &amp; B &lt;!channel&gt;>" in text
    assert "*&lt;Jerry&gt;*" in text and "Tom &amp; " in text
    assert "<!channel>" not in text


def test_discord_body_stays_within_discord_limits() -> None:
    long_snippet = "x" * 3000 + f" {S}ОДКБ{E}"
    base = sample_alert(title="T" * 1000)
    matches = [AlertMatch(term="ОДКБ", field="content", snippet=long_snippet)] * 30
    body = render_discord(with_matches(base, *matches))
    [embed] = body["embeds"]
    assert len(embed["title"]) <= DISCORD_TITLE_MAX
    assert len(embed["description"]) <= DISCORD_DESCRIPTION_MAX
    total = len(embed["title"]) + len(embed["description"]) + len(embed["footer"]["text"])
    assert total <= 6000
    assert len(body["content"]) <= 2000
    assert body["allowed_mentions"] == {"parse": []}


def test_discord_escapes_markdown_and_bolds_the_match() -> None:
    alert = sample_alert(watchlist="a_b", snippet=f"[x](http://evil) *y* {S}ОДКБ{E}")
    body = render_discord(alert)
    [embed] = body["embeds"]
    assert r"\[x\](http://evil) \*y\* **ОДКБ**" in embed["description"]
    assert body["content"] == r"New match for **a\_b**"
    assert embed["url"] == "https://example.org/news/1"
    assert embed["timestamp"] == "2026-11-05T14:03:00+00:00"


def test_discord_omits_description_without_matches() -> None:
    body = render_discord(with_matches(sample_alert()))
    assert "description" not in body["embeds"][0]


# ---------------------------------------------------------------------------------------
# Digests


def mixed_digest(count: int = 5, **fields: Any) -> Digest:
    """``count`` alerts, newest first (a5 ... a1), cycling over watchlists K, C, E, K, C ..."""
    names = ("Kazakhstan", "CSTO", "Energy")
    alerts = []
    for n in range(count):
        number = count - n
        options = {"id": f"a{number}", "watchlist": names[n % 3], "title": f"Item {number}"}
        alerts.append(sample_alert(**options | fields))
    return sample_digest(*alerts)


def test_groups_follow_the_newest_alert_and_keep_newest_first_inside() -> None:
    groups = group_alerts(mixed_digest(5))
    assert [(g.watchlist, [a.id for a in g.alerts]) for g in groups] == [
        ("Kazakhstan", ["a5", "a2"]),
        ("CSTO", ["a4", "a1"]),
        ("Energy", ["a3"]),
    ]


def test_digest_subject_counts_alerts_per_watchlist() -> None:
    assert render_digest_subject(mixed_digest(5)) == (
        "[digest] 5 alerts: Kazakhstan (2), CSTO (2), Energy (1)"
    )
    assert render_digest_subject(sample_digest(sample_alert())) == "[digest] 1 alert: CSTO (1)"


def test_digest_subject_stays_one_bounded_line() -> None:
    alerts = [sample_alert(id=str(n), watchlist=f"Watchlist\r\nnumber {n:02}") for n in range(40)]
    subject = render_digest_subject(sample_digest(*alerts))
    assert len(subject) <= 200 and "\n" not in subject and "\r" not in subject
    shown = subject.count("(1)")
    assert subject.endswith(f", +{40 - shown} more") and shown >= 5
    assert subject.startswith("[digest] 40 alerts: Watchlist number 00 (1), ")
    huge = render_digest_subject(sample_digest(sample_alert(watchlist="Ж" * 500)))
    assert len(huge) == 200 and huge.endswith("…")
    assert huge.encode("utf-8").decode("utf-8") == huge  # cut between code points


def test_digest_text_lists_groups_then_alerts_newest_first() -> None:
    text = render_digest_text(mixed_digest(5))
    assert text.startswith("5 alerts in 3 watchlists\n")
    order = [text.index(marker) for marker in ("== Kazakhstan (2) ==", "Item 5", "Item 2")]
    order += [text.index(marker) for marker in ("== CSTO (2) ==", "Item 4", "Item 1")]
    order += [text.index(marker) for marker in ("== Energy (1) ==", "Item 3")]
    assert order == sorted(order)
    assert "Example News, 2026-11-05 14:03 UTC" in text
    assert "  - ОДКБ (in title): Лидеры стран *ОДКБ* встретились" in text
    assert S not in text and E not in text


def test_digest_html_escapes_feed_text_and_links_only_http_titles() -> None:
    hostile = sample_alert(
        id="x",
        watchlist=XSS,
        title=XSS,
        link="javascript:alert(1)",
        snippet=f"{XSS} {S}<b>ОДКБ</b>{E}",
    )
    html = render_digest_html(sample_digest(hostile, sample_alert()))
    assert "<script" not in html and 'href="javascript' not in html
    assert '<h2 style="font-size: 1.1em; margin: 1em 0 0.3em;">&lt;script&gt;' in html
    assert "<mark>&lt;b&gt;ОДКБ&lt;/b&gt;</mark>" in html
    assert '<a href="https://example.org/news/1"><strong>Саммит ОДКБ в Астане</strong></a>' in html


def test_digest_email_lists_a_bounded_number_of_alerts_and_matches() -> None:
    many = mixed_digest(EMAIL_ALERTS_MAX + 50)
    text = render_digest_text(many)
    assert text.count("Example News, ") == EMAIL_ALERTS_MAX
    assert "... and 50 more not listed here." in text
    assert render_digest_html(many).count("<strong>ОДКБ</strong>") == EMAIL_ALERTS_MAX
    chatty = with_matches(sample_alert(), *[sample_alert().matches[0]] * 5)
    assert "(+2 more matches)" in render_digest_text(sample_digest(chatty))


def test_digest_payload_matches_the_digest_schema() -> None:
    digest = mixed_digest(5)
    payload = render_digest_payload(digest)
    check_payload(json.loads(json.dumps(payload)))
    assert {key: payload[key] for key in ("type", "version", "id", "channel", "count")} == {
        "type": "feed.digest",
        "version": 1,
        "id": digest.id,
        "channel": "hook",
        "count": 5,
    }
    assert payload["created_at"] == "2026-11-05T15:00:00+00:00"
    assert payload["alerts"] == [render_payload(alert) for alert in digest.alerts]


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.pop("count"),
        lambda p: p.update(type="feed.item.matched"),
        lambda p: p.update(alerts=[], count=0),
        lambda p: p["alerts"][1].pop("id"),  # each entry is checked against alert-v1
        lambda p: p["alerts"][0]["matches"][0].update(highlights="13-17"),
    ],
)
def test_digest_schema_rejects_a_broken_payload(damage: Any) -> None:
    payload = render_digest_payload(mixed_digest(3))
    damage(payload)
    with pytest.raises(jsonschema.ValidationError):
        schema_validator("digest-v1.json").validate(payload)


def test_slack_digest_links_each_alert_and_says_how_many_more() -> None:
    digest = mixed_digest(CHAT_ALERTS_MAX + 7, title="A & B <!channel>", link="/x?a=1&b=|2")
    text = render_digest_slack(digest)["text"]
    assert text.startswith("*Digest*: 27 alerts in 3 watchlists\n*Kazakhstan*\n")
    assert text.count("\n• ") == CHAT_ALERTS_MAX
    assert text.endswith("\n_and 7 more_")
    assert "• <https://example.org/x?a=1&amp;b=%7C2|A &amp; B &lt;!channel&gt;> (ОДКБ)" in text
    assert "<!channel>" not in text


def test_slack_digest_stays_under_its_size_budget() -> None:
    digest = mixed_digest(15, title="T" * 5000, link="https://example.org/" + "p" * 400)
    text = render_digest_slack(digest)["text"]
    listed = text.count("\n• ")
    assert len(text) <= SLACK_TEXT_MAX
    assert 0 < listed < 15 and text.endswith(f"_and {15 - listed} more_")


def test_discord_digest_has_one_embed_per_watchlist_within_limits() -> None:
    # Escaped Markdown doubles the title; long links: about 950 characters per line.
    long_link = "p" * 450 + "(x)"
    alerts = [
        sample_alert(id=str(n), watchlist=f"W{n % 12}", title="*" * 900, link=f"/{n}/{long_link}")
        for n in range(60)
    ]
    body = render_digest_discord(sample_digest(*alerts))
    embeds = body["embeds"]
    assert 0 < len(embeds) <= DISCORD_EMBEDS_MAX
    assert all(len(e["title"]) <= 256 and len(e["description"]) <= 4096 for e in embeds)
    assert sum(len(e["title"]) + len(e["description"]) for e in embeds) <= 6000
    listed = sum(e["description"].count("• ") for e in embeds)
    assert 0 < listed < CHAT_ALERTS_MAX  # the 6000-character budget cut it first
    assert body["content"].endswith(f"\n…and {60 - listed} more") and len(body["content"]) <= 2000
    assert "p%28x%29) — Example News" in embeds[0]["description"]
    assert body["allowed_mentions"] == {"parse": []}


def test_discord_digest_has_at_most_ten_embeds() -> None:
    alerts = [sample_alert(id=str(n), watchlist=f"W{n}", title="short") for n in range(15)]
    body = render_digest_discord(sample_digest(*alerts))
    assert len(body["embeds"]) == DISCORD_EMBEDS_MAX
    assert body["content"].endswith("\n…and 5 more")


def test_discord_digest_escapes_markdown_in_feed_text() -> None:
    alert = sample_alert(title="[x](http://evil) *y*", watchlist="a_b")
    body = render_digest_discord(sample_digest(alert))
    [embed] = body["embeds"]
    assert embed["title"] == "a_b (1)"  # embed titles are not Markdown
    assert embed["description"].startswith(r"• [\[x\](http://evil) \*y\*](https://example.org/")
    assert body["content"] == "Digest: **1 alert in 1 watchlist**"


def test_slack_text_mutes_mentions_but_not_addresses_or_links() -> None:
    alert = sample_alert(
        title="@channel: @ALL hands, mail ops@example.org, й@here",
        watchlist="@everyone",
        link="https://example.org/@here?to=a@b.c",
        snippet=f"ping @{S}here{E} and @{E}all",
    )
    alert_text = render_slack(alert)["text"]
    digest_text = render_digest_slack(sample_digest(alert))["text"]
    for text in (alert_text, digest_text):
        assert "@\u200bchannel: @\u200bALL hands, mail ops@example.org, й@\u200bhere" in text
        assert "*@\u200beveryone*" in text
        assert "<https://example.org/@here?to=a@b.c|" in text
    assert "ping @\u200b*here* and @\u200ball" in alert_text
