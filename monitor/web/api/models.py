"""Response pieces more than one part of the API returns: a match and its snippet, a feed
as an alert or an item names it, a stored item.

Pydantic models, so that ``/api/openapi.json`` describes them. Times are ISO-8601 UTC with
``Z``. Feed text goes out as JSON strings (JSON escapes control characters); snippets are
plain text with the matched spans as ``highlights`` offsets, as in the webhook payload.
URLs go out without the credentials they may carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from alerts.render import plain_snippet
from httpfields import redact_url
from monitor.store import StoredItem
from monitor.types import MatchDetail, WatchlistMatch


class MatchOut(BaseModel):
    term: str = Field(description="The term as written in the query.")
    field: str = Field(description="Where it occurs: title, summary, content, ...")
    snippet: str = Field(description="Plain text around the first occurrence.")
    highlights: list[tuple[int, int]] = Field(
        description="[start, end) offsets of the matched text in `snippet`, in code points."
    )

    @classmethod
    def of(cls, detail: MatchDetail) -> MatchOut:
        text, spans = plain_snippet(detail.snippet)
        return cls(term=detail.term, field=detail.field, snippet=text, highlights=spans)


class WatchlistMatchOut(BaseModel):
    watchlist: str
    matches: list[MatchOut]

    @classmethod
    def all_of(cls, found: Sequence[WatchlistMatch]) -> list[WatchlistMatchOut]:
        return [
            cls(watchlist=f.watchlist, matches=[MatchOut.of(m) for m in f.matches]) for f in found
        ]


class FeedRef(BaseModel):
    """A feed as an alert or an item names it."""

    id: int | None = None
    name: str
    url: str


class ItemOut(BaseModel):
    """A stored item (its content, often long, is left out; its summary is not)."""

    id: int | None = None
    title: str
    link: str | None
    summary: str
    author: str
    categories: list[str]
    guid: str | None
    published: datetime | None
    updated: datetime | None
    first_seen_at: datetime
    feed: FeedRef

    @classmethod
    def of(
        cls, stored: StoredItem, *, id: int | None = None, feed_id: int | None = None
    ) -> ItemOut:
        item = stored.item
        return cls(
            id=id,
            title=item.title,
            link=item.link,
            summary=item.summary,
            author=item.author,
            categories=list(item.categories),
            guid=item.guid,
            published=item.published,
            updated=item.updated,
            first_seen_at=stored.first_seen_at,
            feed=FeedRef(id=feed_id, name=stored.feed_name, url=redact_url(stored.feed_url)),
        )
