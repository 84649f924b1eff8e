"""Feed text to plain text, for the parse stage.

Input: the strings a feed carries (HTML fragments, plain text, HTML pages served in place
of a feed). Output: plain text with tags removed, ``<script>``/``<style>`` contents dropped,
entities decoded, double-encoded UTF-8 repaired, control characters dropped
(:mod:`monitor.parse.text`) and whitespace collapsed, each block element on its own line;
or, for an HTML page, the feed URL it advertises. It does not sanitise HTML for display
(nothing here produces HTML) and it does not touch the network.

Built on the standard library's ``html.parser``, which is lenient with broken markup,
rather than on regular expressions, which cannot tell a tag from ``a < b``.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin

from monitor.parse.text import clean_text
from monitor.types import frozen

# Elements whose boundaries separate words or lines (HTML Living Standard, "flow content"
# that renders as a block, plus cells and line breaks).
# fmt: off
_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "dialog",
    "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3",
    "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section",
    "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
})
# fmt: on
# Elements whose content is code, styling or fallback markup, never reader-visible text.
_SKIP_TAGS = frozenset(
    ["script", "style", "template", "noscript", "iframe", "object", "svg", "head"]
)
_UNCLOSED_LIMIT = 16
# Not "application/json": WordPress advertises its REST API with that type.
_FEED_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/feed+json"})


def collapse_whitespace(text: str) -> str:
    """Collapse runs of whitespace inside each line; drop blank lines."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: one line per block element, entities decoded."""
    fragment = clean_text(repair_mojibake(fragment))
    if "<" not in fragment and "&" not in fragment:
        # Most titles and many summaries carry no markup: skip the pure-Python parser.
        return " ".join(fragment.split())
    extractor = _TextExtractor()
    extractor.feed(_defuse_unclosed_tags(fragment))
    extractor.close()
    return extractor.text()


def _defuse_unclosed_tags(fragment: str) -> str:
    """Escape the "<" of markup that ``html.parser`` would look ahead for in vain, when
    there are many, and of markup it cannot parse at all, always.

    For each "<" it cannot close, ``html.parser`` rescans the rest of the input, once
    while feeding and again when closing: quadratic for a text full of them (a start tag
    with no ">" before the next "<", as in "<a <a <a", CPython gh-135462; a quoted
    attribute value that runs on into the next tags; an unterminated comment, CDATA
    section, declaration or processing instruction). A marked section other than those
    it knows (``<![ >``) makes it raise. Real feed HTML has at most one or two unclosed
    constructs, so below the limit the markup is left untouched and parsed exactly as
    written; each one costs a pass, which the limit bounds. Linear: a start tag is
    checked without reading past the next "<", and the searches for each other kind of
    end resume where the last one stopped (:class:`_Ends`).
    """
    ends = _Ends(fragment)
    unclosed: list[int] = []
    unparseable: list[int] = []
    opening = fragment.find("<")
    while opening != -1:
        end = _end_of(fragment, opening)
        if end is _NEVER:
            unparseable.append(opening)
        elif end is _START_TAG:
            if not _CLOSED_START_TAG(fragment, opening):
                unclosed.append(opening)
        elif end is not None and not ends.found(*end):
            unclosed.append(opening)
        opening = fragment.find("<", opening + 1)
    if len(unclosed) > _UNCLOSED_LIMIT:
        unparseable = sorted(unparseable + unclosed)
    if not unparseable:
        return fragment
    pieces: list[str] = []
    done = 0
    for position in unparseable:
        pieces += (fragment[done:position], "&lt;")
        done = position + 1
    pieces.append(fragment[done:])
    return "".join(pieces)


# What ends each construct html.parser looks ahead for (Lib/html/parser.py and
# Lib/_markupbase.py, Python 3.11): its own patterns.
_GREATER = re.compile(">")
_COMMENT_END = re.compile(r"--\s*>")
_SECTION_NAME = re.compile(r"[a-zA-Z][-_.a-zA-Z0-9]*\s*")
_SECTION_ENDS = {
    **dict.fromkeys(("temp", "cdata", "ignore", "include", "rcdata"), re.compile(r"]\s*]\s*>")),
    **dict.fromkeys(("if", "else", "endif"), re.compile(r"]\s*>")),  # MS Office's
}
# html.parser's start tag (its locatestarttagend_tolerant) up to its ">", when none of it is
# a "<": the same choices, made possessively, so a match costs one pass over the tag and
# stops at the next "<". Where this matches, html.parser's tag ends at the same ">"; where it
# does not, the tag may run on past the next "<" or be unclosed, and counts as unclosed.
_CLOSED_START_TAG = re.compile(
    r"""
    <[a-zA-Z][^\t\n\r\f />\x00<]*+
    (?:[\s/]*+
      (?:(?<=['"\s/])[^\s/><][^\s/=><]*+
        (?:\s*+=++\s*+(?:'[^'<]*+'|"[^"<]*+"|(?!['"])[^>\s<]*+)\s*+)?+
        (?:\s|/(?!>))*+
      )*+
    )?+
    \s*+/?>
    """,
    re.VERBOSE,
).match
_START_TAG = (_GREATER, -2)  # markup html.parser reads with its start tag pattern
_NEVER = (_GREATER, -1)  # markup html.parser raises on


def _end_of(fragment: str, at: int) -> tuple[re.Pattern[str], int] | None:
    """What ends the markup opened by the "<" at ``at`` and where the search for it
    starts; :data:`_START_TAG` for a start tag, :data:`_NEVER` for a marked section
    html.parser cannot parse, None for a "<" that opens nothing."""
    kind = fragment[at + 1 : at + 2]
    if kind in ("/", "?"):
        return _GREATER, at + 2
    if kind.isascii() and kind.isalpha():
        return _START_TAG
    if kind != "!":
        return None
    if fragment.startswith("<!--", at):
        return _COMMENT_END, at + 4
    if not fragment.startswith("<![", at):
        return _GREATER, at + 2  # a DOCTYPE, or what html.parser takes for a comment
    name = _SECTION_NAME.match(fragment, at + 3)
    if name is None or name.end() == len(fragment):
        return _NEVER
    end = _SECTION_ENDS.get(name.group().strip().lower())
    return _NEVER if end is None else (end, at + 3)


class _Ends:
    """Whether an end of each kind occurs at or after a position. Positions are asked in
    increasing order, so a search is made only past the last end found, and none after
    one found nothing: together the searches read the fragment about once per kind."""

    def __init__(self, fragment: str) -> None:
        self.fragment = fragment
        self.first: dict[re.Pattern[str], int] = {}  # the first end past the last search

    def found(self, end: re.Pattern[str], start: int) -> bool:
        known = self.first.get(end)
        if known is not None and (known == -1 or known >= start):
            return known != -1
        match = end.search(self.fragment, start)
        self.first[end] = match.start() if match else -1
        return match is not None


def plain_to_text(text: str) -> str:
    """Plain text as given, but repaired if double-encoded, and whitespace collapsed."""
    return collapse_whitespace(clean_text(repair_mojibake(text)))


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 that was decoded as windows-1252 once too often ("Ð¯Ð½Ð´ÐµÐºÑ").

    Accepted only when the reversed bytes are strictly valid UTF-8: ordinary Latin-1 or
    windows-1252 text practically never forms valid multi-byte UTF-8 sequences (a lone
    "Ã" followed by a letter is invalid), so real accented text is left alone.
    """
    if text.isascii():
        return text
    try:
        raw = text.encode("cp1252")
    except UnicodeEncodeError as exc:
        # Double-encoded text may also hold the five bytes windows-1252 leaves undefined,
        # decoded as C1 controls (U+0081 ...); any other character (Cyrillic, CJK) means
        # the text is genuine, and this early exit keeps such text cheap.
        if not "\x80" <= text[exc.start] <= "\x9f":
            return text
        try:
            raw = text.translate(_CP1252_TO_BYTE).encode("latin-1")
        except UnicodeEncodeError:
            return text
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return text


def _cp1252_table() -> dict[int, int]:
    """Map each windows-1252-only character (U+20AC euro sign ...) back to its byte."""
    table: dict[int, int] = {}
    for byte in range(0x80, 0xA0):
        char = bytes([byte]).decode("cp1252", errors="ignore")
        if char:
            table[ord(char)] = byte
    return table


_CP1252_TO_BYTE = _cp1252_table()


class _TextExtractor(HTMLParser):
    """Collects text per block; ``convert_charrefs`` decodes entities in the data."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._blocks: list[str] = []
        self._current: list[str] = []
        self._skip_depth = 0
        self._pre_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth += 1
        elif tag in _BLOCK_TAGS:
            self._end_block()
            self._pre_depth += tag == "pre"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self._end_block()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCK_TAGS:
            self._end_block()
            if tag == "pre":
                self._pre_depth = max(0, self._pre_depth - 1)

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if not self._pre_depth:
            self._current.append(data)
            return
        # Preformatted text (code, commit messages): its line breaks are real.
        first, *rest = data.split("\n")
        self._current.append(first)
        for line in rest:
            self._end_block()
            self._current.append(line)

    def _end_block(self) -> None:
        line = " ".join("".join(self._current).split())
        if line:
            self._blocks.append(line)
        self._current.clear()

    def text(self) -> str:
        self._end_block()
        return "\n".join(self._blocks)


@frozen
class HtmlPage:
    """What an HTML page served in place of a feed tells us."""

    is_html: bool
    feed_url: str | None


def inspect_html_page(document: str, *, url: str) -> HtmlPage:
    """Whether ``document`` is an HTML page, and the first feed it advertises.

    Feed autodiscovery: ``<link rel="alternate" type="application/rss+xml" href=...>``
    (RSS Autodiscovery, rssboard.org), resolved against ``<base href>`` or the page URL.
    """
    finder = _FeedLinkFinder(url)
    finder.feed(_defuse_unclosed_tags(document))
    finder.close()
    return HtmlPage(is_html=finder.is_html, feed_url=finder.feed_url)


class _FeedLinkFinder(HTMLParser):
    def __init__(self, url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = url
        self.is_html = False
        self.feed_url: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("html", "head", "body"):
            self.is_html = True
        values = {name: (value or "").strip() for name, value in attrs}
        if tag == "base" and values.get("href"):
            self.base = urljoin(self.base, values["href"])
        elif tag == "link" and self.feed_url is None:
            rels = values.get("rel", "").lower().split()
            kind = values.get("type", "").lower().split(";")[0].strip()
            if "alternate" in rels and kind in _FEED_TYPES and values.get("href"):
                self.feed_url = urljoin(self.base, values["href"])

    handle_startendtag = handle_starttag
