"""Alert, digest or notice -> one title and body for an Apprise service, within its limits.

Input: a message and the service's ``Limits`` (its title and body maxima, whether the two
share one budget, and the markup it receives: text, HTML or Markdown); output: a
``Fitted`` title and body that the service takes without cutting anything itself. Pure:
does not touch the network, the clock or Apprise.

Order is importance: the title, the link, the matched snippets, the feed, then the summary.
A spread update: its headline (``now in 15 sources: …``), the link, then whole sources
(feed — title, link) while they fit and ``… and K more``.
What does not fit is left out from the end; a line that only partly fits is cut between
two words and marked with an ellipsis. Each word is escaped for the markup before it is
measured, and a cut only ever falls between two escaped words, so no escape (``&amp;``,
``\\*``) or emphasis (``<b>…</b>``) is ever split. A link is one word: it is shown whole or
left out (half a URL leads nowhere). Feed text is untrusted: escaped for the markup,
control characters made visible, ``@`` mentions muted (a feed title must not ping a room).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Literal

from markupsafe import escape

from alerts.base import Alert, AlertStory, Digest, Message, Notice, frozen
from alerts.controls import escape_controls
from alerts.render import (
    CHAT_MATCHES_MAX,
    SUMMARY_MAX,
    alert_title,
    discord_escape,
    item_link,
    mute_mentions,
    one_line,
    other_sources,
    render_subject,
    source_link,
    source_total,
    split_highlights,
    spread_story,
    truncate,
)
from alerts.render_digest import (
    CHAT_ALERTS_MAX,
    entry_headline,
    entry_sources,
    render_digest_subject,
    story_entries,
)
from alerts.render_notice import render_notice_subject
from alerts.render_story import CHAT_SOURCES_MAX

Markup = Literal["text", "html", "markdown"]
ELLIPSIS = "…"
_MORE_RESERVE = 40  # room kept in a digest (or a source list) for its "… and K more" line
_TITLE_MAX = 200  # a source's title and feed in a list of sources
_FEED_MAX = 100
# What a last-resort cut may not fall inside: an HTML entity, a Markdown backslash escape;
# else one character. Emphasis marks are dropped there (half of one is worse than none).
_ATOMS = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);|\\.|</?b>|\*\*|.", re.S)
_EMPHASIS_MARKS = frozenset({"<b>", "</b>", "**"})


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
    markup = limits.markup
    title = _safe(_subject(message))
    head: list[_Line] = []
    budget = limits.body_max
    if limits.title_max <= 0:
        head = [_words(title, markup, wrap=_EMPHASIS[markup])]
        title = ""
    else:
        title = _cut_plain(title, limits.title_max)
        if limits.shared:
            budget -= len(title) + 2  # Apprise joins them with CRLF
    if isinstance(message, Digest):
        body = _fit_digest(message, head, budget, markup)
    elif isinstance(message, Notice):
        body = fit_lines([*head, *_notice_lines(message, markup)], budget)
    elif (story := spread_story(message)) is not None:
        body = _fit_update(message, story, head, budget, markup)
    else:
        body = fit_lines([*head, *_alert_lines(message, markup)], budget)
    return Fitted(title=title, body=body)


def _subject(message: Message) -> str:
    if isinstance(message, Digest):
        return render_digest_subject(message)
    if isinstance(message, Notice):
        return render_notice_subject(message)
    return render_subject(message)


def fit_lines(lines: Sequence[_Line], budget: int) -> str:
    """The lines, in order, within ``budget`` characters: whole lines while they fit, then
    the first that does not, cut between words (or left out if not even one word fits,
    the next one tried instead). Never empty while a line has text: as a last resort the
    first line is cut inside its first word, between two escapes (:func:`_last_resort`)."""
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
    "word"): its escaped text cut between two escapes or characters, never inside one,
    without emphasis, and marked with an ellipsis."""
    room = budget - len(ELLIPSIS)
    kept: list[str] = []
    used = 0
    for atom in _ATOMS.findall(" ".join(line.words)):
        if atom in _EMPHASIS_MARKS:
            continue
        if used + len(atom) > room:
            break
        kept.append(atom)
        used += len(atom)
    return "".join(kept).rstrip() + ELLIPSIS


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
    also = other_sources(alert)
    if also:
        lines.append(_words(also, markup))
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
    """Whole entries (title line, link) while they fit, newest first, then ``… and K
    more``; the alerts of one story are one entry, its line saying ``14 sources: …``."""
    blocks: list[tuple[list[_Line], int]] = []
    for entry in story_entries(digest.alerts)[:CHAT_ALERTS_MAX]:
        alert = entry.alerts[0]
        label = f"• [{alert.watchlist}] {entry_headline(entry) or alert_title(alert)}"
        sources = entry_sources(entry)
        if sources:
            label += f" — {sources}"
        block = [_words(label, markup), *_link(item_link(alert), markup)]
        blocks.append((block, entry.covers))
    return _fit_blocks(head, blocks, len(digest.alerts), budget, markup)


def _fit_update(
    alert: Alert, story: AlertStory, head: list[_Line], budget: int, markup: Markup
) -> str:
    """The first item's link, then whole sources (feed — title, link) while they fit,
    then ``… and K more``."""
    blocks: list[tuple[list[_Line], int]] = []
    for source in story.sources[:CHAT_SOURCES_MAX]:
        feed = truncate(one_line(source.feed), _FEED_MAX)
        label = _words(f"• {feed} — {truncate(one_line(source.title), _TITLE_MAX)}", markup)
        blocks.append(([label, *_link(source_link(source), markup)], 1))
    head = [*head, *_link(item_link(alert), markup)]
    total = source_total(story)
    return _fit_blocks(head, blocks, total, budget, markup)


def _fit_blocks(
    head: list[_Line],
    blocks: Sequence[tuple[list[_Line], int]],
    total: int,
    budget: int,
    markup: Markup,
) -> str:
    """``head``, then whole blocks while they fit, then ``… and K more`` for what the
    blocks left out of ``total`` (each block says how many it stands for)."""
    shown: list[_Line] = list(head)
    covered = listed = 0
    for block, covers in blocks:
        candidate = [*shown, *block]
        text = fit_lines(candidate, budget - _MORE_RESERVE)
        if text != "\n".join(_join(line, line.words) for line in candidate):
            break
        shown, listed, covered = candidate, listed + 1, covered + covers
    if not listed and blocks:  # not even one whole block: the first one, cut
        shown, covered = [*head, *blocks[0][0]], blocks[0][1]
    more = total - covered
    if not more:
        return fit_lines(shown, budget)
    # Room for the "more" line is kept first, so a block cut short never pushes it out.
    more_line = _words(f"{ELLIPSIS} and {more} more", markup)
    more_text = _join(more_line, more_line.words)
    text = fit_lines(shown, budget - len(more_text) - 1)
    return f"{text}\n{more_text}" if text else fit_lines(shown, budget)
