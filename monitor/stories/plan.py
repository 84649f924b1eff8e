"""What a poll's transaction needs to place its new items in stories, and the pure rules
it applies there: a story's stable id, which alert of a story a channel gets, and when a
story's spread is announced.

Input: the new items' features (computed with matching, outside the transaction), the
window and update steps from the settings, the routes a spread update takes. It does not
touch the database (:mod:`monitor.store.stories` does) and does not decide whether two
items are the same story (:mod:`monitor.stories.similar` does).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from enum import StrEnum

from monitor.stories.features import StoryFeatures
from monitor.types import Route, frozen

STORY_NAMESPACE = uuid.UUID("3a0d5c8e-6b1f-4f7a-8e2d-9c4b1a7e5f30")
UPDATE_NAMESPACE = uuid.UUID("b7e2c41d-0f58-4a9b-a3d6-5e8f1c2b7d94")


class StoryRole(StrEnum):
    """An alert's part in its story, for one watchlist."""

    LEAD = "lead"  # the story's first alert: every route gets it
    MEMBER = "member"  # a later item: stored and counted; only "separate" routes get it
    UPDATE = "update"  # the story reached a step of ``stories.updates`` sources


@frozen
class StoryPolicy:
    """``stories:`` from the settings, as the decision step needs it."""

    window: timedelta
    steps: tuple[int, ...]


@frozen
class StoryItem:
    """A new item to place: its features, and their stored form (made outside the write
    transaction, which holds the stories lock)."""

    key: str
    title: str  # a new story is named after its first item
    features: StoryFeatures
    dumped: str


@frozen
class StoryPlan:
    """The stories part of one poll's write. ``items`` are the new items that may alert,
    in feed order, with their features; ``update_routes`` are, per watchlist, the routes
    a spread update takes (those that collapse stories: a "separate" route already gets
    every item)."""

    feed_url: str  # the configured URL: with the item's key, it names a new story
    policy: StoryPolicy
    items: tuple[StoryItem, ...]
    update_routes: Mapping[str, tuple[Route, ...]]


def story_id(feed_url: str, item_key: str) -> str:
    """Named after its first item: the same after a restart or on a rebuilt database."""
    return str(uuid.uuid5(STORY_NAMESPACE, f"{feed_url}\x1f{item_key}"))


def update_id(lead_alert_id: str, step: int) -> str:
    """One update per (first alert, step): a second write of it is a no-op."""
    return str(uuid.uuid5(UPDATE_NAMESPACE, f"{lead_alert_id}\x1f{step}"))


def step_reached(steps: Sequence[int], sources: int, announced: int) -> int | None:
    """The highest step the story's sources reached and no update announced yet: a story
    that jumps past two steps at once announces once, at its size now."""
    reached = [s for s in steps if announced < s <= sources]
    return max(reached) if reached else None


def routes_for(role: StoryRole | None, routes: Sequence[Route]) -> tuple[Route, ...]:
    """The routes an alert is delivered on: a member only on routes keeping every item."""
    if role == StoryRole.MEMBER:
        return tuple(r for r in routes if r.separate)
    return tuple(routes)
