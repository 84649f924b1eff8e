"""What a hostile or broken server controls is bounded, and fails as a ``FetchError``:
stacked codings, header blocks, Location lengths, validators, the hosts it sends us to.
Against the loopback feed server (tests/feedserver.py)."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import pytest
from feedserver import FeedServer, Response, sequence

from monitor.errors import FetchError
from monitor.fetch import Fetcher, FetchSettings, decode
from monitor.fetch.decode import BodyDecoder
from monitor.types import FetchRequest

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(FetchSettings()) as fetcher:
        yield fetcher


async def fetch_error(fetcher: Fetcher, url: str) -> FetchError:
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch(FetchRequest(url=url))
    return caught.value


@pytest.mark.parametrize(
    ("coding", "count"),
    [(", ".join(["identity"] * 1200), 1200), (", ".join(["gzip"] * 5), 5)],
)
async def test_stacked_content_codings_are_refused(
    feed_server: FeedServer, fetcher: Fetcher, coding: str, count: int
) -> None:
    feed_server.set_response("/feed", 200, RSS, headers={"Content-Encoding": coding})
    error = await fetch_error(fetcher, feed_server.url("/feed"))
    assert error.message == f"too many Content-Encoding codings ({count}, at most 4)"
    assert error.retryable


async def test_up_to_four_codings_are_decoded(feed_server: FeedServer, fetcher: Fetcher) -> None:
    body = gzip.compress(gzip.compress(gzip.compress(RSS)))
    headers = {"Content-Encoding": "gzip, identity, gzip, gzip"}
    feed_server.set_response("/feed", 200, body, headers=headers)
    result = await fetcher.fetch(FetchRequest(url=feed_server.url("/feed")))
    assert result.body == RSS


def test_decoding_does_not_recurse_per_coding(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the bound, a thousand layers: the decoder's depth is its own stack's.
    monkeypatch.setattr(decode, "MAX_CODINGS", 5000)
    decoder = BodyDecoder("http://feeds.example/", ", ".join(["identity"] * 3000))
    assert b"".join(decoder.feed(RSS)) == RSS


async def test_a_header_block_over_the_limit_fails_as_a_broken_response(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    headers = {f"X-Filler-{n}": "v" * 60 for n in range(3000)}  # ~200 KB of fields
    feed_server.set_response("/feed", 200, RSS, headers=headers)
    error = await fetch_error(fetcher, feed_server.url("/feed"))
    assert error.message.startswith("protocol error: ") and error.retryable
    assert len(error.message) < 200


@pytest.mark.parametrize(
    ("length", "message"),
    [
        (20_000, "URL longer than 2048 characters: 'http://127.0.0.1:"),
        (90_000, "invalid redirect Location '/aaaa"),
    ],
)
async def test_an_enormous_location_is_refused_and_not_echoed(
    feed_server: FeedServer, fetcher: Fetcher, length: int, message: str
) -> None:
    feed_server.set_response("/feed", 301, headers={"Location": "/" + "a" * length})
    error = await fetch_error(fetcher, feed_server.url("/feed"))
    assert error.message.startswith(message)
    assert len(error.message) < 300
    assert [r.path for r in feed_server.requests] == ["/feed"]


async def test_a_validator_is_sent_back_as_the_bytes_received(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    # The server's ETag has a byte above ASCII (legal obs-text): the next poll must send
    # those bytes back, not fail to encode them.
    feed_server.set_feed("/feed", RSS, etag='"caf\xe9"')
    first = await fetcher.fetch(FetchRequest(url=feed_server.url("/feed")))
    url = feed_server.url("/feed")
    second = await fetcher.fetch(FetchRequest(url=url, etag=first.etag))
    assert first.status == 200 and second.status == 304
    assert feed_server.requests[1].headers["if-none-match"] == '"caf\xe9"'


@pytest.mark.parametrize("etag", ['"v1"\r\nX-Injected: 1', "", '"\x00"'])
async def test_a_validator_that_cannot_be_sent_is_left_out(
    feed_server: FeedServer, fetcher: Fetcher, etag: str
) -> None:
    feed_server.set_feed("/feed", RSS, etag='"v1"')
    result = await fetcher.fetch(FetchRequest(url=feed_server.url("/feed"), etag=etag))
    assert result.status == 200
    assert "if-none-match" not in feed_server.requests[0].headers
    assert "x-injected" not in feed_server.requests[0].headers


async def test_hosts_are_forgotten_once_their_requests_end(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    # Each poll sends us to a new host name: the per-host limits must not pile up.
    hosts = [f"127.0.0.{n}" for n in range(2, 6)]
    port = feed_server.base_url.rsplit(":", 1)[1]
    feed_server.set_handler(
        "/feed",
        sequence(*(Response.redirect(f"http://{host}:{port}/gone", 302) for host in hosts)),
    )
    for _ in hosts:
        with pytest.raises(FetchError):  # nothing listens there
            await fetcher.fetch(FetchRequest(url=feed_server.url("/feed")))
    assert len(fetcher._slots) == 0


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("http://xn--/feed", "invalid URL 'http://xn--/feed': host is not a valid domain name"),
        ("http://" + "a" * 300 + ".example/feed", "invalid URL 'http://aaa"),
    ],
)
async def test_a_redirect_to_an_impossible_host_is_a_fetch_error(
    feed_server: FeedServer, fetcher: Fetcher, location: str, message: str
) -> None:
    feed_server.set_response("/feed", 302, headers={"Location": location})
    error = await fetch_error(fetcher, feed_server.url("/feed"))
    assert error.message.startswith(message) and len(error.message) < 300
    assert not error.retryable


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://xn--/feed", "host is not a valid domain name"),
        ("http://" + "a" * 300 + ".example/feed", "host longer than 253 characters"),
    ],
)
async def test_a_feed_url_with_an_impossible_host_is_a_fetch_error(
    fetcher: Fetcher, url: str, problem: str
) -> None:
    error = await fetch_error(fetcher, url)
    assert error.message.startswith("invalid URL 'http://")
    assert error.message.endswith(f": {problem}") and len(error.message) < 300
    assert not error.retryable
