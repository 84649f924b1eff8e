"""FETCH stage: HTTP GET of feeds, politely and defensively (see :mod:`monitor.fetch.fetcher`).

The modules: ``fetcher`` (conditional GET, redirects by hand, limits, deadline), ``guard``
(the private-network guard and the transport that connects only to vetted addresses),
``pools`` (connection pools sharded by origin), and the bounded body decoder.
"""

from monitor.fetch.fetcher import Fetcher, FetchSettings

__all__ = ["FetchSettings", "Fetcher"]
