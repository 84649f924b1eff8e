"""The decision step (monitor/decide.py) on its own: no server, no database, no clock."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from alerts.digest import DigestSchedule
from monitor import decide as decide_module
from monitor.decide import (
    GONE_MESSAGE,
    FeedPolicy,
    ItemsDecision,
    Routing,
    alert_id,
    decide_failure,
    decide_gone,
    decide_items,
    decide_unchanged,
)
from monitor.match import Matcher
from monitor.stories import StoryFeatures
from monitor.stories.plan import StoryPolicy
from monitor.types import ClaimedFeed, FeedState, FetchResult, Item, ParsedFeed, Watchlist

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
POLICY = FeedPolicy(interval=600, backlog=86400, max_interval=6 * 3600, max_backoff=86400, jitter=0)
FEED = ClaimedFeed(
    id=1,
    url="https://example.org/feed.xml",
    current_url="https://example.org/feed.xml",
    name=None,
    title="Central Asia Wire",
    etag='"v1"',
    last_modified="Mon, 30 Nov 2026 10:00:00 GMT",
    error_count=0,
    ttl_seconds=3600,
    first_poll=False,
)
MATCHER = Matcher(
    [
        Watchlist(name="csto", query="CSTO"),
        Watchlist(name="wire", query='feed:"Central Asia Wire" AND Tokayev'),
    ]
)
ROUTING = Routing(
    routes={
        "csto": (("hook", None, False), ("mail", DigestSchedule.parse("daily@08:00 UTC"), False))
    },
    digests={"hook": None, "mail": None},
)
RESULT = FetchResult(url=FEED.url, final_url=FEED.url, status=200, etag='"v2"')


def item(key: str, title: str, *, age: timedelta | None = timedelta(hours=1)) -> Item:
    return Item(
        key=key,
        guid=key,
        link=None,
        title=title,
        summary="",
        content="",
        author="",
        categories=(),
        published=None if age is None else NOW - age,
        updated=None,
        content_hash=f"hash-{title}",
    )


def decide(feed: ClaimedFeed, items: tuple[Item, ...], existing: dict[str, str]):
    parsed = ParsedFeed(title="Central Asia Wire", link=None, items=items, ttl_seconds=7200)
    return decide_items(
        feed,
        POLICY,
        RESULT,
        parsed,
        existing,
        NOW,
        matcher=MATCHER,
        routing=ROUTING,
        rng=random.Random(1),
    )


def test_new_items_by_key_and_edited_ones_by_content_hash() -> None:
    a, b, c = item("a", "CSTO summit"), item("b", "Weather"), item("c", "Edited")
    decision = decide(FEED, (a, b, c), {"b": b.content_hash, "c": "an older hash"})
    assert decision.new == (a,) and decision.changed == (c,)
    assert [x.item_key for x in decision.alerts] == ["a"]


def test_an_alert_has_a_stable_id_and_a_route_per_channel() -> None:
    [alert] = decide(FEED, (item("a", "CSTO summit"),), {}).alerts
    assert alert.id == alert_id(FEED.url, "a", "csto")
    now_route, digest_route = alert.routes
    assert (now_route.channel, now_route.digest_at) == ("hook", None)
    assert digest_route.channel == "mail"
    assert digest_route.digest_at == datetime(2026, 12, 2, 8, tzinfo=UTC)


def test_first_poll_alerts_only_on_items_within_the_backlog_window() -> None:
    fresh = item("fresh", "CSTO today")
    old = item("old", "CSTO last year", age=timedelta(days=400))
    undated = item("undated", "CSTO sometime", age=None)
    first = decide(replace(FEED, first_poll=True), (fresh, old, undated), {})
    assert len(first.new) == 3  # every item is stored
    assert [a.item_key for a in first.alerts] == ["fresh"]  # only the fresh one alerts
    later = decide(FEED, (fresh, old, undated), {})
    assert sorted(a.item_key for a in later.alerts) == ["fresh", "old", "undated"]


def test_feed_queries_see_the_display_name_of_an_unnamed_feed() -> None:
    [alert] = decide(FEED, (item("a", "Tokayev speaks"),), {}).alerts
    assert alert.watchlist == "wire"
    first = replace(FEED, title=None, first_poll=True)  # the title this poll brings counts
    assert [a.watchlist for a in decide(first, (item("a", "Tokayev speaks"),), {}).alerts] == [
        "wire"
    ]
    named = replace(FEED, name="Wire")  # a configured name wins over the title
    assert decide(named, (item("a", "Tokayev speaks"),), {}).alerts == ()


def test_success_records_validators_title_and_the_feed_ttl_hint() -> None:
    poll = decide(FEED, (), {}).poll
    assert poll.state == FeedState.OK and poll.etag == '"v2"' and poll.ttl_seconds == 7200
    assert poll.title == "Central Asia Wire"
    assert poll.next_poll_at == NOW + timedelta(seconds=7200)  # the <ttl> raised the interval


def test_not_modified_keeps_stored_validators_and_the_stored_ttl_hint() -> None:
    bare = FetchResult(url=FEED.url, final_url=FEED.url, status=304)
    poll = decide_unchanged(FEED, POLICY, bare, NOW, random.Random(1))
    assert (poll.etag, poll.last_modified) == (FEED.etag, FEED.last_modified)
    assert poll.next_poll_at == NOW + timedelta(seconds=3600)


def test_gone_stops_polling_and_counts_an_error() -> None:
    gone = FetchResult(url=FEED.url, final_url=FEED.url, status=410)
    poll = decide_gone(FEED, gone, NOW)
    assert (poll.state, poll.error, poll.error_count) == (FeedState.GONE, GONE_MESSAGE, 1)


def test_failures_back_off_exponentially() -> None:
    feed = replace(FEED, error_count=2)
    poll = decide_failure(feed, POLICY, NOW, random.Random(1), status=503, message="HTTP 503")
    assert poll.state == FeedState.ERROR and poll.error_count == 3
    assert poll.next_poll_at == NOW + timedelta(seconds=600 * 4)


def test_a_permanent_failure_backs_off_to_max_backoff_at_once() -> None:
    poll = decide_failure(
        FEED, POLICY, NOW, random.Random(1), status=404, message="HTTP 404", permanent=True
    )
    assert poll.error_count == 1
    assert poll.next_poll_at == NOW + timedelta(seconds=POLICY.max_backoff)


def test_retry_after_later_than_the_back_off_wins() -> None:
    later = NOW + timedelta(hours=3)
    poll = decide_failure(
        FEED, POLICY, NOW, random.Random(1), status=429, message="429", retry_after=later
    )
    assert poll.next_poll_at == later and poll.retry_after == later


def test_a_retry_after_is_capped_at_max_backoff() -> None:
    years = NOW + timedelta(days=3650)
    poll = decide_failure(
        FEED, POLICY, NOW, random.Random(1), status=503, message="503", retry_after=years
    )
    cap = NOW + timedelta(seconds=POLICY.max_backoff)
    assert poll.retry_after == cap and poll.next_poll_at == cap


def test_an_item_whose_matching_fails_is_stored_without_alerts_and_counted() -> None:
    class Fragile(Matcher):
        def match_item(self, item, context):  # type: ignore[no-untyped-def]
            if "BOOM" in item.title:
                raise RuntimeError("a bug")
            return super().match_item(item, context)

    parsed = ParsedFeed(
        title="t", link=None, items=(item("a", "CSTO BOOM"), item("b", "CSTO summit"))
    )
    decision = decide_items(
        FEED,
        POLICY,
        RESULT,
        parsed,
        {},
        NOW,
        matcher=Fragile([Watchlist(name="csto", query="CSTO")]),
        routing=ROUTING,
        rng=random.Random(1),
    )
    assert len(decision.new) == 2 and decision.unmatched == 1
    assert [a.item_key for a in decision.alerts] == ["b"]
    assert "1 new item(s) could not be matched" in (decision.poll.warning or "")


def test_every_new_item_that_may_alert_is_planned_for_stories_and_a_failure_costs_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Matched or not, each new item that may alert gets story features (a story counts
    every feed that carried it); one whose features fail is left out, the others stay."""
    real = decide_module.story_features

    def fragile(*, title: str, summary: str, link: str | None) -> StoryFeatures:
        if "BOOM" in title:
            raise RuntimeError("a bug")
        return real(title=title, summary=summary, link=link)

    monkeypatch.setattr(decide_module, "story_features", fragile)
    items = (item("a", "CSTO summit"), item("b", "Weather BOOM"), item("c", "Weather"))
    parsed = ParsedFeed(title="t", link=None, items=items)
    policy = StoryPolicy(window=timedelta(hours=48), steps=(5, 15))
    decision = decide_items(
        FEED,
        POLICY,
        RESULT,
        parsed,
        {"c": items[2].content_hash},
        NOW,
        matcher=MATCHER,
        routing=ROUTING,
        rng=random.Random(1),
        stories=policy,
    )
    assert decision.stories is not None
    assert [i.key for i in decision.stories.items] == ["a"]
    assert decision.stories.feed_url == FEED.url
    assert [r.channel for r in decision.stories.update_routes["csto"]] == ["hook", "mail"]
    assert decide(FEED, items, {}).stories is None  # stories off


def test_items_dated_before_the_story_window_are_in_no_story() -> None:
    """A feed's archive (``backlog: all`` on a first poll) alerts item by item: old news
    joins no story of the window, whether its date is the published one or only the
    updated one, and neither does an undated item of the archive (its age is unknown).
    Items within the window do, and so does an undated item of a later poll: it is new."""
    items = (
        item("old", "CSTO summit", age=timedelta(days=3)),
        replace(item("updated", "CSTO forces", age=None), updated=NOW - timedelta(days=3)),
        item("edge", "CSTO drills", age=timedelta(hours=47)),
        item("undated", "CSTO talks", age=None),
    )
    parsed = ParsedFeed(title="t", link=None, items=items)

    def decided(feed: ClaimedFeed) -> ItemsDecision:
        return decide_items(
            feed,
            replace(POLICY, backlog=None),
            RESULT,
            parsed,
            {},
            NOW,
            matcher=MATCHER,
            routing=ROUTING,
            rng=random.Random(1),
            stories=StoryPolicy(window=timedelta(hours=48), steps=()),
        )

    first = decided(replace(FEED, first_poll=True))
    assert {a.item_key for a in first.alerts} == {"old", "updated", "edge", "undated"}
    assert first.stories is not None
    assert [i.key for i in first.stories.items] == ["edge"]
    later = decided(replace(FEED, first_poll=False)).stories
    assert later is not None
    assert [i.key for i in later.items] == ["edge", "undated"]
