"""Bounded decoding of a response body's Content-Encoding, for the fetch stage.

httpx inflates each network chunk in one go, so a small gzip or brotli bomb (or stacked
encodings such as ``gzip, gzip``) expands whole in memory before any size check can see
it. ``BodyDecoder`` undoes each layer with bounded output per step instead, so the fetcher
can stop reading the moment the decoded body passes its cap.

The number of codings is bounded too (``MAX_CODINGS``): each is a decoder kept for the
whole body, and no server has a reason to stack more than a couple.

Input: the Content-Encoding header, then the raw body chunks as they arrive.
Output: decoded pieces of at most about ``PIECE`` bytes each; ``FetchError`` for too many
codings, an unsupported one or a corrupt body.
Does not: read from the network, count the body against the cap (the fetcher does that),
or sniff the media type or charset (the parse stage does).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Protocol

import brotli

from monitor.errors import FetchError

PIECE = 64 * 1024  # bound on one decoded piece (brotli treats it as approximate)
MAX_CODINGS = 4


class _Layer(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]: ...


class _Identity:
    def feed(self, data: bytes) -> Iterator[bytes]:
        if data:
            yield data


class _Zlib:
    """gzip or deflate. ``deflate`` is meant to be zlib-wrapped (RFC 9110 section 8.4.1.2)
    but some servers send raw deflate: like httpx, fall back if the first chunk fails."""

    def __init__(self, wbits: int, *, raw_fallback: bool = False) -> None:
        self._inflater = zlib.decompressobj(wbits)
        self._raw_fallback = raw_fallback

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._raw_fallback:
            self._raw_fallback = False
            try:
                first = self._inflater.decompress(data, PIECE)
            except zlib.error:
                self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                first = self._inflater.decompress(data, PIECE)
            yield first
            data = self._inflater.unconsumed_tail
            if not data and len(first) < PIECE:
                return
        while not self._inflater.eof:
            piece = self._inflater.decompress(data, PIECE)
            data = self._inflater.unconsumed_tail
            if piece:
                yield piece
            # A full piece may leave output pending in zlib even with no input left.
            if not data and len(piece) < PIECE:
                return


class _Brotli:
    def __init__(self) -> None:
        self._decompressor = brotli.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._decompressor.is_finished():
            return
        piece = self._decompressor.process(data, output_buffer_limit=PIECE)
        yield piece
        # Drain with empty input, as brotli requires, until it stops producing output.
        while not self._decompressor.is_finished():
            piece = self._decompressor.process(b"", output_buffer_limit=PIECE)
            if piece:
                yield piece
            elif self._decompressor.can_accept_more_data():
                return


def _layer(coding: str) -> _Layer | None:
    if coding in ("identity", ""):
        return _Identity()
    if coding in ("gzip", "x-gzip"):
        return _Zlib(zlib.MAX_WBITS | 16)
    if coding == "deflate":
        return _Zlib(zlib.MAX_WBITS, raw_fallback=True)
    if coding == "br":
        return _Brotli()
    return None


class BodyDecoder:
    """Undoes the Content-Encoding layers of a body, a bounded piece at a time.

    Pieces are produced lazily: a caller that stops iterating once it has seen enough
    never makes the decoder inflate more than one more piece.
    """

    def __init__(self, url: str, content_encoding: str) -> None:
        self._url = url
        codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
        if len(codings) > MAX_CODINGS:
            message = f"too many Content-Encoding codings ({len(codings)}, at most {MAX_CODINGS})"
            raise FetchError(url, message)
        layers: list[_Layer] = []
        # Codings are listed in the order they were applied: undo them in reverse.
        for coding in reversed(codings):
            layer = _layer(coding)
            if layer is None:
                raise FetchError(url, f"unsupported Content-Encoding {coding[:40]!r}")
            layers.append(layer)
        self._layers = layers
        self._name = ", ".join(codings)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decoded pieces of ``data``; raises ``FetchError`` on corrupt input."""
        try:
            yield from self._decode(data)
        except (zlib.error, brotli.error) as exc:
            raise FetchError(self._url, f"cannot decode {self._name} body: {exc}") from exc

    def _decode(self, data: bytes) -> Iterator[bytes]:
        """Depth first through the layers, with a stack of the pieces each layer has still
        to give: a piece goes through every layer before the next one is produced, and
        the depth of the stack, not of the call stack, follows the number of layers."""
        stack: list[Iterator[bytes]] = [iter((data,))]
        while stack:
            piece = next(stack[-1], None)
            if piece is None:
                stack.pop()
            elif len(stack) > len(self._layers):
                if piece:
                    yield piece
            else:
                stack.append(self._layers[len(stack) - 1].feed(piece))
