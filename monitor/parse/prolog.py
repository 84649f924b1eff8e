"""What a document's prolog says, read before feedparser parses it: its encoding, and XML
entity declarations, which are refused.

Input: the raw body and the HTTP Content-Type. Output: a :class:`Document`, the body as
feedparser's parsers read it (decoded by feedparser's own code, so the two cannot disagree
about the encoding), and whether it declares entities. It does not parse the feed.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

from feedparser.encodings import convert_to_utf8

from monitor.types import frozen

ENTITY_REFUSAL = "refusing XML entity declarations (possible XXE / entity expansion attack)"

_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
# feedparser's own end of the prolog (feedparser.sanitizer.replace_doctype): the entity
# declarations before this point are the ones its fallback parser would expand.
_FIRST_ELEMENT = re.compile(rb"<\w")
# What may precede a DOCTYPE in a well-formed prolog, which is what expat reads.
_PROLOG_MISC = re.compile(rb"\xef\xbb\xbf|\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)
# Byte-order marks of wide encodings and their codecs. UTF-32 first: its LE mark starts FF FE.
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


@frozen
class Document:
    """A document as feedparser's parsers read it."""

    data: bytes  # UTF-8; the body itself when no encoding decoded it
    content_type: str  # what to tell feedparser the data is
    encoding: str  # what the body was decoded as ("" when nothing decoded it)
    problem: Exception | None  # feedparser's complaint about the encoding, if any


_UTF8_XML = "application/xml; charset=utf-8"
# A numeric character reference that may name no character (a surrogate, a number beyond
# U+10FFFF or too long to convert): feedparser's lenient parser raises on one, which would
# cost the whole feed. Shorter ones are always characters, and are left to the regex.
_LONG_REFERENCE = re.compile(rb"&#(?:[xX]0*+([0-9a-fA-F]{4,}+)|0*+([0-9]{5,}+));")
_REPLACEMENT_REFERENCE = b"&#65533;"


def read_document(body: bytes, content_type: str) -> Document:
    """The body decoded as feedparser decodes it (``feedparser.encodings.convert_to_utf8``:
    the charset, the XML declaration, the byte-order mark or a guess, tried in its order),
    once: the entity check reads what the parsers will read, in whatever encoding (UTF-7,
    EBCDIC, UTF-16 without a byte-order mark), and feedparser is given the UTF-8, so a
    guess is not made twice. A character reference that names no character becomes one
    to U+FFFD. feedparser's own errors pass through: it may raise anything on a hostile
    prolog."""
    headers = {"content-type": xml_content_type(body, content_type)}
    state: dict[str, Any] = {}
    data = convert_to_utf8(headers, body, state)
    encoding = state.get("encoding") or ""
    problem = state.get("bozo_exception")
    if not encoding:  # feedparser then reads the body itself, as UTF-8 with replacements
        data, content_type = body, headers["content-type"]
    else:
        content_type = _UTF8_XML
    data = _LONG_REFERENCE.sub(_character_reference, data) if b"&#" in data else data
    return Document(data=data, content_type=content_type, encoding=encoding, problem=problem)


def _character_reference(found: re.Match[bytes]) -> bytes:
    """The reference itself if it names a character, else a reference to U+FFFD."""
    hexadecimal, decimal = found.groups()
    digits = hexadecimal or decimal
    if len(digits) > 7:
        return _REPLACEMENT_REFERENCE
    code = int(digits, 16 if hexadecimal else 10)
    return found[0] if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else _REPLACEMENT_REFERENCE


def xml_content_type(body: bytes, content_type: str) -> str:
    """The Content-Type to show feedparser: a neutral XML type with the real charset.

    feedparser follows RFC 3023, under which ``text/xml`` without a charset means
    US-ASCII, so every non-ASCII feed would carry an "encoding overridden" warning;
    RFC 7303 replaced that with "use the BOM or the XML declaration", which
    ``application/xml`` gets us. A byte-order mark outranks the charset parameter
    (RFC 7303 section 3.2). A non-XML type (``text/html`` is common) would only add a
    spurious "not an XML media type" warning.
    """
    charset = _bom_charset(body) or _charset_parameter(content_type)
    return f"application/xml; charset={charset}" if charset else "application/xml"


def _bom_charset(body: bytes) -> str | None:
    if body.startswith(codecs.BOM_UTF8):
        return "utf-8"
    for marker, codec in _BYTE_ORDER_MARKS:
        if body.startswith(marker):
            return codec
    return None


def _charset_parameter(content_type: str) -> str | None:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip(" \t\"'"):
            return value.strip(" \t\"'").lower()
    return None


def declares_entities(document: Document) -> bool:
    """Whether the document declares XML entities, which are refused before parsing.

    Feeds have no use for them. Expat reads no external entity (feedparser turns off
    ``feature_external_ges``) and stops a billion-laughs expansion (expat >= 2.4), but
    then feedparser falls back to its loose parser, which re-declares the "safe" internal
    entities and expands them without limit, in time and memory. Checked, in the text the
    parsers read: declarations before feedparser's end of prolog (what the loose parser
    sees); any, when a DOCTYPE opens the real prolog (expat's).
    """
    data = document.data
    first = _FIRST_ELEMENT.search(data)
    if _ENTITY_DECLARATION.search(data, 0, first.start() if first else len(data)):
        return True
    position = 0
    while (misc := _PROLOG_MISC.match(data, position)) and misc.end() > position:
        position = misc.end()
    if data[position : position + 9].upper() != b"<!DOCTYPE":
        return False
    return _ENTITY_DECLARATION.search(data, position) is not None
