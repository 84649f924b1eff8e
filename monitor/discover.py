"""Feed discovery: the feeds a page advertises, or a site serves at the usual paths, each
confirmed by fetching and parsing it as a poll would. The core of ``monitor discover``.

Input: a URL, the fetcher (its guard, limits and deadline) and the parse path of polling
(:meth:`monitor.parse.ParseWorkers.parse`), so that "it is a feed" means what a poll would
find. Output: a :class:`Discovery`: the URL itself confirmed as a feed, or, for an HTML page,
every candidate that turned out to be a feed (its URL, title, type, item count and where it
was found) and every one that did not, with the reason. A URL that cannot be fetched raises
``FetchError``; one that is neither a feed nor an HTML page raises :class:`DiscoveryError`.

Candidates: the page's ``<link rel="alternate">`` of a feed type (RSS Autodiscovery,
rssboard.org; the Atom and JSON Feed equivalents), resolved against ``<base href>`` (itself
resolved against the page's URL) else the page's URL, http(s) only, each once, at most
:data:`MAX_ADVERTISED`; then :data:`COMMON_PATHS` on the page's origin. The page is read by
lxml's HTML parser (linear on malformed markup, where ``html.parser`` can be quadratic; it
fetches nothing and expands no entity a document declares), and only its first
:data:`MAX_PAGE_BYTES`: the ``<head>`` comes first. Candidates are checked
:data:`CHECKS_AT_ONCE` at a time, each within the fetcher's deadline, and none is started
once the discovery's budget is spent (it is then reported unchecked).

Does not: print, read the configuration, store anything, or follow a candidate that is an
HTML page on to the feeds it advertises (one level only).
"""

from __future__ import annotations

import asyncio
import codecs
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from enum import StrEnum

import httpx
import lxml.etree

from monitor.config import MAX_URL
from monitor.errors import FetchError, MonitorError, ParseError
from monitor.fetch import Fetcher
from monitor.fetch.urls import shown_url
from monitor.parse.jsonfeed import looks_like_json
from monitor.types import FetchRequest, FetchResult, ParsedFeed, frozen

Parse = Callable[[FetchResult], Awaitable[ParsedFeed]]

# The types a feed is advertised under. application/json is WordPress's REST API as often as
# a JSON Feed, and text/xml or application/xml anything at all: every candidate is parsed
# before it is called a feed, so a wrong guess costs one request.
FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/feed+json",
        "application/json",
        "text/xml",
        "application/xml",
    }
)
# Where blogs and site generators put their feed: WordPress (/feed), Hugo (/index.xml),
# Jekyll (/feed.xml), Ghost (/rss), many static sites (/atom.xml, /rss.xml, /feed.json).
COMMON_PATHS = ("/feed", "/rss", "/atom.xml", "/index.xml", "/feed.json", "/rss.xml", "/feed.xml")
MAX_ADVERTISED = 50  # feed links of one page that are checked; real pages have a handful
MAX_PAGE_BYTES = 2 * 1024 * 1024  # of a page read for its links
CHECKS_AT_ONCE = 4  # candidates fetched at once (the fetcher's per-host limit applies too)
CHECK_BUDGET = 60.0  # seconds in which candidates may start (each then has its fetch deadline)

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# An HTML page served without a usable Content-Type: what it starts with, after comments.
_HTML_START = re.compile(rb"<(?:!doctype\s+html|html|head)[\s>]", re.I)
# An element's name, after its "<": the root of an XML feed is rss, RDF (RSS 1.0) or feed.
_NAME = re.compile(rb"(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)")
_SPACE = b" \t\r\n\f"
# What a user may type for a site without its scheme: example.org, localhost:8080/blog.
_HOST_LIKE = re.compile(r"[\w-]+(?:\.[\w-]+)*(?::[0-9]{1,5})?(?:/\S*)?", re.ASCII)
_KINDS = {b"rss": "RSS", b"rdf": "RSS 1.0", b"feed": "Atom"}


class Found(StrEnum):
    """Where a feed came from."""

    GIVEN = "given"  # the URL asked about
    ADVERTISED = "advertised"  # a <link rel="alternate"> of the page
    COMMON_PATH = "common path"  # one of COMMON_PATHS on the page's origin


class DiscoveryError(MonitorError):
    """The URL is neither a feed nor a page to look for feeds on; the message says which."""

    def __init__(self, url: str, message: str) -> None:
        self.url = shown_url(url)
        self.message = message
        super().__init__(f"{self.url}: {message}")


@frozen
class Candidate:
    url: str
    found: Found


@frozen
class FoundFeed:
    """A confirmed feed. ``url`` is the one to subscribe to: where a permanent redirect
    leads, else the candidate's. ``title`` and ``warning`` come from the feed (hostile:
    escape before showing)."""

    url: str
    title: str
    kind: str  # RSS, RSS 1.0, Atom, JSON Feed; "feed" when the parser knew but we cannot tell
    items: int
    found: Found
    warning: str | None = None


@frozen
class NotAFeed:
    """A candidate that is not a feed, and why (fetch or parse error, one line)."""

    url: str
    found: Found
    reason: str


@frozen
class Discovery:
    """What a URL led to. ``is_feed``: the URL itself is one (then ``feeds`` holds it alone).
    ``more_advertised``: distinct feed links of the page past :data:`MAX_ADVERTISED`, not
    checked."""

    url: str
    page_url: str
    is_feed: bool
    feeds: tuple[FoundFeed, ...]
    not_feeds: tuple[NotAFeed, ...] = ()
    more_advertised: int = 0


async def discover(
    url: str, *, fetcher: Fetcher, parse: Parse, budget: float = CHECK_BUDGET
) -> Discovery:
    """Confirm ``url`` as a feed, or find the feeds of the page it is. ``budget``: seconds
    in which a page's candidates may start being checked; those still waiting then are
    reported unchecked (fifty links to hosts that never answer would take minutes)."""
    url = url.strip()
    if "://" not in url:
        hint = f" (did you mean https://{url}?)" if _HOST_LIKE.fullmatch(url) else ""
        raise DiscoveryError(url, f"not an http(s) URL{hint}")
    page = await fetcher.fetch(FetchRequest(url=url))
    if not 200 <= page.status < 300:  # 410 is a result to the fetcher
        raise DiscoveryError(url, _status_line(page.status))
    try:
        parsed = await parse(page)
    except ParseError as exc:
        reason = exc.message
    else:
        given = Candidate(url=url, found=Found.GIVEN)
        feed = _found_feed(given, page, parsed)
        return Discovery(url=url, page_url=page.final_url, is_feed=True, feeds=(feed,))
    content_type = _header(page.headers, "content-type")
    if not looks_like_html(page.body, content_type):
        shown = content_type.split(";")[0].strip()[:60] or "none"
        raise DiscoveryError(
            url, f"neither a feed nor an HTML page (Content-Type: {shown}; {reason})"
        )
    advertised, more = advertised_feeds(page.body, url=page.final_url, content_type=content_type)
    candidates = _candidates(advertised, page.final_url, skip={url, page.final_url})
    checked = await _check_all(candidates, fetcher, parse, budget)
    feeds: list[FoundFeed] = []
    seen: set[str] = set()
    for outcome, final_url in checked:
        if isinstance(outcome, FoundFeed) and final_url not in seen and outcome.url not in seen:
            seen |= {final_url, outcome.url}
            feeds.append(outcome)
    return Discovery(
        url=url,
        page_url=page.final_url,
        is_feed=False,
        feeds=tuple(feeds),
        not_feeds=tuple(o for o, _ in checked if isinstance(o, NotAFeed)),
        more_advertised=more,
    )


def looks_like_html(body: bytes, content_type: str) -> bool:
    """An HTML page by its label, or by its first bytes when it has none that says so."""
    if content_type.split(";")[0].strip().lower() in _HTML_TYPES:
        return True
    head = body[:4096]
    at = _past_comments(head, len(b"\xef\xbb\xbf") if head.startswith(b"\xef\xbb\xbf") else 0)
    return at is not None and _HTML_START.match(head, at) is not None


def advertised_feeds(body: bytes, *, url: str, content_type: str = "") -> tuple[list[str], int]:
    """The feed URLs the page at ``url`` advertises, in page order, each once, at most
    :data:`MAX_ADVERTISED`; and how many more distinct ones it advertises."""
    root = _read_html(body[:MAX_PAGE_BYTES], content_type)
    if root is None:
        return [], 0
    base = httpx.URL(url)
    first_base = next((e for e in root.iter("base") if e.get("href")), None)
    if first_base is not None:  # HTML: the first <base> with an href, else the page's URL
        base = _resolve(base, first_base.get("href", "")) or base
    found: list[str] = []
    more: set[str] = set()
    for link in root.iter("link"):
        rels = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").split(";")[0].strip().lower()
        if "alternate" not in rels or kind not in FEED_TYPES:
            continue
        resolved = _resolve(base, link.get("href") or "")
        if resolved is None:
            continue
        target = str(resolved)
        if target in found or target in more:
            continue
        if len(found) < MAX_ADVERTISED:
            found.append(target)
        else:
            more.add(target)
    return found, len(more)


def feed_kind(body: bytes, content_type: str) -> str:
    """RSS, RSS 1.0, Atom or JSON Feed, told as the parser tells them apart: JSON by
    :func:`~monitor.parse.jsonfeed.looks_like_json`, XML by its root element."""
    if looks_like_json(body, content_type):
        return "JSON Feed"
    root = _root_name(body[:65536])
    return _KINDS.get(root.lower(), "feed") if root else "feed"


def _past_comments(data: bytes, at: int) -> int | None:
    """Where the markup of ``data`` starts at ``at``, past white space and comments; None
    when a comment does not end. Each comment is searched past once: linear."""
    while True:
        while at < len(data) and data[at] in _SPACE:
            at += 1
        if not data.startswith(b"<!--", at):
            return at
        end = data.find(b"-->", at + 4)
        if end == -1:
            return None
        at = end + 3


def _root_name(data: bytes) -> bytes | None:
    """The local name of the first element, past the prolog, comments and DOCTYPE."""
    at = data.find(b"<")
    while at != -1:
        if data.startswith(b"<!--", at):
            end = data.find(b"-->", at + 4)
            if end == -1:
                return None
            at = data.find(b"<", end + 3)
            continue
        name = _NAME.match(data, at + 1)
        if name is not None:
            return name.group(1)
        at = data.find(b"<", at + 1)
    return None


def common_paths(page_url: str) -> list[str]:
    """:data:`COMMON_PATHS` on the origin of ``page_url``."""
    origin = httpx.URL(page_url).copy_with(path="/", query=None, fragment=None)
    return [str(origin.join(path)) for path in COMMON_PATHS]


def _read_html(data: bytes, content_type: str) -> lxml.etree._Element | None:
    parser = lxml.etree.HTMLParser(
        encoding=_charset(content_type),
        recover=True,
        no_network=True,
        remove_comments=True,
        remove_pis=True,
        huge_tree=False,
        collect_ids=False,
        default_doctype=False,
    )
    try:
        return lxml.etree.fromstring(data, parser)
    except (lxml.etree.LxmlError, ValueError):  # nothing lxml can call a document
        return None


def _charset(content_type: str) -> str | None:
    """The header's charset when Python knows it (else lxml reads the page's own ``<meta>``)."""
    match = re.search(r"charset\s*=\s*[\"']?([\w.:-]{1,40})", content_type, re.I)
    if match is None:
        return None
    try:
        return codecs.lookup(match[1]).name
    except LookupError:
        return None


def _resolve(base: httpx.URL, href: str) -> httpx.URL | None:
    """``href`` against ``base``: an absolute http(s) URL with a host that fits the
    configuration's limit, without its fragment; None for anything else."""
    href = href.strip(" \t\n\r\f")  # HTML strips ASCII whitespace around a URL
    if not href or len(href) > MAX_URL:
        return None
    try:
        url = base.join(href).copy_with(fragment=None)
        usable = url.scheme in ("http", "https") and bool(url.host)
    except (httpx.InvalidURL, ValueError, UnicodeError):
        return None
    return url if usable and len(str(url)) <= MAX_URL else None


def _candidates(advertised: Iterable[str], page_url: str, *, skip: set[str]) -> list[Candidate]:
    found = [Candidate(url=u, found=Found.ADVERTISED) for u in advertised if u not in skip]
    known = {c.url for c in found} | skip
    return found + [
        Candidate(url=u, found=Found.COMMON_PATH) for u in common_paths(page_url) if u not in known
    ]


async def _check_all(
    candidates: list[Candidate], fetcher: Fetcher, parse: Parse, budget: float
) -> list[tuple[FoundFeed | NotAFeed, str]]:
    gate = asyncio.Semaphore(CHECKS_AT_ONCE)
    loop = asyncio.get_running_loop()
    end = loop.time() + budget

    async def check(candidate: Candidate) -> tuple[FoundFeed | NotAFeed, str]:
        async with gate:
            if loop.time() >= end:
                reason = f"not checked: the {budget:g}s given to checking candidates ran out"
                return NotAFeed(url=candidate.url, found=candidate.found, reason=reason), ""
            return await _check(candidate, fetcher, parse)

    return await asyncio.gather(*(check(c) for c in candidates))


async def _check(
    candidate: Candidate, fetcher: Fetcher, parse: Parse
) -> tuple[FoundFeed | NotAFeed, str]:
    """The candidate's outcome, and the URL it was answered from (to tell duplicates)."""
    try:
        result = await fetcher.fetch(FetchRequest(url=candidate.url))
        if not 200 <= result.status < 300:
            reason = _status_line(result.status)
            return NotAFeed(url=candidate.url, found=candidate.found, reason=reason), candidate.url
        parsed = await parse(result)
    except (FetchError, ParseError) as exc:
        return NotAFeed(url=candidate.url, found=candidate.found, reason=exc.message), candidate.url
    return _found_feed(candidate, result, parsed), result.final_url


def _found_feed(candidate: Candidate, result: FetchResult, parsed: ParsedFeed) -> FoundFeed:
    return FoundFeed(
        url=result.permanent_url or candidate.url,
        title=parsed.title,
        kind=feed_kind(result.body, _header(result.headers, "content-type")),
        items=len(parsed.items),
        found=candidate.found,
        warning=parsed.warning,
    )


def _header(headers: Mapping[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name), "")


def _status_line(status: int) -> str:
    reason = httpx.codes.get_reason_phrase(status)
    return f"HTTP {status} {reason}" if reason else f"HTTP {status}"
