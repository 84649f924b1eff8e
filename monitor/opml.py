"""OPML subscription lists in and out: ``monitor feeds import`` and ``monitor feeds export``.

In: the bytes of an OPML file, as other feed readers export it. listparser reads it (through
lxml's forgiving parser: real exports carry unescaped quotes and ampersands, HTML entities,
folders nested any way), and each feed outline becomes an :class:`OpmlFeed`: its ``xmlUrl``,
its ``text`` (else ``title``) as the name, and as tags the folders it sits in and the
elements of its ``category`` paths (``category="/News/Asia,tech"`` and a folder ``Daily``
give ``News``, ``Asia``, ``tech`` and ``Daily``). Each is held to the configuration file's
rules (an absolute http(s) URL of at most 2048 characters; names and tags without control
characters, at most 200 characters); an entry that breaks one is skipped with the reason.

Bounded before anything is built: a file over :data:`MAX_BYTES`, with more than
:data:`MAX_OUTLINES` outlines or outlines nested deeper than :data:`MAX_DEPTH`, or with a
``<!DOCTYPE>``/``<!ENTITY>`` declaration (OPML has no DTD; entity declarations are how
"billion laughs" expansion works) is refused whole, with an :class:`OpmlError` naming the
file. Python's own ``html.parser``, which listparser falls back to without lxml, takes
quadratic time on some malformed input (``<a b="`` repeated: 240 KB took 400 s here); lxml
reads the same in milliseconds, which is why lxml is a dependency and imported here.

Out: OPML 2.0 (:func:`write_opml`): one folder per tag holding the feeds that carry it (so
readers that know only folders, as most do, keep the grouping; a feed with two tags sits
in two folders, as Feedly's exports do), and each tag also in the feed's ``category``
attribute as a ``/tag`` path (the spec's form for a tag), unless the tag holds a ``/`` or
``,`` that the attribute cannot carry (its folder still does). Reading the export back gives
the same URLs, names and tags.

Does not touch the database, the network or the configuration; which feeds to import or
export, and what becomes of them, is ``monitor.cli.feeds``'s and the store's business.
"""

from __future__ import annotations

import codecs
import email.utils
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import listparser
import lxml.etree

from alerts.controls import UNSAFE
from alerts.settings import NAME_MAX, check_http_url, check_name
from monitor.config import MAX_URL
from monitor.errors import MonitorError
from monitor.types import frozen

MAX_BYTES = 16 * 1024 * 1024  # the configuration file's own limit
MAX_OUTLINES = 20_000  # feeds and folders: several times the largest real lists
MAX_DEPTH = 32  # folders in folders; readers nest two or three
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE, whose BOM starts it
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_DECLARATION = re.compile(rb"""\A\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9._-]{1,40})""")
_PROLOG = re.compile(r"\A\s*<\?xml[^>]{0,200}\?>")
_CLOSING = re.compile(r"</(?:[a-z0-9_.-]{1,40}:)?opml\s*>")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,30}):")
_SPACES = re.compile(r"\s+")
# Characters XML 1.0 cannot carry at all, not even as a reference: dropped on export.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# What remains unsafe for a terminal is written as a character reference: the exported
# text keeps its value, and nothing in the file steers the terminal it is printed on.
_UNSAFE_OUT = re.compile(f"(?!\n){UNSAFE.pattern}")


class OpmlError(MonitorError):
    """The file cannot be read as a subscription list; the message names the file."""


@frozen
class OpmlFeed:
    """A feed as an OPML file lists it, within the configuration's rules."""

    url: str
    name: str | None
    tags: frozenset[str] = frozenset()


@frozen
class SkippedEntry:
    """An outline that was not imported. ``title`` and ``url`` are as the file gives them
    (untrusted: escape, shorten and redact before showing)."""

    title: str
    url: str
    reason: str


@frozen
class OpmlList:
    """What a file lists: the feeds, the entries skipped, and how many outlines repeated a
    URL listed earlier (kept once, with the folders and categories of every listing)."""

    title: str | None
    feeds: tuple[OpmlFeed, ...]
    skipped: tuple[SkippedEntry, ...]
    repeated: int = 0


def read_opml(path: Path) -> OpmlList:
    """The subscription list in ``path``; :class:`OpmlError` naming it if it is none."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise OpmlError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return parse_opml(data, str(path))


def parse_opml(data: bytes, source: str) -> OpmlList:
    """The subscription list in ``data``; ``source`` names it in errors."""
    if len(data) > MAX_BYTES:
        raise OpmlError(f"{source}: larger than {MAX_BYTES // 1024 // 1024} MiB")
    text = _decode(data, source)
    lowered = text.lower()
    if "<!doctype" in lowered or "<!entity" in lowered:
        raise OpmlError(
            f"{source}: has a <!DOCTYPE> or <!ENTITY> declaration; OPML has no DTD, and "
            "entity declarations are how XML expansion attacks work: refused"
        )
    if "<opml" not in lowered and ":opml" not in lowered:
        raise OpmlError(f"{source}: not an OPML document (no <opml> element)")
    if not _CLOSING.search(lowered):
        raise OpmlError(f"{source}: the document ends before </opml> (cut short?)")
    # A byte order mark is the one encoding sign lxml's HTML parser always obeys.
    body = codecs.BOM_UTF8 + _PROLOG.sub("", text.lstrip("\ufeff"), count=1).encode("utf-8")
    shape = _measure(body, source)
    try:
        result = listparser.parse(body)
    except Exception as exc:  # a listparser bug must be a clear error, not a traceback
        raise OpmlError(f"{source}: cannot be read as OPML ({type(exc).__name__})") from None
    if not str(result.get("version", "")).startswith("opml"):
        raise OpmlError(f"{source}: not an OPML document (no <opml> element)")
    feeds: list[OpmlFeed] = []
    skipped = [
        _not_a_feed(e, "an included list (type include, link or source), not a feed")
        for e in result.lists
    ]
    skipped += [
        _not_a_feed(e, "a web page (htmlUrl only), not a feed") for e in result.opportunities
    ]
    for entry in result.feeds:
        feed = _feed(entry)
        if isinstance(feed, OpmlFeed):
            feeds.append(feed)
        else:
            skipped.append(feed)
    title = _clean(str(result.get("meta", {}).get("title") or "")) or None
    return OpmlList(
        title=title, feeds=tuple(feeds), skipped=tuple(skipped), repeated=shape.repeated
    )


def _decode(data: bytes, source: str) -> str:
    """The text of the file: its byte order mark, else the encoding its XML declaration
    names, else UTF-8 (the XML default). Never guessed: a wrong guess would import wrong
    names without a word."""
    declared = _DECLARATION.match(data)
    found = [encoding for bom, encoding in _BOMS if data.startswith(bom)]
    found.append(declared.group(1).decode("ascii") if declared else "utf-8")
    encoding = found[0]
    try:
        return data.decode(encoding)
    except LookupError:
        raise OpmlError(f"{source}: declares an unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        raise OpmlError(
            f"{source}: not valid {encoding} (byte {exc.start}); save it as UTF-8 or declare "
            'its encoding in its first line (<?xml version="1.0" encoding="...">)'
        ) from None


class _Shape:
    """An lxml parser target that counts outlines and their nesting as the parser reads
    them, and stops the parse at once when either passes its bound: listparser keeps a copy
    of the folder path for each feed, so 20,000 outlines 20,000 deep would be 400 million."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.outlines = 0
        self.depth = 0
        self.urls: Counter[str] = Counter()

    @property
    def repeated(self) -> int:
        return sum(n - 1 for n in self.urls.values())

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag.rpartition(":")[2] != "outline":
            return
        self.outlines += 1
        self.depth += 1
        if self.outlines > MAX_OUTLINES:
            raise OpmlError(f"{self.source}: more than {MAX_OUTLINES} outlines; split the file")
        if self.depth > MAX_DEPTH:
            raise OpmlError(f"{self.source}: outlines nested more than {MAX_DEPTH} deep")
        url = attrib.get("xmlurl", "").strip()
        if url:
            self.urls[url] += 1

    def end(self, tag: str) -> None:
        if tag.rpartition(":")[2] == "outline":
            self.depth -= 1

    def data(self, data: str) -> None:
        pass

    def close(self) -> _Shape:
        return self


def _measure(body: bytes, source: str) -> _Shape:
    """The file's outlines counted by the parser listparser uses (the same reading)."""
    shape = _Shape(source)
    parser = lxml.etree.HTMLParser(target=shape, recover=True, no_network=True)
    try:
        lxml.etree.fromstring(body, parser)
    except OpmlError:
        raise
    except lxml.etree.LxmlError as exc:
        raise OpmlError(f"{source}: cannot be read as OPML ({exc})") from None
    return shape


def _feed(entry: Mapping[str, Any]) -> OpmlFeed | SkippedEntry:
    """One feed outline as listparser read it, or the reason it cannot be one of ours."""
    raw_url = str(entry.get("url") or "")
    raw_title = str(entry.get("title") or "")

    def skip(reason: str) -> SkippedEntry:
        return SkippedEntry(title=raw_title, url=raw_url, reason=reason)

    problem = _url_problem(raw_url)
    if problem:
        return skip(problem)
    name = _clean(raw_title) or None
    if name is not None:
        try:
            check_name(name)
        except ValueError as exc:
            return skip(f"name {exc}")
    tags: set[str] = set()
    for path in entry.get("categories") or ():
        for element in path:
            tag = _clean(str(element))
            if not tag:
                continue
            try:
                check_name(tag)
            except ValueError as exc:
                return skip(f"folder or category {exc}")
            tags.add(tag)
    return OpmlFeed(url=raw_url.strip(), name=name, tags=frozenset(tags))


def _url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a feed of ours, by the configuration's rules, or None. The URL
    is never quoted: it may carry a password or a token."""
    url = url.strip()
    if not url:
        return "no URL"
    if len(url) > MAX_URL:
        return f"URL longer than {MAX_URL} characters ({len(url)})"
    scheme = _SCHEME.match(url)
    if scheme is None:
        return "not an absolute URL (no http:// or https://)"
    if scheme.group(1).lower() not in ("http", "https"):
        return f"not an http(s) URL ({scheme.group(1).lower()}:)"
    try:
        check_http_url(url)
    except ValueError as exc:
        return f"invalid URL: {exc}"
    return None


def _not_a_feed(entry: Mapping[str, Any], reason: str) -> SkippedEntry:
    return SkippedEntry(
        title=str(entry.get("title") or ""), url=str(entry.get("url") or ""), reason=reason
    )


def _clean(text: str) -> str:
    """Runs of white space as one space, as an XML parser normalises attribute values
    (lxml's HTML parser keeps the line breaks of a title written over two lines)."""
    return _SPACES.sub(" ", text).strip()


def write_opml(feeds: Iterable[OpmlFeed], *, title: str, now: datetime) -> bytes:
    """An OPML 2.0 document listing ``feeds``, UTF-8."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = _xml_text(title)
    ET.SubElement(head, "dateCreated").text = email.utils.format_datetime(now, usegmt=True)
    ET.SubElement(head, "docs").text = "https://opml.org/spec2.opml"
    body = ET.SubElement(root, "body")
    by_tag: defaultdict[str, list[OpmlFeed]] = defaultdict(list)
    untagged: list[OpmlFeed] = []
    for feed in sorted(feeds, key=lambda f: ((f.name or "").casefold(), f.url)):
        for tag in feed.tags:
            by_tag[tag].append(feed)
        if not feed.tags:
            untagged.append(feed)
    for feed in untagged:
        _outline(body, feed)
    for tag in sorted(by_tag, key=lambda t: (t.casefold(), t)):
        folder = ET.SubElement(body, "outline", text=_xml_text(tag), title=_xml_text(tag))
        for feed in by_tag[tag]:
            _outline(folder, feed)
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode", xml_declaration=False)
    text = _UNSAFE_OUT.sub(lambda m: f"&#x{ord(m[0]):x};", text)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n").encode("utf-8")


def _outline(parent: ET.Element, feed: OpmlFeed) -> None:
    name = _xml_text(feed.name or "")
    attributes = {"type": "rss", "text": name, "title": name, "xmlUrl": _xml_text(feed.url)}
    categories = sorted((t for t in feed.tags if "/" not in t and "," not in t), key=str.casefold)
    if categories:
        attributes["category"] = ",".join(f"/{_xml_text(t)}" for t in categories)
    ET.SubElement(parent, "outline", attributes)


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("", text)


def export_name(name: str | None, title: str | None) -> str | None:
    """The name a feed is exported under: its own, else the title the feed gives itself,
    made a valid name (that is what it becomes when the file is imported)."""
    if name:
        return name
    cleaned = _clean(UNSAFE.sub(" ", title or ""))[:NAME_MAX].strip()
    return cleaned or None
