"""Recording poll outcomes: ``.venv/bin/python bench/record.py [--database URL]``.

Most polls of a running service find nothing new (a 304); each one's outcome is written to
its feed's row and to the feed's poll history, several outcomes to a transaction
(``monitor/recording.py`` batches them). This times ``Store.record_polls`` alone, as the
service calls it: ``--feeds`` feeds, each recorded ``--rounds`` times in batches of
``--batch``, and prints the CPU time of this process (and the wall time) per outcome. On
PostgreSQL the server's own work is not in the CPU figure (the wall time shows it).

It measures; the suite checks behaviour.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta

from poll import database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()

    from monitor.store import Store
    from monitor.store.engine import create_db_engine, migrate
    from monitor.store.feeds import FeedSpec
    from monitor.types import FeedState, PollUpdate

    with tempfile.TemporaryDirectory() as tmp, database(args.database, tmp) as url:
        engine = create_db_engine(url)
        migrate(engine)
        store = Store(engine)
        now = datetime.now(UTC)
        store.sync_feeds(
            [FeedSpec(url=f"http://127.0.0.1/{n}.xml", name=None) for n in range(args.feeds)],
            now,
        )
        ids = [f.id for f in store.list_feeds(count_items=False)]
        outcomes: list[tuple[int, PollUpdate]] = []
        for round_ in range(args.rounds):
            polled = now + timedelta(minutes=round_)
            update = PollUpdate(
                polled_at=polled,
                state=FeedState.OK,
                status=304,
                etag='"v1"',
                next_poll_at=polled + timedelta(minutes=1),
                ms=12,
            )
            outcomes += [(feed_id, update) for feed_id in ids]
        store.record_polls(outcomes[: args.batch])  # compiled and cached, as in a service
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, len(outcomes), args.batch):
            store.record_polls(outcomes[start : start + args.batch])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        engine.dispose()
    n = len(outcomes)
    print(
        f"record_polls, {engine.dialect.name}: {n} outcomes in batches of {args.batch}: "
        f"{cpu / n * 1e6:.0f} µs CPU, {wall / n * 1e6:.0f} µs wall per outcome"
    )


if __name__ == "__main__":
    main()
