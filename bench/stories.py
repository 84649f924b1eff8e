"""Benchmark of the "same story" decision (monitor.stories): quality on labelled sets, and cost.

Run: ``.venv/bin/python bench/stories.py`` (under a minute). Every set is clustered the way
the store does it: for each item in arrival order, its features; the members of the window
sharing any of its keys (an in-memory dict key -> member ids stands in for the indexed
table), those sharing the most keys first, at most the store's cap, each scored from its
stored text; the item joins the story of the best-scoring candidate that passes the
threshold, and every other story with a candidate that passes merges into it (the item
bridges them); else it starts a story. Single linkage over every pair, without the index
and the cap, is printed too for the Google News sets. ``--false-merges`` prints each link
that joined two different stories, with both headlines and the score.

Sets (bench/data/stories; origins in MANIFEST.tsv and SOURCES.tsv there):

- Google News top stories, RSS and Atom (2022-07-27): each item lists 4-6 headlines of one
  story from different outlets, as Google grouped them. Headlines alone (no summary); each
  link is a unique news.google.com redirect, so links cannot help; the arrival order is
  shuffled (seeded, several orders averaged), so the grouping in the file is not used.
  B-cubed precision and recall.
- Real feeds over the same days, with title, summary and link, labelled by hand
  (``*.jsonl``): pairwise precision and recall (pairs of one "topic" but different stories,
  such as a follow-up and the news it follows, count neither way), and strict B-cubed.
- English/Russian (hand-written: no Russian feed of the corpus overlaps an English one in
  time): only the pairs across languages are scored.

A sweep of thresholds around the chosen one is printed for each.

Cost: features time per item, and decision time per item (dict lookup, then candidates
scored from their stored text by the item's :class:`~monitor.stories.similar.Scorer`, as the
store does) against a window of ``--window`` synthetic items made of pieces of the sets'
texts (see :func:`synthesise`); and the cost per candidate, for a decision at the cap.
"""

from __future__ import annotations

import argparse
import html
import io
import json
import random
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import feedparser

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.errors import ParseError
from monitor.parse.feed import parse_feed
from monitor.store.stories import CANDIDATES as MAX_CANDIDATES  # the store's cap
from monitor.stories import (
    THRESHOLD,
    StoryFeatures,
    dump_features,
    story_features,
)
from monitor.stories.similar import Scorer

DATA = Path(__file__).resolve().parent / "data" / "stories"
FEEDS = Path(__file__).resolve().parent.parent / "tests" / "data" / "feeds"
GOOGLE_NEWS = ("rss2-google-news-topstories.xml", "atom-google-news-topstories.xml")
_HEADLINE = re.compile(
    r'<a href="(?P<link>[^"]*)"[^>]*>(?P<title>.*?)</a>(?:&nbsp;|\xa0|\s)*<font[^>]*>'
    r"(?P<outlet>.*?)</font>",
    re.DOTALL,
)
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True, slots=True, kw_only=True)
class Labelled:
    """One item of a labelled set: its text, its story, and its topic (items of one topic
    but different stories form "related" pairs, which count neither way)."""

    title: str
    summary: str
    link: str | None
    story: str
    topic: str
    language: str = "en"


# ----------------------------------------------------------------------------- sets


def google_news(name: str) -> list[Labelled]:
    """The headlines of each item's list, labelled with the item they are listed in."""
    parsed = feedparser.parse(io.BytesIO((DATA / name).read_bytes()), sanitize_html=False)
    out = []
    for n, entry in enumerate(parsed.entries):
        found = list(_HEADLINE.finditer(entry.get("summary", "")))
        for hit in found:
            title = html.unescape(_TAG.sub("", hit["title"]))
            out.append(
                Labelled(title=title, summary="", link=hit["link"], story=str(n), topic=str(n))
            )
    return out


def labelled_set(path: Path) -> list[Labelled]:
    """A JSON-lines set, in arrival order (its ``published`` field, then file order)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    rows.sort(key=lambda r: r.get("published") or "")
    return [
        Labelled(
            title=r["title"],
            summary=r.get("summary", ""),
            link=r.get("link"),
            story=r["story"],
            topic=r.get("topic") or r["story"],
            language=r.get("language", "en"),
        )
        for r in rows
    ]


# ----------------------------------------------------------------------------- clustering


def cluster(
    features: Sequence[StoryFeatures],
    threshold: float,
    limit: int = MAX_CANDIDATES,
    links: list[tuple[int, int, float]] | None = None,
) -> list[int]:
    """The story of each item, in arrival order, as the store assigns them: members are
    kept as their stored text and loaded back as candidates; the item joins the story of
    its best-scoring candidate at or above ``threshold``, and every other story with a
    candidate there merges into that one. ``links`` collects (item, candidate, score) for
    each candidate that decided a join or a merge."""
    index: dict[int, list[int]] = defaultdict(list)
    stored: list[str] = []
    parent: list[int] = []

    def root(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for n, item in enumerate(features):
        best: dict[int, tuple[float, int]] = {}
        scorer = Scorer(item)
        for m in candidates(index, item)[:limit]:
            score = scorer.score_stored(stored[m])
            story = root(m)
            if score >= threshold and score > best.get(story, (-1.0, -1))[0]:
                best[story] = (score, m)
        parent.append(n)
        if best:
            into = max(best, key=lambda story: best[story][0])
            for story in best:
                parent[story] = into
            parent[n] = into
            if links is not None:
                links += [(n, m, score) for score, m in best.values()]
        stored.append(dump_features(item))
        for key in item.keys:
            index[key].append(n)
    return [root(n) for n in range(len(features))]


def candidates(index: dict[int, list[int]], item: StoryFeatures) -> list[int]:
    """Members sharing a key with ``item``, those sharing the most first, then the newest
    (the store's order)."""
    shared = Counter(m for key in set(item.keys) for m in index.get(key, ()))
    return sorted(shared, key=lambda m: (shared[m], m), reverse=True)


def bcubed(found: Sequence[int], truth: Sequence[str]) -> tuple[float, float]:
    by_found: dict[int, list[int]] = defaultdict(list)
    by_truth: dict[str, list[int]] = defaultdict(list)
    for n, (f, t) in enumerate(zip(found, truth, strict=True)):
        by_found[f].append(n)
        by_truth[t].append(n)
    precision = recall = 0.0
    for f, t in zip(found, truth, strict=True):
        same = sum(1 for m in by_found[f] if truth[m] == t)
        precision += same / len(by_found[f])
        recall += same / len(by_truth[t])
    return precision / len(found), recall / len(found)


def pairwise(
    found: Sequence[int], items: Sequence[Labelled], across: bool = False
) -> tuple[float, float, int, int, int]:
    """Precision, recall, true pairs found, false merges, true pairs; related pairs skipped;
    ``across``: only pairs of items in different languages."""
    merged = right = wrong = 0
    total = 0
    for i in range(len(items)):
        for j in range(i):
            a, b = items[i], items[j]
            if across and a.language == b.language:
                continue
            if a.story == b.story:
                total += 1
                right += found[i] == found[j]
            elif found[i] == found[j] and a.topic != b.topic:
                wrong += 1
            merged += found[i] == found[j] and (a.story == b.story or a.topic != b.topic)
    precision = right / merged if merged else 1.0
    return precision, right / total if total else 1.0, right, wrong, total


def featurise(items: Iterable[Labelled]) -> list[StoryFeatures]:
    return [story_features(title=i.title, summary=i.summary, link=i.link) for i in items]


# ----------------------------------------------------------------------------- reports


def report_google(thresholds: Sequence[float], seeds: int) -> None:
    print("Google News top stories: headlines alone, B-cubed P/R (mean of seeded orders)")
    print(f"  {'threshold':>9} " + " ".join(f"{name[:4]:>13}" for name in GOOGLE_NEWS))
    sets = {name: google_news(name) for name in GOOGLE_NEWS}
    for threshold in thresholds:
        cells = []
        for items in sets.values():
            ps, rs = [], []
            for seed in range(seeds):
                order = list(range(len(items)))
                random.Random(seed).shuffle(order)
                shuffled = [items[n] for n in order]
                found = cluster(featurise(shuffled), threshold)
                p, r = bcubed(found, [i.story for i in shuffled])
                ps.append(p)
                rs.append(r)
            cells.append(f"{sum(ps) / seeds:.3f}/{sum(rs) / seeds:.3f}")
        mark = " <- chosen" if threshold == THRESHOLD else ""
        print(f"  {threshold:>9.2f} " + " ".join(f"{c:>13}" for c in cells) + mark)
    sizes = ", ".join(f"{len(s)} headlines" for s in sets.values())
    print(f"  ({sizes}; {seeds} orders)")
    print("  single linkage over every pair (no index; stories merge when an item bridges them):")
    rows: dict[str, Callable[[list[Labelled]], Callable[[int, int], bool]]] = {
        f"this rule at {THRESHOLD:.2f}": _by_rule,
        "raw word-set Jaccard >= 0.20": lambda items: _by_jaccard(items, 0.2),
        "raw word-set Jaccard >= 0.25": lambda items: _by_jaccard(items, 0.25),
    }
    for label, make in rows.items():
        cells = []
        for items in sets.values():
            p, r = bcubed(linkage(len(items), make(items)), [i.story for i in items])
            cells.append(f"{p:.3f}/{r:.3f}")
        print(f"    {label:<31}" + " ".join(f"{c:>13}" for c in cells))


def _by_rule(items: list[Labelled]) -> Callable[[int, int], bool]:
    features = featurise(items)
    scorers = [Scorer(f) for f in features]
    return lambda i, j: scorers[j].score(features[i]) >= THRESHOLD


def _by_jaccard(items: list[Labelled], threshold: float) -> Callable[[int, int], bool]:
    """The baseline: Jaccard similarity of the lower-cased word sets of the headlines."""
    words = [frozenset(_WORDS.findall(i.title.lower())) for i in items]
    return lambda i, j: len(words[i] & words[j]) / max(len(words[i] | words[j]), 1) >= threshold


def linkage(count: int, same: Callable[[int, int], bool]) -> list[int]:
    """Single linkage over every pair of ``count`` items (union-find)."""
    parent = list(range(count))

    def root(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for i in range(count):
        for j in range(i):
            if same(i, j):
                parent[root(i)] = root(j)
    return [root(n) for n in range(count)]


_WORDS = re.compile(r"\w+")


def report_labelled(thresholds: Sequence[float]) -> None:
    paths = sorted(DATA.glob("*.jsonl"))
    if not paths:
        return
    print("\nLabelled sets with summaries: pairwise P/R (right/false merges/true pairs), B-cubed")
    for path in paths:
        items = labelled_set(path)
        features = featurise(items)
        stories = len({i.story for i in items})
        across = len({i.language for i in items}) > 1
        kind = " (pairs across languages only)" if across else ""
        print(f"  {path.stem}: {len(items)} items, {stories} stories{kind}")
        for threshold in thresholds:
            found = cluster(features, threshold)
            p, r, right, wrong, total = pairwise(found, items, across)
            bp, br = bcubed(found, [i.story for i in items])
            mark = " <- chosen" if threshold == THRESHOLD else ""
            print(
                f"    {threshold:>5.2f}  pairs P {p:.3f} R {r:.3f} ({right}/{wrong}/{total})"
                f"  B3 P {bp:.3f} R {br:.3f}{mark}"
            )


def report_false_merges(threshold: float) -> None:
    """Each link that joined two items of different stories (different topics, for the
    labelled sets), with both headlines and the score: what a rule should have refused."""
    print(f"\nFalse merges at {threshold:.2f}: score, then both headlines")
    sets = {name: google_news(name) for name in GOOGLE_NEWS}
    sets |= {p.stem: labelled_set(p) for p in sorted(DATA.glob("*.jsonl"))}
    for name, items in sets.items():
        links: list[tuple[int, int, float]] = []
        cluster(featurise(items), threshold, links=links)
        wrong = [
            (score, items[n], items[m])
            for n, m, score in links
            if items[n].story != items[m].story and items[n].topic != items[m].topic
        ]
        print(f"  {name}: {len(wrong)}")
        for score, a, b in sorted(wrong, key=lambda w: -w[0]):
            print(f"    {score:.3f}  {a.title[:90]}\n           {b.title[:90]}")


# ----------------------------------------------------------------------------- cost


def corpus_texts() -> list[tuple[str, str, str | None]]:
    """(title, summary, link) of every item of the sets in bench/data/stories and of the
    feeds in tests/data/feeds (parsed by the project's parser; a feed it refuses is left
    out)."""
    texts = [(i.title, i.summary, i.link) for p in DATA.glob("*.jsonl") for i in labelled_set(p)]
    for name in GOOGLE_NEWS:
        texts += [(i.title, "", i.link) for i in google_news(name)]
    for path in sorted(FEEDS.glob("*")):
        try:
            feed = parse_feed(path.read_bytes(), url=f"https://example.com/{path.name}", headers={})
        except ParseError:
            continue
        texts += [(i.title, i.summary or i.content, i.link) for i in feed.items]
    return texts


_SYLLABLES = "ka zor vel mi tan rus bek ol dra sen qu ix bu nar te gol fi ash pe lun"


def synthesise(texts: Sequence[tuple[str, str, str | None]], count: int, seed: int) -> list:
    """``count`` items made of the corpus texts. A new story's title is pieces of two
    titles (a third of their words dropped) with two names of its own, made up, as each
    event has its people and places; half of them have a summary made of pieces of two
    summaries, with one of the names. One item in ten is a rewrite of an item made shortly
    before (a fifth of its words dropped), as the reports of a story are."""
    rng = random.Random(seed)
    syllables = _SYLLABLES.split()
    out: list[tuple[str, str, str | None]] = []
    for n in range(count):
        if out and rng.random() < 0.1:
            title, summary, _ = out[max(0, len(out) - rng.randrange(1, 500))]
            title = " ".join(w for w in title.split() if rng.random() > 0.2) or title
        else:
            names = ["".join(rng.choices(syllables, k=4)).capitalize() for _ in range(2)]
            first, second = rng.choice(texts)[0].split(), rng.choice(texts)[0].split()
            words = first[: len(first) // 2] + second[len(second) // 2 :]
            words = [w for w in words if rng.random() > 0.33] + names
            rng.shuffle(words)
            title = " ".join(words)
            summary = ""
            if rng.random() < 0.5:
                a, b = rng.choice(texts)[1], rng.choice(texts)[1]
                summary = f"{a[: len(a) // 2]} {names[0]} {b[len(b) // 2 :]}"
        out.append((title, summary, f"https://example.com/{n}"))
    return out


def report_cost(window: int, probes: int) -> None:
    texts = [t for t in corpus_texts() if t[0]]
    synthetic = synthesise(texts, window + probes, seed=1)
    start = time.process_time()
    features = [story_features(title=t, summary=s, link=link) for t, s, link in synthetic]
    per_item = (time.process_time() - start) / len(synthetic)
    stored = [dump_features(f) for f in features]
    index: dict[int, list[int]] = defaultdict(list)
    for n, f in enumerate(features[:window]):
        for key in f.keys:
            index[key].append(n)
    probe = features[window:]
    looked = scored = 0
    start = time.process_time()
    for item in probe:
        found = candidates(index, item)
        looked += len(found)
        best = -1.0
        scorer = Scorer(item)
        for m in found[:MAX_CANDIDATES]:
            best = max(best, scorer.score_stored(stored[m]))
            scored += 1
    decide = (time.process_time() - start) / len(probe)
    per_score = decide / max(scored / len(probe), 1)
    keys = sum(len(f.keys) for f in features) / len(features)
    print(f"\nCost ({len(texts)} corpus texts -> {window:,} synthetic items in the window)")
    print(f"  features: {per_item * 1e6:7.1f} us/item   ({keys:.1f} keys/item)")
    print(
        f"  decision: {decide * 1e6:7.1f} us/item   (dict lookup, then {looked / len(probe):.0f}"
        f" candidates, {scored / len(probe):.0f} scored per item)"
    )
    print(f"  all-in:   {(per_item + decide) * 1e6:7.1f} us/item (the DB lookup is the store's)")
    print(f"  per candidate: {per_score * 1e6:4.1f} us (read + score); all-in per item at")
    for cap in sorted({30, 50, 100, MAX_CANDIDATES}):
        print(f"    {cap:>4} candidates: {(per_item + cap * per_score) * 1e6:6.0f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="shuffled orders of GN headlines")
    parser.add_argument("--window", type=int, default=100_000, help="items in the window")
    parser.add_argument("--probes", type=int, default=2_000, help="items decided for timing")
    parser.add_argument("--sweep", type=float, nargs="*", default=[0.1, 0.15, 0.2, 0.25, 0.3])
    parser.add_argument("--no-cost", action="store_true", help="skip the timing")
    parser.add_argument(
        "--false-merges", action="store_true", help="print each false link at the threshold"
    )
    args = parser.parse_args()
    thresholds = sorted({*args.sweep, THRESHOLD})
    report_google(thresholds, args.seeds)
    report_labelled(thresholds)
    if args.false_merges:
        report_false_merges(THRESHOLD)
    if not args.no_cost:
        report_cost(args.window, args.probes)


if __name__ == "__main__":
    main()
