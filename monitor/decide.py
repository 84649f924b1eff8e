"""The decision step of a poll: what to store, what alerts, and when to poll next.

Input: the claimed feed as stored, the feed's policy (from the settings), the fetch result,
the parsed feed, the stored content hashes of its items (``None`` for an item retention
pruned), the matcher and ``now``. Output:
the items that are new and those edited in place, the alerts of the new ones (under the
backlog rule, with their routes), the new ones' story features (placed in stories by the
store, in the write's transaction), and the :class:`~monitor.types.PollUpdate` to record,
including the next poll time. Also the poll updates of the outcomes without items: not
modified, gone, failed.

Pure, like reader's update decider: no network, no database, no clock of its own (``now``
and the random source are arguments), so every rule here is tested without I/O. The
pipeline does the I/O around it.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from alerts.digest import DigestSchedule
from monitor.cadence import next_poll_after_failure, next_poll_after_success
from monitor.match import Matcher
from monitor.stories.features import dump_features, story_features
from monitor.stories.plan import StoryItem, StoryPlan, StoryPolicy
from monitor.types import (
    ClaimedFeed,
    FeedState,
    FetchResult,
    Item,
    MatchContext,
    NewAlert,
    ParsedFeed,
    PollUpdate,
    Route,
    feed_display_name,
    frozen,
)

ALERT_NAMESPACE = uuid.UUID("6f1f8a4e-3c0b-4b8e-9d7a-2a7f5d9f1c11")
GONE_MESSAGE = "HTTP 410 Gone: the server says this feed was removed; polling stopped"


@frozen
class FeedPolicy:
    """What the settings say about polling one feed."""

    interval: float
    backlog: float | None  # seconds back a first poll alerts on; None: every item
    tags: frozenset[str] = frozenset()
    max_interval: float  # server hints never push the interval past this
    max_backoff: float  # failures never push it past this; a permanent failure goes there
    jitter: float


@frozen
class Routing:
    """Where each watchlist's alerts go: its routes, and each channel's own digest."""

    # watchlist -> (channel, the route's digest, whether it keeps every item of a story)
    routes: Mapping[str, Sequence[tuple[str, DigestSchedule | None, bool]]]
    digests: Mapping[str, DigestSchedule | None]  # channel -> its digest

    def for_watchlist(self, watchlist: str, now: datetime) -> tuple[Route, ...]:
        """Each channel the watchlist notifies, now or at its digest's next send time."""
        out = []
        for channel, digest, separate in self.routes.get(watchlist, ()):
            digest = digest or self.digests.get(channel)
            at = digest.next_send(now) if digest else None
            out.append(Route(channel=channel, digest_at=at, separate=separate))
        return tuple(out)

    def update_routes(self, now: datetime) -> dict[str, tuple[Route, ...]]:
        """Per watchlist, the routes a story's spread update takes: those collapsing it."""
        return {
            w: tuple(r for r in self.for_watchlist(w, now) if not r.separate) for w in self.routes
        }


@frozen
class ItemsDecision:
    """What a full response changes: items to insert and to update, alerts, the poll.
    ``unmatched`` counts the new items whose matching failed: stored without alerts."""

    new: tuple[Item, ...]
    changed: tuple[Item, ...]
    alerts: tuple[NewAlert, ...]
    poll: PollUpdate
    unmatched: int = 0
    stories: StoryPlan | None = None


def alert_id(feed_url: str, item_key: str, watchlist: str) -> str:
    """Stable across retries, restarts and even a rebuilt database: receivers can use it
    as an idempotency key."""
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{feed_url}\x1f{item_key}\x1f{watchlist}"))


def decide_items(
    feed: ClaimedFeed,
    policy: FeedPolicy,
    result: FetchResult,
    parsed: ParsedFeed,
    existing: Mapping[str, str | None],
    now: datetime,
    *,
    matcher: Matcher,
    routing: Routing,
    rng: random.Random,
    stories: StoryPolicy | None = None,
) -> ItemsDecision:
    """A full response: new items by identity, edited ones by content hash, the alerts
    of the new ones, and the poll's outcome.

    ``existing`` maps the keys already seen to their stored content hash, or to ``None``
    for an item retention pruned: seen, and taken as unchanged (its content is gone, so an
    edit cannot be told), so a feed re-serving an old item neither stores nor alerts it."""
    new = tuple(i for i in parsed.items if i.key not in existing)
    changed = tuple(i for i in parsed.items if existing.get(i.key) not in (None, i.content_hash))
    # The feed's name as it will be stored after this poll (its title may be new).
    name = feed_display_name(feed.name, parsed.title or feed.title, feed.url)
    context = MatchContext(feed_name=name, feed_url=feed.current_url, feed_tags=policy.tags)
    alerts: list[NewAlert] = []
    unmatched = 0
    eligible = alerting(new, first_poll=feed.first_poll, backlog=policy.backlog, now=now)
    for item in eligible:
        try:
            found = matcher.match_item(item, context)
        except Exception:  # one hostile text must not cost the feed's other items
            unmatched += 1
            continue
        alerts += (
            NewAlert(
                id=alert_id(feed.url, item.key, match.watchlist),
                item_key=item.key,
                watchlist=match.watchlist,
                matches=match.matches,
                routes=routing.for_watchlist(match.watchlist, now),
            )
            for match in found
        )
    failed = f"{unmatched} new item(s) could not be matched; stored without alerts"
    poll = PollUpdate(
        polled_at=now,
        state=FeedState.OK,
        status=result.status,
        warning=join_warnings(result.warning, parsed.warning, failed if unmatched else None),
        etag=result.etag,
        last_modified=result.last_modified,
        current_url=result.permanent_url,
        title=parsed.title or None,
        ttl_seconds=parsed.ttl_seconds,
        next_poll_at=_after_success(now, policy, rng, result.max_age_seconds, parsed.ttl_seconds),
    )
    return ItemsDecision(
        new=new,
        changed=changed,
        alerts=tuple(alerts),
        poll=poll,
        unmatched=unmatched,
        stories=plan_stories(stories, feed, eligible, routing, now) if stories else None,
    )


def plan_stories(
    policy: StoryPolicy,
    feed: ClaimedFeed,
    items: Sequence[Item],
    routing: Routing,
    now: datetime,
) -> StoryPlan | None:
    """The new items that may alert, with their story features: all of them, not only
    those matched, so a story's size counts every feed that carried it. An item whose
    features fail stays out of stories (and alerts on its own), like one whose matching
    fails stays without alerts: it never costs the feed's other items.

    An item dated before the window is in no story (stories are of the window): a feed's
    archive, taken on its first poll with ``backlog: all``, alerts item by item as it did,
    rather than paying a story's placement per item (a tenth of a cold pass's speed) to
    join today's stories with old news. Its date is the one the backlog reads (an Atom
    entry often has only ``<updated>``), and an undated item of a first poll is of the
    archive too, as it is for the backlog: of an unknown age, not news of today."""
    planned = []
    oldest = now - policy.window
    for item in items:
        date = item.date
        if feed.first_poll if date is None else date < oldest:
            continue
        try:
            text = item.summary or item.content
            features = story_features(title=item.title, summary=text, link=item.link)
            dumped = dump_features(features)
            planned.append(
                StoryItem(key=item.key, title=item.title, features=features, dumped=dumped)
            )
        except Exception:
            continue
    if not planned:
        return None
    return StoryPlan(
        feed_url=feed.url,
        policy=policy,
        items=tuple(planned),
        update_routes=routing.update_routes(now),
    )


def join_warnings(*warnings: str | None) -> str | None:
    """One warning text for the feed's row from those of the stages."""
    return "; ".join(w for w in warnings if w) or None


def alerting(
    items: Sequence[Item], *, first_poll: bool, backlog: float | None, now: datetime
) -> list[Item]:
    """The new items that may alert. On a feed's first poll only items dated within the
    backlog window (an undated item counts as old): subscribing to a feed must not send its
    whole archive. Later, every new item."""
    if not first_poll or backlog is None:
        return list(items)
    cutoff = now - timedelta(seconds=backlog)
    return [i for i in items if i.date is not None and i.date >= cutoff]


def decide_unchanged(
    feed: ClaimedFeed, policy: FeedPolicy, result: FetchResult, now: datetime, rng: random.Random
) -> PollUpdate:
    """A 304: the validators the server sent (else the stored ones) and the next poll."""
    return PollUpdate(
        polled_at=now,
        state=FeedState.OK,
        status=304,
        etag=result.etag or feed.etag,
        last_modified=result.last_modified or feed.last_modified,
        current_url=result.permanent_url,
        warning=result.warning,
        # A 304 carries no body: the feed's own <ttl> from its last full response holds.
        next_poll_at=_after_success(now, policy, rng, result.max_age_seconds, feed.ttl_seconds),
    )


def decide_gone(feed: ClaimedFeed, result: FetchResult, now: datetime) -> PollUpdate:
    """A 410: the feed is gone and is not claimed again."""
    return PollUpdate(
        polled_at=now,
        state=FeedState.GONE,
        status=result.status,
        error=GONE_MESSAGE,
        next_poll_at=now,
        error_count=feed.error_count + 1,
    )


def decide_failure(
    feed: ClaimedFeed,
    policy: FeedPolicy,
    now: datetime,
    rng: random.Random,
    *,
    status: int | None,
    message: str,
    retry_after: datetime | None = None,
    permanent: bool = False,
) -> PollUpdate:
    """A failed poll: back off (at once to ``max_backoff`` when trying again soon cannot
    help), never before the server's Retry-After, which is itself capped at ``max_backoff``:
    a server must not park a feed for years."""
    failures = feed.error_count + 1
    if retry_after is not None:
        retry_after = min(retry_after, now + timedelta(seconds=policy.max_backoff))
    return PollUpdate(
        polled_at=now,
        state=FeedState.ERROR,
        status=status,
        error=message,
        error_count=failures,
        retry_after=retry_after,
        next_poll_at=next_poll_after_failure(
            now,
            policy.interval,
            failures=failures,
            max_backoff=policy.max_backoff,
            retry_after=retry_after,
            jitter=policy.jitter,
            rng=rng,
            permanent=permanent,
        ),
    )


def _after_success(
    now: datetime, policy: FeedPolicy, rng: random.Random, *hints: float | None
) -> datetime:
    return next_poll_after_success(
        now,
        policy.interval,
        hints=hints,
        ceiling=policy.max_interval,
        jitter=policy.jitter,
        rng=rng,
    )
