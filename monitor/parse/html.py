"""Feed text to plain text, for the parse stage.

Input: the strings a feed carries (HTML fragments, plain text, HTML pages served in place
of a feed). Output: plain text with tags removed, ``<script>``/``<style>`` contents dropped,
entities decoded, double-encoded UTF-8 repaired, control characters dropped and whitespace
collapsed, each block element on its own line; or, for an HTML page, the feed URL it
advertises. It does not sanitise HTML for display (nothing here produces HTML) and it does
not touch the network.

Built on the standard library's ``html.parser``, which is lenient with broken markup,
rather than on regular expressions, which cannot tell a tag from ``a < b``.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin

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
# Control characters that are not whitespace, and lone surrogates (JSON can escape them):
# no reader wants them, and PostgreSQL cannot store NUL or encode a lone surrogate.
_UNSTORABLE = re.compile("[\x00-\x08\x0e-\x1b\x7f\ud800-\udfff]")
_UNCLOSED_LIMIT = 16
# Not "application/json": WordPress advertises its REST API with that type.
_FEED_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/feed+json"})


def collapse_whitespace(text: str) -> str:
    """Collapse runs of whitespace inside each line; drop blank lines."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: one line per block element, entities decoded."""
    fragment = _UNSTORABLE.sub("", repair_mojibake(fragment))
    if "<" not in fragment and "&" not in fragment:
        # Most titles and many summaries carry no markup: skip the pure-Python parser.
        return " ".join(fragment.split())
    extractor = _TextExtractor()
    extractor.feed(_defuse_unclosed_tags(fragment))
    extractor.close()
    return extractor.text()


def _defuse_unclosed_tags(fragment: str) -> str:
    """Escape the "<"s that no ">" closes before the next "<", when there are many.

    ``html.parser`` rescans the rest of the input for each such "<" ("<a <a <a ...":
    60 KB took 22 s on Python 3.11.7; CPython gh-135462 / CVE-2025-6069, and for
    unterminated declarations CVE-2026-15308). Real feed HTML has at most one or two
    (none in 3,800 corpus fragments), so below the limit the markup is left untouched
    and parsed exactly as written. Linear: each search resumes where the last one ended.
    """
    unclosed: list[int] = []
    close = fragment.find(">")
    opening = fragment.find("<")
    while opening != -1:
        following = fragment.find("<", opening + 1)
        if close != -1 and close < opening:
            close = fragment.find(">", opening)
        if close == -1 or -1 < following < close:
            unclosed.append(opening)
        opening = following
    if len(unclosed) <= _UNCLOSED_LIMIT:
        return fragment
    pieces: list[str] = []
    done = 0
    for position in unclosed:
        pieces += (fragment[done:position], "&lt;")
        done = position + 1
    pieces.append(fragment[done:])
    return "".join(pieces)


def plain_to_text(text: str) -> str:
    """Plain text as given, but repaired if double-encoded, and whitespace collapsed."""
    return collapse_whitespace(_UNSTORABLE.sub("", repair_mojibake(text)))


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
