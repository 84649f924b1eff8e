"""Stories: whether two items, from any feeds, report the same news, so that one alert covers
them all.

Input: an item's title, summary and link. Output: its :class:`StoryFeatures` (canonical link,
normalised title, tokens, index keys) and, for two of them, :func:`same_story` (and the
:func:`story_score` it thresholds). :func:`dump_features` and :func:`load_features` turn
features into bounded text for a database column and back. Pure: no network, no database,
no clock. It does not store features, look candidates up or send alerts.

How the store uses it (:mod:`monitor.store.stories`): for each new item, in arrival order,
its features are computed; the members of the window sharing the most keys with it (a few
dozen) are its candidates; the item joins the story of the candidate with the best score
among those that pass :func:`same_story`, and every other story with a candidate that
passes merges into that one (the item bridges them); else it starts a story. A story is
the single linkage of its members, and takes members for one window after it began.
:mod:`monitor.stories.plan` holds the values a poll's write needs and the pure rules of
roles, ids and spread steps.
"""

from monitor.stories.features import (
    StoryFeatures,
    dump_features,
    load_features,
    story_features,
)
from monitor.stories.links import canonical_link
from monitor.stories.similar import THRESHOLD, same_story, story_score

__all__ = [
    "THRESHOLD",
    "StoryFeatures",
    "canonical_link",
    "dump_features",
    "load_features",
    "same_story",
    "story_features",
    "story_score",
]
