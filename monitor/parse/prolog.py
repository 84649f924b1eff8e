"""What a document's first bytes say, read before feedparser sees it: its encoding marks,
the Content-Type to hand feedparser, and XML entity declarations, which are refused.

Input: the raw body (and the HTTP Content-Type). Output: a Content-Type string, or whether
the document declares entities. It does not parse the feed.
"""

from __future__ import annotations

import codecs
import re

ENTITY_REFUSAL = "refusing XML entity declarations (possible XXE / entity expansion attack)"

_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
# feedparser's own end of the prolog (feedparser.sanitizer.replace_doctype): the entity
# declarations before this point are the ones its fallback parser would expand.
_FIRST_ELEMENT = re.compile(rb"<\w")
# What may precede a DOCTYPE in a well-formed prolog, which is what expat reads.
_PROLOG_MISC = re.compile(rb"\xef\xbb\xbf|\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)
# Byte patterns of wide encodings (XML 1.0 appendix F, as feedparser sniffs them), the codec
# and how many bytes of byte-order mark to skip. UTF-32 first: its LE mark starts FF FE.
_WIDE_MARKERS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", 4),
    (codecs.BOM_UTF32_BE, "utf-32-be", 4),
    (codecs.BOM_UTF16_LE, "utf-16-le", 2),
    (codecs.BOM_UTF16_BE, "utf-16-be", 2),
    (b"\x4c\x6f\xa7\x94", "cp037", 0),  # "<?xm" in EBCDIC
)


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
    for marker, codec, skip in _WIDE_MARKERS:
        if skip and body.startswith(marker):
            return codec
    return None


def _charset_parameter(content_type: str) -> str | None:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip(" \t\"'"):
            return value.strip(" \t\"'").lower()
    return None


def declares_entities(body: bytes) -> bool:
    """Whether the document declares XML entities, which are refused before parsing.

    Feeds have no use for them. Expat reads no external entity (feedparser turns off
    ``feature_external_ges``) and stops a billion-laughs expansion (expat >= 2.4), but
    then feedparser falls back to its loose parser, which re-declares the "safe" internal
    entities and expands them without limit, in time and memory. Checked: declarations
    before feedparser's end of prolog
    (what the loose parser sees); any, when a DOCTYPE opens the real prolog (expat's).
    """
    data = _ascii_view(body)
    first = _FIRST_ELEMENT.search(data)
    if _ENTITY_DECLARATION.search(data, 0, first.start() if first else len(data)):
        return True
    position = 0
    while (misc := _PROLOG_MISC.match(data, position)) and misc.end() > position:
        position = misc.end()
    if data[position : position + 9].upper() != b"<!DOCTYPE":
        return False
    return _ENTITY_DECLARATION.search(data, position) is not None


def _ascii_view(body: bytes) -> bytes:
    """The body in an ASCII-compatible encoding, so markup can be searched as bytes."""
    for marker, codec, skip in _WIDE_MARKERS:
        if body.startswith(marker):
            return body[skip:].decode(codec, "replace").encode("utf-8")
    head = body[:4]
    if b"\x00" not in head:
        return body
    bits = 32 if head.count(b"\x00") == 3 else 16
    order = "be" if head[:1] == b"\x00" else "le"
    return body.decode(f"utf-{bits}-{order}", "replace").encode("utf-8")
