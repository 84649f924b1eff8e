"""Full text for teaser feeds: the article pages of a poll's new items, within one bound.

Many news feeds carry a one-line teaser, and the watched word is often only in the article.
For a feed with ``fulltext: true`` (or ``auto``), the pipeline hands the new items that may
alert to :func:`fetch_articles`, which fetches their pages and extracts their main text;
:func:`with_articles` puts that text in the items' ``content``, where it is matched (snippets
then come from the article) and stored.

The rules:

- ``auto`` is decided on each poll from the items the feed serves: on when the median of
  their own text (content, else summary; plain text, markup already stripped) is shorter
  than ``TEASER_CHARS`` characters. A feed that starts sending full text turns it off.
- An item gets its page when its own content is shorter than ``TEASER_CHARS`` and its link
  is http(s); at most ``MAX_ARTICLES`` per poll, in feed order (the rest are ``skipped``:
  matched on what the feed gave). Known items are never fetched: only new ones get here.
- Pages are fetched concurrently through the feed fetcher (the private-network guard on
  every hop, per-host and global limits, the body cap, the deadline; a link to another host
  is allowed, and guarded the same way), without conditional GET and without the feed's
  configured headers (they belong to the feed's origin). The main text is extracted in the
  parse workers (:meth:`~monitor.parse.ParseWorkers.extract`).
- All pages of a poll share one bound, ``wait`` seconds. What is not there by then is
  cancelled (``late``): its item is matched on the feed's text at once, so a slow site never
  delays an alert past the bound and never loses it. A late page is dropped, not stored and
  not matched later: a known item is never fetched again, so it can never raise a second
  alert. A failed page (an HTTP error, the guard, not HTML, no main text, the extractor
  over its budget) is the same: the item keeps the feed's text.
- The content matched and stored is the feed's own content, if any, then the article's: the
  feed's words are never lost. The content hash stays the one the parser computed from the
  feed, so a later poll still tells an edit of the feed's item from the same item.

Input: the feed's items, the fetcher and the parse workers. Output: the items with their
articles and an :class:`ArticleReport` (the poll's log line, the metrics). Does not decide
which items are new, match, or store anything (the pipeline and ``decide`` do).
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Literal
from urllib.parse import urlsplit

from httpfields import redact_url
from monitor.errors import MonitorError
from monitor.fetch import Fetcher
from monitor.parse import ParseWorkers
from monitor.types import FetchRequest, Item, ParsedFeed, frozen

log = logging.getLogger("monitor.fulltext")

TEASER_CHARS = 200  # shorter own text is a teaser (and, over a feed, what ``auto`` looks for)
MAX_ARTICLES = 20  # pages fetched for one poll at most: a feed's first poll, a burst
FulltextMode = bool | Literal["auto"]


@frozen
class ArticleReport:
    """One poll's article pages: wanted (teasers with a link), fetched (text found and
    used), failed, late (not there within the bound), skipped (over ``MAX_ARTICLES``),
    and each extraction's seconds."""

    wanted: int = 0
    fetched: int = 0
    failed: int = 0
    late: int = 0
    skipped: int = 0
    extract_seconds: tuple[float, ...] = ()

    def log_fields(self) -> str:
        return (
            f"articles={self.wanted} fetched={self.fetched} failed={self.failed} "
            f"late={self.late} skipped={self.skipped}"
        )


def wants_fulltext(mode: FulltextMode, items: Sequence[Item]) -> bool:
    """Whether this poll fetches article pages: ``mode`` itself, or for ``auto`` whether
    the feed's items are teasers (the median of their own text is short)."""
    if mode != "auto":
        return mode
    if not items:
        return False
    return statistics.median(len(i.content or i.summary) for i in items) < TEASER_CHARS


def is_teaser(item: Item) -> bool:
    """An item whose page is worth fetching: little content of its own, and a web link."""
    if len(item.content) >= TEASER_CHARS or not item.link:
        return False
    return urlsplit(item.link).scheme.lower() in ("http", "https")


async def fetch_articles(
    items: Sequence[Item],
    *,
    fetcher: Fetcher,
    parser: ParseWorkers,
    wait: float,
    limit: int = MAX_ARTICLES,
) -> tuple[dict[str, str], ArticleReport]:
    """The article text of each teaser among ``items`` that arrived within ``wait``
    seconds, by item key, and the counts."""
    teasers = [i for i in items if is_teaser(i)]
    chosen = teasers[:limit]
    if not chosen:
        return {}, ArticleReport(skipped=len(teasers))
    tasks = {asyncio.create_task(_article(i, fetcher, parser)): i for i in chosen}
    try:
        done, pending = await asyncio.wait(tasks, timeout=wait)
    finally:
        for task in tasks:
            task.cancel()
        # Cancelled work ends before the poll goes on (a parse worker mid-page is killed).
        await asyncio.gather(*tasks, return_exceptions=True)
    texts: dict[str, str] = {}
    seconds: list[float] = []
    for task in done:
        item = tasks[task]
        text, spent = task.result()
        if spent is not None:
            seconds.append(spent)
        if text:
            texts[item.key] = text
    for task in pending:
        log.debug("article %s late (over %gs)", _shown(tasks[task]), wait)
    report = ArticleReport(
        wanted=len(teasers),
        fetched=len(texts),
        failed=len(done) - len(texts),
        late=len(pending),
        skipped=len(teasers) - len(chosen),
        extract_seconds=tuple(seconds),
    )
    return texts, report


def with_articles(parsed: ParsedFeed, texts: Mapping[str, str]) -> ParsedFeed:
    """The feed with each article's text after its item's own content."""
    if not texts:
        return parsed
    items = tuple(
        replace(i, content="\n\n".join(filter(None, (i.content, texts[i.key]))))
        if i.key in texts
        else i
        for i in parsed.items
    )
    return replace(parsed, items=items)


async def _article(item: Item, fetcher: Fetcher, parser: ParseWorkers) -> tuple[str, float | None]:
    """The page's main text ("" when there is none) and the seconds its extraction took
    (None when it was not extracted). Never raises but for cancellation: one page's
    failure, whatever it is, is that page's only."""
    try:
        result = await fetcher.fetch(FetchRequest(url=item.link or ""))
        if result.status != 200 or not result.body:  # 410 and 2xx without a page
            log.debug("article %s: HTTP %d, no page", _shown(item), result.status)
            return "", None
        started = time.monotonic()
        article = await parser.extract(result)
        spent = time.monotonic() - started
    except MonitorError as exc:  # FetchError, ParseError (over budget, worker crashed)
        log.debug("article %s failed: %s", _shown(item), exc)
        return "", None
    except Exception as exc:  # a bug of ours: logged, and the item keeps the feed's text
        log.error("article %s: internal error (%s)", _shown(item), type(exc).__name__)
        return "", None
    if article.error:
        log.debug("article %s: %s", _shown(item), article.error)
    return article.text, spent


def _shown(item: Item) -> str:
    return redact_url(item.link or item.key)[:200]
