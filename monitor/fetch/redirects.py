"""Where a redirected fetch may take the feed's configured headers, and whether the feed moves.

The configured headers (all of them: any may be a credential) belong to the origin of the
feed's configured URL, and to that origin moved from http to https on the same host. A hop
anywhere else, or over http once a hop was https, goes without them, and so does every hop
after it: a server that sends us away does not get to send the credentials on to a URL of
its choosing (as the Fetch standard drops them for good on a cross-origin redirect).

A permanent redirect (every hop 301/308) moves the feed only where its headers may go: a
move elsewhere would take the feed, and from its next poll on, its credentials, to a place
the configuration never named. Such a redirect is followed for this poll and reported as a
warning asking for the configuration to be updated.

Input: the redacted feed URL for errors, the URL in use and the configured origin, then
each redirect as the fetcher follows it. Output: whether the configured headers go with
the current hop; at the end, the feed's new URL or a warning; ``FetchError`` for a loop or
a chain over the limit (retryable: a server's misconfiguration of the moment).
Does not: send anything, or check schemes and lengths (``urls``) or addresses (``guard``).
"""

from __future__ import annotations

import httpx

from monitor.errors import FetchError
from monitor.fetch.urls import Origin, is_upgrade, origin_of, shown_url

PERMANENT_REDIRECTS = frozenset({301, 308})


class RedirectChain:
    """The hops of one fetch, from the URL in use to the response that is not a redirect."""

    def __init__(self, feed_url: str, start: httpx.URL, home: Origin, limit: int) -> None:
        self.url = start
        self._feed_url = feed_url
        self._home = home
        self._limit = limit
        self._visited = {str(start)}
        self._hops = 0
        self._all_permanent = True
        self._secure = False  # a hop so far was https
        self._left: str | None = None  # where the chain left the feed's origin, once it has
        self._enter(start)

    @property
    def credentials(self) -> bool:
        """Whether the configured headers go with the current hop."""
        return self._left is None

    def follow(self, status: int, target: httpx.URL) -> None:
        """Make ``target`` (already checked by ``urls.check_url``) the current hop."""
        if str(target) in self._visited:
            message = f"redirect loop: {shown_url(target)} was already visited"
            raise FetchError(self._feed_url, message)
        self._visited.add(str(target))
        self._hops += 1
        if self._hops > self._limit:
            raise FetchError(self._feed_url, f"too many redirects (limit {self._limit})")
        self._all_permanent = self._all_permanent and status in PERMANENT_REDIRECTS
        self._enter(target)
        self.url = target

    def outcome(self) -> tuple[str | None, str | None]:
        """The feed's new URL, when it moved for good, and a warning, when it did not
        although every hop was permanent."""
        if self._hops == 0 or not self._all_permanent:
            return None, None
        if self._left is None:
            return str(self.url), None
        warning = (
            f"permanent redirect to {self._left} not followed for good: "
            "update the feed URL in the configuration"
        )
        return None, warning

    def _enter(self, url: httpx.URL) -> None:
        if self._left is None:
            if self._secure and url.scheme == "http":
                self._left = f"plain http ({shown_url(url)})"
            elif origin_of(url) != self._home and not is_upgrade(self._home, url):
                self._left = f"another origin ({shown_url(url)})"
        self._secure = self._secure or url.scheme == "https"
