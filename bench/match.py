"""Benchmark of the match stage: 10,000 terms in 1,000 watchlists over the corpus items.

Run: ``.venv/bin/python bench/match.py``. Prints MB/s (UTF-8 bytes of title + summary +
content) and items/s for :meth:`monitor.match.Matcher.match_item`, and, as the baseline in
the same run, a bare automaton scan of the same anchors over the already normalised text.
Targets (the issue): at least 20 MB/s on one core, and at least half the bare throughput.

Terms are drawn with a fixed seed from the corpus itself (words of middling frequency, rare
words, bigram phrases, Cyrillic words, prefixes, acronyms) so there are real hits.
"""

from __future__ import annotations

import argparse
import html
import io
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

import ahocorasick_rs
import feedparser

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.match import Matcher, Watchlist
from monitor.normalize import normalize, tokenize
from monitor.types import Item, MatchContext

CORPUS_DIRS = (
    Path(__file__).resolve().parent.parent / "tests" / "data" / "feeds",
    Path("/work/shared/corpus/feeds"),
)
_TAG = re.compile(r"<[^>]*>")
_CAPITALISED = re.compile(r"(?<![.!?]\s)\b[A-ZА-Я][a-zа-я]{3,}\b")
_NAME = re.compile(r"\b[A-ZА-Я][a-zа-я]{2,} [A-ZА-Я][a-zа-я]{2,}\b")
_ACRONYM = re.compile(r"\b[A-ZА-Я]{3,5}\b")


def plain(text: str) -> str:
    return html.unescape(_TAG.sub(" ", text or ""))


def load_items() -> list[Item]:
    """Every entry of every XML feed of the corpus, as plain-text items."""
    folder = next(d for d in CORPUS_DIRS if any(d.glob("*.xml")))
    items: list[Item] = []
    for path in sorted(folder.glob("*.xml")):
        parsed = feedparser.parse(
            io.BytesIO(path.read_bytes()), sanitize_html=False, resolve_relative_uris=False
        )
        for n, entry in enumerate(parsed.entries):
            content = " ".join(plain(c.get("value", "")) for c in entry.get("content", []))
            items.append(
                Item(
                    key=f"{path.name}#{n}",
                    guid=entry.get("id"),
                    link=entry.get("link"),
                    title=plain(entry.get("title", "")),
                    summary=plain(entry.get("summary", "")),
                    content=content,
                    author=entry.get("author", ""),
                    categories=tuple(t.get("term", "") for t in entry.get("tags", [])),
                    published=None,
                    updated=None,
                    content_hash=str(n),
                )
            )
    return items


def make_terms(items: list[Item], rng: random.Random, count: int, present: float) -> list[str]:
    """Realistic watchlist terms, mostly names, as monitors use.

    A share ``present`` of them is drawn from the corpus (names capitalised, or upper-case
    for acronyms, in most of their uses, occurring at most 30 times; rarer words; bigram
    names; Cyrillic names; prefixes): these have real hits. The others are made-up names
    built from syllables of real ones (not in the corpus), like most of the terms of a
    large set of watchlists on any given day's news: they only load the automaton.
    """
    words: Counter[str] = Counter()
    capitalised: Counter[str] = Counter()
    names: set[str] = set()
    acronyms: Counter[str] = Counter()
    for item in items:
        text = f"{item.title}\n{item.summary}\n{item.content}"
        words.update(tokenize(normalize(text)))
        capitalised.update(_CAPITALISED.findall(text))
        names.update(_NAME.findall(text))
        acronyms.update(_ACRONYM.findall(text))

    def share(word: str, n: int) -> float:
        return n / max(1, words[normalize(word)])

    proper = sorted(w for w, n in capitalised.items() if share(w, n) >= 0.8 and n <= 30)
    upper = sorted(w for w, n in acronyms.items() if share(w, n) >= 0.8 and n <= 30)
    rare = sorted(w for w, n in words.items() if 2 <= n <= 20 and w.isalpha() and len(w) > 5)
    cyrillic = [w for w in proper if re.match("[А-Я]", w)]
    known = set(proper)
    pairs = sorted(p for p in names if all(w in known for w in p.split()))
    pools = [
        (0.40, proper, "{}"),
        (0.15, pairs, '"{}"'),
        (0.12, cyrillic, "{}"),
        (0.13, rare, "{}"),
        (0.10, [w[:-2] for w in proper if len(w) > 7], "{}*"),
        (0.10, upper, "{}"),
    ]
    syllables = sorted({w[i : i + 3].lower() for w in proper for i in range(0, len(w) - 2, 3)})

    def made_up() -> str:
        while True:
            name = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 3))).capitalize()
            if normalize(name) not in words:
                return name

    chosen = rng.choices(pools, [weight for weight, _, _ in pools], k=count)
    return [
        shape.format(rng.choice(pool)) if rng.random() < present else made_up()
        for _, pool, shape in chosen
    ]


def make_watchlists(terms: list[str], rng: random.Random, per_list: int) -> list[Watchlist]:
    """Mostly OR lists; some with an AND group, a NOT, a NEAR or a title: scope."""
    out: list[Watchlist] = []
    for n in range(0, len(terms), per_list):
        chunk = terms[n : n + per_list]
        shape = rng.random()
        if shape < 0.6:
            query = " OR ".join(chunk)
        elif shape < 0.75:
            query = f"({' OR '.join(chunk[:-2])}) AND ({chunk[-2]} OR {chunk[-1]})"
        elif shape < 0.85:
            query = f"({' OR '.join(chunk[:-1])}) NOT {chunk[-1]}"
        elif shape < 0.95:
            query = f"{' OR '.join(chunk[:-2])} OR {chunk[-2]} NEAR/5 {chunk[-1]}"
        else:
            query = f"title:({' OR '.join(chunk)})"
        out.append(Watchlist(name=f"w{n // per_list}", query=query))
    return out


def timed(run: object, repeat: int) -> float:
    """Best of ``repeat`` runs, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def run(items: list[Item], terms: list[str], watchlists: list[Watchlist], repeat: int) -> None:
    """Time match_item, its hit-finding part, normalisation and the bare automaton."""
    context = MatchContext(feed_name="bench", feed_url="file:bench")
    texts = [t for i in items for t in (i.title, i.summary, i.content) if t]
    size = sum(len(t.encode()) for t in texts) / 1e6
    start = time.perf_counter()
    matcher = Matcher(watchlists)
    build = time.perf_counter() - start
    matched = sum(len(matcher.match_item(i, context)) for i in items)
    full = timed(lambda: [matcher.match_item(i, context) for i in items], repeat)
    find = timed(lambda: [matcher._find(i, context) for i in items], repeat)
    normalised = [normalize(t) for t in texts]
    bare_automaton = ahocorasick_rs.AhoCorasick(
        matcher._anchors,
        matchkind=ahocorasick_rs.MatchKind.LeftmostLongest,
        implementation=ahocorasick_rs.Implementation.DFA,
    )
    bare = timed(lambda: [bare_automaton.find_matches_as_indexes(t) for t in normalised], repeat)
    norm = timed(lambda: [normalize(t) for t in texts], repeat)
    per_item = matched / len(items)
    print(f"  watchlists {len(watchlists)}, terms {len(terms)}, anchors {len(matcher._anchors)}")
    print(f"  build {build * 1000:.0f} ms; matched (item, watchlist) pairs {matched}")
    print(f"    = {per_item:.2f} per item, {100 * per_item / len(watchlists):.2f}% of watchlists")
    print(f"  match_item       {size / full:6.1f} MB/s {len(items) / full:8.0f} items/s")
    print(f"    finding hits   {size / find:6.1f} MB/s {len(items) / find:8.0f} items/s")
    print(f"    normalising    {size / norm:6.1f} MB/s")
    print(f"  bare automaton   {size / bare:6.1f} MB/s {len(items) / bare:8.0f} items/s")
    print(f"  match_item / bare automaton {bare / full:.2f} (finding hits: {bare / find:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--terms", type=int, default=10_000)
    parser.add_argument("--watchlists", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--present",
        type=float,
        action="append",
        help="share of terms drawn from the corpus (repeatable; default: 1.0 and 0.2)",
    )
    args = parser.parse_args()
    items = load_items()
    size = sum(len(t.encode()) for i in items for t in (i.title, i.summary, i.content)) / 1e6
    print(f"corpus: {len(items)} items, {size:.2f} MB (title+summary+content, UTF-8)")
    for present in args.present or [1.0, 0.2]:
        rng = random.Random(20261125)
        terms = make_terms(items, rng, args.terms, present)
        watchlists = make_watchlists(terms, rng, max(1, args.terms // args.watchlists))
        print(f"terms drawn from the corpus: {present:.0%}")
        run(items, terms, watchlists, args.repeat)


if __name__ == "__main__":
    main()
