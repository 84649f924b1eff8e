"""FETCH stage: HTTP GET of feeds, politely and defensively (see :mod:`monitor.fetch.fetcher`).

The modules: ``fetcher`` (conditional GET, redirects by hand, limits, deadline, which
failures are retryable), ``urls`` (which URLs may be fetched; origins), ``guard`` (the
private-network guard and the transport that connects only to vetted addresses), ``pools``
(connection pools sharded by origin), ``decode`` (the bounded body decoder), ``caching``
(freshness lifetime from Cache-Control and Expires) and ``failures`` (network errors as
one-line messages).
"""

from monitor.fetch.fetcher import Fetcher, FetchSettings

__all__ = ["FetchSettings", "Fetcher"]
