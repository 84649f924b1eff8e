"""Feed host for the polling benchmark: N feeds from the corpus on several loopback hosts.

Runs as its own process (``python bench/feedhost.py ...``) so that serving never competes
with the monitor for its GIL. One asyncio HTTP/1.1 keep-alive server listens on each of
``127.0.0.1`` ... ``127.0.0.<hosts>`` (port 0, never a wildcard address); feed ``i`` lives
at ``http://127.0.0.<1 + i % hosts>:<port>/feeds/<i>`` and serves corpus file
``i % len(files)`` with its own ETag, answering ``If-None-Match`` with 304.

Control is a line protocol on stdin/stdout, one JSON object per line:
- on start it prints ``{"ready": true, "addresses": [[host, port], ...]}``;
- ``{"bump": [ids]}`` adds one new item (unique guid) to each of those feeds and gives
  them a new ETag, answering ``{"bumped": n}``;
- ``{"stats": true}`` answers the response counts by status and the connections accepted
  since start;
- end of stdin stops the server (so it never outlives the benchmark).

It does not compress, chunk, redirect or fail on purpose: it is a fast, well-behaved origin,
so that the figures measure the monitor. Also imported by ``poll.py`` for the file choice
and the item injection, so both sides agree on what each feed serves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPORA = (REPO / "tests" / "data" / "feeds", Path("/work/shared/corpus/feeds"))
CONTENT_TYPE = "application/xml"
IDLE_TIMEOUT = 60.0  # seconds a keep-alive connection may sit idle
MAX_HEAD = 16 * 1024  # bytes of request line + headers
MAX_BODY = 64 * 1024  # request bodies are read and ignored, up to this size
# Where a new item goes: before the root's end for RSS 1.0 (items are siblings of the
# channel there), else inside the RSS channel or the Atom feed.
_RDF_END = re.compile(rb"</(?:\w+:)?RDF>")
_ENDS = (b"</channel>", b"</feed>")
_TOPICS = ("Kazakhstan and the CSTO", "Tokayev visits Moscow", "Weather in Lisbon")
_REASONS = {200: "OK", 304: "Not Modified", 400: "Bad Request", 404: "Not Found"}


def default_corpus() -> Path:
    """The test corpus of the repository when present, else the shared one."""
    for path in CORPORA:
        if path.is_dir() and any(path.glob("*.xml")):
            return path
    raise SystemExit(f"no feed corpus found in {', '.join(map(str, CORPORA))}")


def corpus_files(corpus: Path) -> list[Path]:
    """RSS, Atom and RDF documents only (JSON Feed is not what the baseline can read)."""
    return sorted(corpus.glob("*.xml"))


def inject_item(body: bytes, *, guid: str, title: str) -> bytes | None:
    """The document with one new item before its closing tag, or None when it has none
    (a truncated feed). The item is ASCII, so it is valid in every 8-bit encoding. It is
    dated now, as news is: an old date would keep it out of stories, and their cost out of
    the figures."""
    now = datetime.now(UTC)
    rdf = list(_RDF_END.finditer(body))
    if rdf:
        at = rdf[-1].start()
        item = f"<item><title>{title}</title><link>http://example.org/{guid}</link></item>"
    elif b"</channel>" in body:
        at = body.rfind(b"</channel>")
        item = (
            f"<item><title>{title}</title><guid isPermaLink='false'>{guid}</guid>"
            f"<link>http://example.org/{guid}</link>"
            f"<pubDate>{format_datetime(now, usegmt=True)}</pubDate>"
            f"<description>{title}: a new item for the benchmark.</description></item>"
        )
    elif b"</feed>" in body:
        at = body.rfind(b"</feed>")
        item = (
            f"<entry><title>{title}</title><id>urn:bench:{guid}</id>"
            f"<link href='http://example.org/{guid}'/>"
            f"<updated>{now.isoformat(timespec='seconds')}</updated>"
            f"<summary>{title}: a new item for the benchmark.</summary></entry>"
        )
    else:
        return None
    return body[:at] + item.encode("ascii") + body[at:]


def injectable(body: bytes) -> bool:
    return bool(_RDF_END.search(body)) or any(end in body for end in _ENDS)


@dataclass(slots=True)
class _Feed:
    body: bytes
    etag: str
    version: int = 0


class FeedHost:
    """The feeds and their HTTP handling; one instance serves every address."""

    def __init__(self, files: list[Path], feeds: int) -> None:
        bodies = [f.read_bytes() for f in files]
        self.feeds = [_Feed(body=bodies[i % len(bodies)], etag=f'"{i}-0"') for i in range(feeds)]
        self.counts: Counter[int] = Counter()
        self.connections = 0  # accepted: shows how well the client reuses keep-alive

    def bump(self, ids: list[int]) -> int:
        done = 0
        for i in ids:
            feed = self.feeds[i]
            version = feed.version + 1
            title = f"{_TOPICS[i % len(_TOPICS)]} (bench {i}.{version})"
            body = inject_item(feed.body, guid=f"bench-{i}-{version}", title=title)
            if body is not None:
                feed.body, feed.version, feed.etag = body, version, f'"{i}-{version}"'
                done += 1
        return done

    def respond(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict, bytes]:
        prefix, _, number = path.rpartition("/")
        if method not in {"GET", "HEAD"} or prefix != "/feeds" or not number.isdigit():
            return 404, {}, b"not found\n"
        index = int(number)
        if index >= len(self.feeds):
            return 404, {}, b"not found\n"
        feed = self.feeds[index]
        if headers.get("if-none-match") == feed.etag:
            return 304, {"ETag": feed.etag}, b""
        return 200, {"ETag": feed.etag, "Content-Type": CONTENT_TYPE}, feed.body

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One keep-alive connection: requests in order until close, error or idleness."""
        self.connections += 1
        try:
            while await self._one(reader, writer):
                pass
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        except TimeoutError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        async with asyncio.timeout(IDLE_TIMEOUT):
            head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            self._write(writer, 400, {"Connection": "close"}, b"bad request\n", head_only=False)
            await writer.drain()
            return False
        method, target, version = parts
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        length = headers.get("content-length", "0")
        if length.isdigit() and 0 < int(length) <= MAX_BODY:
            await reader.readexactly(int(length))
        status, extra, body = self.respond(method, target.split("?", 1)[0], headers)
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        extra = {**extra, "Connection": "keep-alive" if keep else "close"}
        self._write(writer, status, extra, body, head_only=method == "HEAD")
        await writer.drain()
        return keep

    def _write(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        headers: dict[str, str],
        body: bytes,
        *,
        head_only: bool,
    ) -> None:
        self.counts[status] += 1
        fields = {**headers, "Content-Length": str(len(body))} if status != 304 else headers
        head = f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
        writer.write(head.encode("latin-1"))
        if body and not head_only and status != 304:
            writer.write(body)


async def control(host: FeedHost, servers: list[asyncio.Server]) -> None:
    """Answer commands on stdin until it closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=16 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    addresses = [list(s.sockets[0].getsockname()[:2]) for s in servers]
    _reply({"ready": True, "addresses": addresses})
    while line := await reader.readline():
        command = json.loads(line)
        if "bump" in command:
            _reply({"bumped": host.bump([int(i) for i in command["bump"]])})
        elif "stats" in command:
            responses = {str(k): v for k, v in sorted(host.counts.items())}
            _reply({"responses": responses, "connections": host.connections})
        else:
            _reply({"error": f"unknown command {command!r}"})


def _reply(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def main_async(args: argparse.Namespace) -> None:
    files = corpus_files(Path(args.corpus) if args.corpus else default_corpus())
    host = FeedHost(files, args.feeds)
    servers = [
        await asyncio.start_server(host.serve, f"127.0.0.{n}", 0, limit=MAX_HEAD, backlog=1024)
        for n in range(1, args.hosts + 1)
    ]
    try:
        await control(host, servers)
    finally:
        for server in servers:
            server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=50, choices=range(1, 255), metavar="1..254")
    parser.add_argument("--corpus", help="directory of *.xml feeds (default: the test corpus)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
