"""The canonical form of an article link, so that the copies of one article a feed hands out
(tracking parameters, AMP and mobile variants, http and https) compare equal.

Input: a link as a feed gives it. Output: the canonical link, or None when it is not an
absolute http(s) URL. Never raises. It does not follow redirects, does not decode aggregator
links (a news.google.com link stays what it is) and touches no network.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

# Longer canonical links are replaced by a digest (equal links still give equal digests), so
# that features stay bounded whatever a feed sends.
MAX_LINK_LENGTH: Final = 500

# Query parameters that say who sent the reader, never which article it is.
_TRACKING_NAMES: Final = """
fbclid gclid yclid dclid gbraid wbraid msclkid twclid ttclid igshid igsh mc_cid mc_eid _ga _gl
_hsenc _hsmi mkt_tok ncid ocid cmpid cmp icid ito xtor spm smid soc_src soc_trk partner emc
feedtype feedname rss rssfeed ref ref_src ref_url referrer source src share amp outputtype
output utm
"""
_TRACKING: Final = frozenset(_TRACKING_NAMES.split())
_TRACKING_PREFIXES: Final = ("utm_", "mc_", "at_", "pk_", "hsa_", "oly_", "__")
# Host labels of mobile and AMP variants (and "www"), dropped unless the host would be left
# with a single label.
_VARIANT_LABELS: Final = frozenset({"www", "m", "mobile", "amp", "amp-cdn"})
_PATH_SAFE: Final = "/%:@!$&'()*+,;=-._~"
_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/:@!$&'()*+,;=._~-]*")
_DEFAULT_PORTS: Final = {"80", "443"}


def canonical_link(link: str | None) -> str | None:
    """The canonical form of ``link`` (https, host without www/m/mobile/amp labels, no
    default port, no credentials, no fragment, no trailing slash, no AMP path segment or
    ``.amp`` suffix, tracking parameters dropped and the others sorted); None when
    ``link`` is not an absolute http(s) URL."""
    if not link or not isinstance(link, str):
        return None
    try:
        return _canonical(link.strip()[:4096])
    except (ValueError, UnicodeError):  # a malformed port, an unbalanced IPv6 bracket
        return None


def _canonical(link: str) -> str | None:
    parts = urlsplit(link)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    labels = host.split(".")
    while len(labels) > 2 and labels[0] in _VARIANT_LABELS:
        labels.pop(0)
    if len(labels) > 3 and labels[1] in _VARIANT_LABELS:  # en.m.wikipedia.org
        labels.pop(1)
    host = ".".join(labels)
    if not host or any(c.isspace() or ord(c) < 32 for c in host):
        return None
    port = parts.port  # raises ValueError for a port that is not a number
    if port is not None and str(port) not in _DEFAULT_PORTS:
        host = f"{host}:{port}"
    path = _path(parts.path)
    query = _query(parts.query)
    canonical = f"https://{host}{path}" + (f"?{query}" if query else "")
    if len(canonical) > MAX_LINK_LENGTH:
        digest = hashlib.blake2b(canonical.encode("utf-8", "replace"), digest_size=16)
        return f"https://{host[:100]}/#digest={digest.hexdigest()}"
    return canonical


def _path(path: str) -> str:
    """Percent-encoded the same way whatever the feed did; AMP segments and suffixes out."""
    if not _PLAIN_PATH.fullmatch(path):  # most paths need neither step
        path = quote(path, safe=_PATH_SAFE, errors="replace")
        path = _ESCAPE.sub(lambda m: m.group(0).upper(), path)
    segments = [s for s in path.split("/") if s and s.lower() != "amp"]
    if segments:
        last = segments[-1]
        lowered = last.lower()
        if lowered.endswith(".amp"):
            segments[-1] = last[:-4]
        elif lowered.endswith(".amp.html"):
            segments[-1] = last[:-9] + ".html"
        segments = [s for s in segments if s]
    return "/" + "/".join(segments)


def _query(query: str) -> str:
    if not query:
        return ""
    kept = sorted(
        (key, value)
        for key, value in parse_qsl(query, keep_blank_values=True)
        if not _tracking(key.lower())
    )
    return urlencode(kept, quote_via=quote)


def _tracking(key: str) -> bool:
    return key in _TRACKING or key.startswith(_TRACKING_PREFIXES)
