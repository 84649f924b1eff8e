"""feedparser's lenient parser, made to skip what it cannot read: the last resort for a
document on which feedparser raises.

feedparser reads a document that is not well-formed XML with its lenient (SGML) parser,
whose element handlers assume that the element being closed was opened: broken markup
(``<width>88<br></width>`` in a channel's image) makes one raise, and feedparser lets
the exception out, which would lose the whole feed for one bad element. Here the same
parser runs with each handler's failure confined to its element, and a failure of the
tokenizer itself ends the document where it happened, keeping what was read before.

Input: the document as feedparser's parsers read it (UTF-8). Output: a feedparser result,
marked bozo with :class:`SkippedMarkup`. Pure. It does not decode the document
(:mod:`monitor.parse.prolog`) or turn the result into items (:mod:`monitor.parse.feed`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from feedparser.api import LooseFeedParser
from feedparser.sanitizer import replace_doctype
from feedparser.util import FeedParserDict


class SkippedMarkup(Exception):
    """The bozo exception of a document read by :func:`read_leniently`."""


# The parser's callbacks, one per piece of markup read (feedparser.mixin, sgmllib).
_HANDLERS = (
    "unknown_starttag",
    "unknown_endtag",
    "handle_data",
    "handle_charref",
    "handle_entityref",
    "handle_comment",
    "handle_pi",
    "handle_decl",
)


def _confined(name: str) -> Callable[..., None]:
    handle = getattr(LooseFeedParser, name)

    def confined(self: Any, *args: Any) -> None:
        try:
            handle(self, *args)
        except Exception:  # feedparser's, on markup it did not expect: skip that piece
            self.skipped += 1

    return confined


_LenientParser: Any = type(
    "_LenientParser",
    (LooseFeedParser,),
    {"skipped": 0, **{name: _confined(name) for name in _HANDLERS}},
)


def read_leniently(data: bytes, failure: Exception) -> Any:
    """feedparser's result for ``data``, read as its lenient parser reads it (after the
    same DOCTYPE handling), skipping what makes that parser raise; ``failure`` is what
    feedparser raised, named in the bozo exception."""
    version, data, entities = replace_doctype(data)
    parser = _LenientParser("", None, "utf-8", entities)
    parser.resolve_relative_uris = False
    parser.sanitize_html = False
    ended = ""
    try:
        parser.feed(data.decode("utf-8", "replace"))
    except Exception as exc:  # the tokenizer: the document ends here
        ended = f"; reading stopped at a {type(exc).__name__}"
    skipped = f"{parser.skipped} piece(s) of markup skipped"
    problem = SkippedMarkup(f"feedparser raised {type(failure).__name__}; {skipped}{ended}")
    return FeedParserDict(
        feed=parser.feeddata,
        entries=parser.entries,
        version=version or parser.version,
        namespaces=parser.namespaces_in_use,
        bozo=True,
        bozo_exception=problem,
    )
