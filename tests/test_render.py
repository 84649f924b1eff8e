"""Rendering an alert: subject, text, HTML, the JSON payload and its schema, Slack, Discord,
and the email message built from them. Pure functions: no servers here."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from receivers import sample_alert

import alerts
from alerts.base import Alert, AlertMatch
from alerts.email import EmailConfig, build_message, list_id, message_id
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
# The email message


@pytest.fixture
def email_config() -> EmailConfig:
    return EmailConfig.model_validate(
        {
            "type": "email",
            "name": "mail",
            "to": ["ops@example.org", "Аналитик <analyst@example.org>"],
            "from": "Монитор <monitor@example.org>",
            "smtp": {"host": "smtp.example.org"},
        }
    )


def parse(raw: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def test_message_is_ascii_with_rfc2047_cyrillic_subject(email_config: EmailConfig) -> None:
    raw = bytes(build_message(sample_alert(), email_config))
    assert raw.isascii()
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n")[0]
    message = parse(raw)
    assert message["Subject"] == "[CSTO] Саммит ОДКБ в Астане"
    assert message["From"] == "Монитор <monitor@example.org>"


def test_message_has_threading_and_automation_headers(email_config: EmailConfig) -> None:
    message = parse(bytes(build_message(sample_alert(), email_config)))
    assert message["Message-ID"] == "<alert-a1b2c3d4@feed-monitor>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Id"] == "<csto.feed-monitor>"
    assert message["Date"] == "Thu, 05 Nov 2026 14:05:00 +0000"


def test_message_is_text_and_html_alternatives(email_config: EmailConfig) -> None:
    message = parse(bytes(build_message(sample_alert(title=XSS), email_config)))
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert XSS in text.get_content()
    assert XSS not in html.get_content()
    assert "&lt;script&gt;" in html.get_content()
    assert "<mark>ОДКБ</mark>" in html.get_content()


def test_message_is_identical_on_retry(email_config: EmailConfig) -> None:
    alert = sample_alert()
    first, second = build_message(alert, email_config), build_message(alert, email_config)
    for header in ("Message-ID", "Date", "Subject"):
        assert first[header] == second[header]


def test_message_id_and_list_id_stay_valid_for_any_name() -> None:
    assert message_id(sample_alert(id="x y<>@z")).startswith("<alert-")
    assert " " not in message_id(sample_alert(id="x y<>@z"))
    assert message_id(sample_alert(id="a b")) != message_id(sample_alert(id="a-b"))
    assert list_id("Central Asia: energy") == "<central-asia-energy.feed-monitor>"
    cyrillic = list_id("ОДКБ")
    assert cyrillic.isascii() and cyrillic != list_id("ЕАЭС")
    assert list_id("ОДКБ news") != list_id("news")
