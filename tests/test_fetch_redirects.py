"""Where a feed's configured headers go when it redirects, and when the feed moves
(monitor/fetch/redirects.py): two servers on loopback are two origins (ports differ), and
what each one received is the evidence."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from feedserver import FeedServer, Response

from monitor.fetch import Fetcher, FetchSettings
from monitor.fetch.redirects import RedirectChain
from monitor.fetch.urls import origin_of
from monitor.types import FetchRequest

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
HEADERS = {"Authorization": "Bearer s3cret", "X-Api-Key": "k3y", "X-Tenant": "acme"}
NOT_FOR_GOOD = "not followed for good: update the feed URL in the configuration"


@pytest.fixture
def elsewhere() -> Iterator[FeedServer]:
    """Another origin: the same host on another port."""
    with FeedServer() as server:
        yield server


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(FetchSettings()) as fetcher:
        yield fetcher


def configured(server: FeedServer, index: int = 0) -> set[str]:
    """The configured header names that request ``index`` to ``server`` carried."""
    received = server.requests[index].headers
    return {name for name in HEADERS if name.lower() in received}


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_no_configured_header_follows_a_redirect_to_another_origin(
    feed_server: FeedServer, elsewhere: FeedServer, fetcher: Fetcher, status: int
) -> None:
    elsewhere.set_feed("/feed", RSS)
    target = elsewhere.url("/feed")
    feed_server.set_handler("/feed", lambda r: Response.redirect(target, status))
    result = await fetcher.fetch(FetchRequest(url=feed_server.url("/feed"), headers=HEADERS))
    assert result.body == RSS  # followed for this poll
    assert configured(feed_server) == set(HEADERS)
    assert configured(elsewhere) == set()


async def test_a_permanent_redirect_to_another_origin_does_not_move_the_feed(
    feed_server: FeedServer, elsewhere: FeedServer, fetcher: Fetcher
) -> None:
    elsewhere.set_feed("/feed", RSS)
    target = elsewhere.url("/feed")
    feed_server.set_handler("/feed", lambda r: Response.redirect(target, 301))
    result = await fetcher.fetch(FetchRequest(url=feed_server.url("/feed"), headers=HEADERS))
    assert result.final_url == target and result.permanent_url is None
    assert result.warning == f"permanent redirect to another origin ({target}) {NOT_FOR_GOOD}"


async def test_a_feed_already_elsewhere_gets_no_configured_headers(
    feed_server: FeedServer, elsewhere: FeedServer, fetcher: Fetcher
) -> None:
    # The URL in use left the configured origin (a move recorded before this rule existed).
    elsewhere.set_feed("/feed", RSS)
    request = FetchRequest(
        url=elsewhere.url("/feed"), configured_url=feed_server.url("/feed"), headers=HEADERS
    )
    assert (await fetcher.fetch(request)).body == RSS
    assert configured(elsewhere) == set()


async def test_headers_are_not_sent_again_once_the_chain_has_left_the_origin(
    feed_server: FeedServer, elsewhere: FeedServer, fetcher: Fetcher
) -> None:
    # The other origin sends us back to a URL of its choosing on the feed's own origin.
    feed_server.set_handler("/feed", lambda r: Response.redirect(elsewhere.url("/hop"), 301))
    elsewhere.set_handler("/hop", lambda r: Response.redirect(feed_server.url("/chosen"), 301))
    feed_server.set_feed("/chosen", RSS)
    result = await fetcher.fetch(FetchRequest(url=feed_server.url("/feed"), headers=HEADERS))
    assert [r.path for r in feed_server.requests] == ["/feed", "/chosen"]
    assert configured(feed_server, 0) == set(HEADERS)
    assert configured(elsewhere) == set() and configured(feed_server, 1) == set()
    assert result.permanent_url is None
    assert result.warning == (
        f"permanent redirect to another origin ({elsewhere.url('/hop')}) {NOT_FOR_GOOD}"
    )


async def test_a_permanent_redirect_within_the_origin_moves_the_feed_with_its_headers(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed_server.set_handler("/old", lambda r: Response.redirect("/new", 308))
    feed_server.set_feed("/new", RSS)
    request = FetchRequest(
        url=feed_server.url("/old"), configured_url=feed_server.url("/first"), headers=HEADERS
    )
    result = await fetcher.fetch(request)
    assert configured(feed_server, 0) == configured(feed_server, 1) == set(HEADERS)
    assert (result.permanent_url, result.warning) == (feed_server.url("/new"), None)


async def test_a_temporary_redirect_elsewhere_is_no_warning(
    feed_server: FeedServer, elsewhere: FeedServer, fetcher: Fetcher
) -> None:
    elsewhere.set_feed("/feed", RSS)
    feed_server.set_handler("/feed", lambda r: Response.redirect(elsewhere.url("/feed"), 302))
    result = await fetcher.fetch(FetchRequest(url=feed_server.url("/feed")))
    assert (result.permanent_url, result.warning) == (None, None)


def chain(configured: str, start: str) -> RedirectChain:
    home = origin_of(httpx.URL(configured))
    return RedirectChain(start, httpx.URL(start), home, limit=5)


def test_a_move_from_http_to_https_on_the_same_host_keeps_the_headers_and_moves() -> None:
    # No https server on the http port of loopback here: the policy on its own.
    hops = chain("http://feeds.example/feed", "http://feeds.example/feed")
    hops.follow(301, httpx.URL("https://feeds.example/feed"))
    assert hops.credentials
    assert hops.outcome() == ("https://feeds.example/feed", None)


@pytest.mark.parametrize(
    ("configured", "start", "target"),
    [
        # Back to http after https, even to the configured origin itself.
        ("http://feeds.example/feed", "https://feeds.example/feed", "http://feeds.example/f"),
        ("https://feeds.example/feed", "https://feeds.example/feed", "http://feeds.example/f"),
    ],
)
def test_headers_never_go_over_http_after_https(configured: str, start: str, target: str) -> None:
    hops = chain(configured, start)
    assert hops.credentials
    hops.follow(301, httpx.URL(target))
    assert not hops.credentials
    assert hops.outcome() == (None, f"permanent redirect to plain http ({target}) {NOT_FOR_GOOD}")


@pytest.mark.parametrize(
    "target",
    [
        "https://feeds.example:8443/feed",  # another port than the http one
        "https://www.feeds.example/feed",  # another host, even a subdomain
        "http://feeds.example:8080/feed",
    ],
)
def test_other_ports_and_hosts_are_other_origins(target: str) -> None:
    hops = chain("http://feeds.example/feed", "http://feeds.example/feed")
    hops.follow(308, httpx.URL(target))
    assert not hops.credentials
    assert hops.outcome()[0] is None


async def test_a_url_s_credentials_go_to_its_server_as_basic_auth_and_no_further(
    feed_server: FeedServer, elsewhere: FeedServer, fetcher: Fetcher
) -> None:
    """``http://user:pw@host/feed``: HTTP Basic to that server (as httpx's client sent
    them before requests went to its transport directly), not to where it redirects."""
    elsewhere.set_feed("/feed", RSS)
    target = elsewhere.url("/feed")
    feed_server.set_handler("/feed", lambda r: Response.redirect(target, 302))
    url = feed_server.url("/feed").replace("//", "//us%C3%A9r:pa%3A55@")
    result = await fetcher.fetch(FetchRequest(url=url))
    assert result.body == RSS
    expected = "Basic " + base64.b64encode("usér:pa:55".encode()).decode()
    assert feed_server.requests[0].headers["authorization"] == expected
    assert "authorization" not in elsewhere.requests[0].headers
