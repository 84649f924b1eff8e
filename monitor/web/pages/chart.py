"""Alerts per day as bars, laid out for an inline SVG (no script, no chart library).

Input: counts per UTC day and the days to show. Output: each bar's place and size in
the SVG's own units, and the labels. Every row of a chart shares one scale, so a
watchlist's bars can be compared with another's; a day with any alert gets a visible bar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta

from monitor.types import frozen

BAR_WIDTH = 24
GAP = 6
HEIGHT = 40


@frozen
class Bar:
    day: date
    count: int
    x: int
    y: int
    height: int


@frozen
class Row:
    name: str
    total: int
    bars: tuple[Bar, ...]


@frozen
class Chart:
    days: tuple[date, ...]
    rows: tuple[Row, ...]
    width: int
    height: int
    peak: int
    bar_width: int = BAR_WIDTH


def last_days(now: datetime, count: int) -> tuple[date, ...]:
    """The ``count`` UTC days ending with today, oldest first."""
    today = now.date()
    return tuple(today - timedelta(days=back) for back in range(count - 1, -1, -1))


def day_chart(counts: Mapping[str, Mapping[date, int]], days: Sequence[date]) -> Chart:
    """One row per name (in the mapping's order), one bar per day."""
    peak = max(
        (n for per_day in counts.values() for d, n in per_day.items() if d in days), default=0
    )
    rows = []
    for name, per_day in counts.items():
        bars = []
        for index, day in enumerate(days):
            count = per_day.get(day, 0)
            height = 0 if count == 0 else max(2, round(HEIGHT * count / peak))
            x = index * (BAR_WIDTH + GAP)
            bars.append(Bar(day=day, count=count, x=x, y=HEIGHT - height, height=height))
        rows.append(Row(name=name, total=sum(b.count for b in bars), bars=tuple(bars)))
    width = len(days) * (BAR_WIDTH + GAP) - GAP
    return Chart(days=tuple(days), rows=tuple(rows), width=width, height=HEIGHT, peak=peak)
