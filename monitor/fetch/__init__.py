"""FETCH stage: HTTP GET of feeds, politely and defensively (see :mod:`monitor.fetch.fetcher`).

The modules: ``fetcher`` (conditional GET, redirects by hand, deadline, which failures are
retryable), ``urls`` (which URLs may be fetched; origins; URLs redacted for errors and
logs), ``redirects`` (where the configured headers may go; when a feed moves), ``headers``
(the request headers; configured ones checked; validators verbatim), ``limits`` (per-host
and global slots; the deadline), ``guard`` (the private-network guard and the transport
that connects only to vetted addresses), ``resolver`` (its look-ups, on threads of their
own), ``pools`` (connection pools sharded by origin), ``decode`` (the bounded body
decoder), ``caching`` (freshness lifetime from Cache-Control and Expires) and ``failures``
(network errors as one-line messages).
"""

from monitor.fetch.fetcher import Fetcher, FetchSettings

__all__ = ["FetchSettings", "Fetcher"]
