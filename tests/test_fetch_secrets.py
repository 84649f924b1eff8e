"""Secrets stay out of fetch errors (monitor/fetch/urls.py, headers.py): the error text is
stored as the feed's ``last_error`` and logged, so a configured header is named, never
quoted, and every URL in an error is redacted (``redact_url``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from feedserver import FeedServer, Response

from httpfields import redact_url
from monitor.errors import FetchError
from monitor.fetch import Fetcher, FetchSettings
from monitor.types import FetchRequest

SECRET = "s3cret-t0ken"


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(FetchSettings()) as fetcher:
        yield fetcher


async def fetch_error(fetcher: Fetcher, url: str, headers: dict[str, str]) -> FetchError:
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch(FetchRequest(url=url, headers=headers))
    return caught.value


def assert_no_secret(error: FetchError) -> None:
    for text in (str(error), error.message, error.url, repr(error.args)):
        assert SECRET not in text and "pa55" not in text


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (f"Bearer {SECRET}\n", "contains a line break"),  # a secret read from a file
        (f"Bearer {SECRET}\r\nX-Injected: 1", "contains a line break"),
        (f"Bearer {SECRET}\x00", "contains a control character"),
        (f"Bearer {SECRET} ", "has leading or trailing whitespace"),
        (f"Bearer {SECRET}é", "outside ASCII"),
    ],
)
async def test_a_header_that_cannot_be_sent_is_named_not_shown(
    feed_server: FeedServer, fetcher: Fetcher, value: str, problem: str
) -> None:
    error = await fetch_error(fetcher, feed_server.url("/feed"), {"Authorization": value})
    assert error.message.startswith("configured header 'Authorization' cannot be sent: ")
    assert problem in error.message
    assert not error.retryable
    assert_no_secret(error)
    assert feed_server.requests == []


async def test_a_redirect_loop_is_reported_without_the_urls_credentials(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    # The server redirects keeping our query string, as http-to-https redirects do.
    target = feed_server.url(f"/b?api_key={SECRET}")
    feed_server.set_handler("/a", lambda r: Response.redirect(target))
    feed_server.set_handler("/b", lambda r: Response.redirect(target))
    url = feed_server.url(f"/a?token={SECRET}").replace("//", "//user:pa55@")
    error = await fetch_error(fetcher, url, {})
    assert (
        error.message == f"redirect loop: {feed_server.url('/b?api_key=***')} was already visited"
    )
    assert error.url == feed_server.url("/a?token=***")
    assert_no_secret(error)


@pytest.mark.parametrize(
    "url",
    [
        f"http://user:pa55@[::1/feed?token={SECRET}",  # does not parse
        f"gopher://user:pa55@example.com/?key={SECRET}",
        f"http://user:pa55@example.com/{'a' * 9000}?sig={SECRET}",  # too long
    ],
)
async def test_an_unusable_url_is_reported_without_its_credentials(
    fetcher: Fetcher, url: str
) -> None:
    error = await fetch_error(fetcher, url, {})
    assert not error.retryable and len(error.message) < 300
    assert_no_secret(error)


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("https://user:pw@host.example/feed", "https://host.example/feed"),
        ("https://user@host.example:8443/f?a=1", "https://host.example:8443/f?a=1"),
        (
            "https://h.example/f?token=abc&page=2&api_key=x&apiKey=y&X-Amz-Signature=z",
            "https://h.example/f?token=***&page=2&api_key=***&apiKey=***&X-Amz-Signature=***",
        ),
        (
            "https://h.example/f?PASSWORD=a&sig=b&auth=c&access_token=d&client_secret=e",
            "https://h.example/f?PASSWORD=***&sig=***&auth=***&access_token=***&client_secret=***",
        ),
        (
            "https://h.example/f?pass=a&key=b&secret=c",
            "https://h.example/f?pass=***&key=***&secret=***",
        ),
        ("https://h.example/f?author=ann&q=rust", "https://h.example/f?author=ann&q=rust"),
        (
            "https://h.example/cb#access_token=abc&state=1",
            "https://h.example/cb#access_token=***&state=1",
        ),
        ("https://h.example/f?token=", "https://h.example/f?token="),
        ("http://user:pw@[::1/feed?key=k", "http://[::1/feed?key=***"),  # does not parse
        ("example.com/a//b@c?token=t", "example.com/a//b@c?token=***"),  # no authority
        ("//user:pw@host.example/f", "//host.example/f"),
        ("", ""),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted
