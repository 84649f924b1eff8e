"""Alert, digest or notice -> one title and body for an Apprise service, within its limits.

Input: a message and the service's ``Limits`` (its title and body maxima, whether the two
share one budget, and the markup it receives: text, HTML or Markdown); output: a
``Fitted`` title and body that the service takes without cutting anything itself. Pure:
does not touch the network, the clock or Apprise.

Order is importance: the title, the link, the matched snippets, the feed, then the summary.
What does not fit is left out from the end; a line that only partly fits is cut between
two words and marked with an ellipsis. Each word is escaped for the markup before it is
measured, and a cut only ever falls between two escaped words, so no escape (``&amp;``,
``\\*``) or emphasis (``<b>…</b>``) is ever split. A link is one word: it is shown whole or
left out (half a URL leads nowhere). Feed text is untrusted: escaped for the markup,
control characters made visible, ``@`` mentions muted (a feed title must not ping a room).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from markupsafe import escape

from alerts.base import Alert, Digest, Message, Notice, frozen
from alerts.controls import escape_controls
from alerts.render import (
    CHAT_MATCHES_MAX,
    SUMMARY_MAX,
    alert_title,
    discord_escape,
    item_link,
    mute_mentions,
    one_line,
    render_subject,
    split_highlights,
    truncate,
)
from alerts.render_digest import CHAT_ALERTS_MAX, render_digest_subject
from alerts.render_notice import render_notice_subject

Markup = Literal["text", "html", "markdown"]
ELLIPSIS = "…"
_MORE_RESERVE = 40  # room kept in a digest for its "… and K more" line
# Worst growth of one character when escaped (HTML: ' -> &#39;): the budget of the
# last-resort cut, when not even one word fits.
_ESCAPE_GROWTH = 6


@frozen
class Limits:
    """What one service takes. ``title_max`` 0: no title field, so the title leads the
    body. ``shared``: title and body count together against ``body_max``."""

    title_max: int
    body_max: int
    shared: bool = False
    markup: Markup = "text"


@frozen
class Fitted:
    title: str
    body: str


@frozen
class _Line:
    """One line as words already escaped, and what wraps the whole line (bold)."""

    words: tuple[str, ...]
    wrap: tuple[str, str] = ("", "")


_ESCAPES: dict[str, Callable[[str], str]] = {
    "text": lambda word: word,
    "html": lambda word: str(escape(word)),
    "markdown": discord_escape,
}
_EMPHASIS = {"text": ("*", "*"), "html": ("<b>", "</b>"), "markdown": ("**", "**")}


def fit_message(message: Message, limits: Limits) -> Fitted:
    if isinstance(message, Digest):
        title, lines = render_digest_subject(message), None
    elif isinstance(message, Notice):
        title, lines = render_notice_subject(message), _notice_lines(message, limits.markup)
    else:
        title, lines = render_subject(message), _alert_lines(message, limits.markup)
    title = _safe(title)
    head: list[_Line] = []
    budget = limits.body_max
    if limits.title_max <= 0:
        head = [_words(title, limits.markup, wrap=_EMPHASIS[limits.markup])]
        title = ""
    else:
        title = _cut_plain(title, limits.title_max)
        if limits.shared:
            budget -= len(title) + 2  # Apprise joins them with CRLF
    if lines is None:
        assert isinstance(message, Digest)
        return Fitted(title=title, body=_fit_digest(message, head, budget, limits.markup))
    return Fitted(title=title, body=fit_lines([*head, *lines], budget))


def fit_lines(lines: Sequence[_Line], budget: int) -> str:
    """The lines, in order, within ``budget`` characters: whole lines while they fit, then
    the first that does not, cut between words (or left out if not even one word fits,
    the next one tried instead). Never empty while a line has text: as a last resort the
    first line is cut by characters, before escaping, short enough for any escape."""
    out: list[str] = []
    used = 0
    for line in lines:
        sep = 1 if out else 0
        whole = _join(line, line.words)
        if used + sep + len(whole) <= budget:
            out.append(whole)
            used += sep + len(whole)
            continue
        room = budget - used - sep - len(ELLIPSIS) - len(line.wrap[0]) - len(line.wrap[1])
        kept: list[str] = []
        size = 0
        for word in line.words:
            size += len(word) + (1 if kept else 0)
            if size > room:
                break
            kept.append(word)
        if kept:
            out.append(_join(line, kept, cut=True))
            break
    if not out and lines and budget > 0:
        return _last_resort(lines[0], budget)
    return "\n".join(out)


def _join(line: _Line, words: Sequence[str], *, cut: bool = False) -> str:
    return line.wrap[0] + " ".join(words) + (ELLIPSIS if cut else "") + line.wrap[1]


def _last_resort(line: _Line, budget: int) -> str:
    """A line whose first word alone is longer than the whole budget (a feed's 5000-letter
    "word"): its words' text, cut by code points to a length whose escaping fits."""
    words = " ".join(line.words)
    return truncate(words, max(1, budget // _ESCAPE_GROWTH))


def _safe(text: str) -> str:
    """One line, control characters visible, mentions muted."""
    return mute_mentions(escape_controls(one_line(text)))


def _cut_plain(text: str, limit: int) -> str:
    """Unescaped text (a title field) within ``limit``, cut between words."""
    if len(text) <= limit:
        return text
    words = text.split(" ")
    kept: list[str] = []
    size = 0
    for word in words:
        size += len(word) + (1 if kept else 0)
        if size > limit - len(ELLIPSIS):
            break
        kept.append(word)
    return " ".join(kept) + ELLIPSIS if kept else truncate(text, limit)


def _words(text: str, markup: Markup, *, wrap: tuple[str, str] = ("", "")) -> _Line:
    escape_word = _ESCAPES[markup]
    return _Line(words=tuple(escape_word(w) for w in _safe(text).split(" ") if w), wrap=wrap)


def _snippet_words(prefix: str, snippet: str, markup: Markup) -> _Line:
    """``term: snippet`` with each matched word emphasised on its own, so a cut between
    two words never leaves an emphasis open."""
    escape_word = _ESCAPES[markup]
    before, after = _EMPHASIS[markup]
    words: list[str] = [escape_word(w) for w in _safe(prefix).split(" ") if w]
    current: list[str] = []
    for piece, highlighted in split_highlights(mute_mentions(one_line(snippet))):
        parts = escape_controls(piece).split(" ")
        for index, part in enumerate(parts):
            if index > 0 and current:
                words.append("".join(current))
                current = []
            if part:
                safe = escape_word(part)
                current.append(f"{before}{safe}{after}" if highlighted else safe)
    if current:
        words.append("".join(current))
    return _Line(words=tuple(words))


def _link(url: str | None, markup: Markup) -> list[_Line]:
    """The link as one word. In Markdown an autolink (``<url>``), where escapes would
    not be undone; ``<``, ``>`` and spaces percent-encoded so it stays one."""
    if not url:
        return []
    url = url.replace(" ", "%20")
    if markup == "markdown":
        return [_Line(words=(f"<{url.replace('<', '%3C').replace('>', '%3E')}>",))]
    return [_Line(words=(_ESCAPES[markup](url),))]


def _alert_lines(alert: Alert, markup: Markup) -> list[_Line]:
    lines = _link(item_link(alert), markup)
    for match in alert.matches[:CHAT_MATCHES_MAX]:
        lines.append(_snippet_words(f"{match.term}:", match.snippet, markup))
    lines.append(_words(f"— {alert.feed.name}", markup))
    summary = truncate(one_line(alert.item.summary), SUMMARY_MAX)
    if summary and summary != alert_title(alert):
        lines.append(_words(summary, markup))
    return lines


def _notice_lines(notice: Notice, markup: Markup) -> list[_Line]:
    lines = [_words(f"Feed: {notice.feed.name}", markup), *_link(notice.feed.url, markup)]
    if notice.previous_url:
        lines += [_words("Previously:", markup), *_link(notice.previous_url, markup)]
    return [*lines, _words(notice.detail, markup)]


def _fit_digest(digest: Digest, head: list[_Line], budget: int, markup: Markup) -> str:
    """Whole alerts (title line, link) while they fit, newest first, then ``… and K more``."""
    blocks: list[list[_Line]] = []
    for alert in digest.alerts[:CHAT_ALERTS_MAX]:
        label = f"• [{alert.watchlist}] {alert_title(alert)}"
        blocks.append([_words(label, markup), *_link(item_link(alert), markup)])
    shown: list[_Line] = list(head)
    listed = 0
    for block in blocks:
        candidate = [*shown, *block]
        text = fit_lines(candidate, budget - _MORE_RESERVE)
        if text != "\n".join(_join(line, line.words) for line in candidate):
            break
        shown, listed = candidate, listed + 1
    if not listed and blocks:  # not even one whole alert: the first one, cut
        shown, listed = [*head, *blocks[0]], 1
    more = len(digest.alerts) - listed
    if more:
        shown.append(_words(f"{ELLIPSIS} and {more} more", markup))
    return fit_lines(shown, budget)
