"""Every failure of a poll is recorded on its feed, with back-off, and the claim released;
one item that breaks matching costs only its own alerts.

A failure that no input reproduces once its bug is fixed is simulated by making one of our
own stages raise (the matcher, the parser, the store); the rest runs for real: the feed
server, the database of each kind, the pipeline as the service runs it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from feedserver import FeedServer
from receivers import WebhookReceiver
from test_service import CSTO_ITEM, NOW, config, rss, store_for  # noqa: F401

from monitor.app import App, poll_once
from monitor.config import Settings, load_settings
from monitor.types import FeedState

BOOM_ITEM = ("b1", "CSTO BOOM", "CSTO forces exercise.", NOW)


class Boom(Exception):
    """A bug of ours, as the pipeline would meet it; its text carries a secret."""


async def poll_with(settings: Settings, break_it: Callable[[App], None]) -> None:
    async with await asyncio.to_thread(App, settings) as app:
        break_it(app)
        feeds = await app.pipeline.claim_feeds(only_due=False)
        await app.pipeline.poll_feeds(feeds)


async def test_an_item_that_breaks_matching_costs_only_its_own_alerts(
    config: Callable[..., Settings],  # noqa: F811
    feed_server: FeedServer,
) -> None:
    feed_server.set_feed("/feed.xml", rss(CSTO_ITEM, BOOM_ITEM))

    def fragile(app: App) -> None:
        real = app.pipeline.matcher.match_item

        def match_item(item, context):  # type: ignore[no-untyped-def]
            if "BOOM" in item.title:
                raise Boom("token=s3cret")
            return real(item, context)

        app.pipeline.matcher.match_item = match_item  # type: ignore[method-assign]

    settings = config()
    await poll_with(settings, fragile)
    store = store_for(settings)
    [feed] = store.list_feeds()
    assert feed.state == FeedState.OK and feed.items == 2  # both items stored
    assert "1 new item(s) could not be matched" in (feed.warning or "")
    assert [r.alert.item.title for r in store.list_alerts()] == [CSTO_ITEM[1]]


@pytest.mark.parametrize("stage", ["parser", "store"])
async def test_an_unexpected_failure_is_recorded_with_back_off_and_no_secret(
    config: Callable[..., Settings],  # noqa: F811
    feed_server: FeedServer,
    stage: str,
) -> None:
    feed_server.set_feed("/feed.xml", rss(CSTO_ITEM))

    def broken(app: App) -> None:
        async def parse(result, **kwargs):  # type: ignore[no-untyped-def]
            raise Boom("token=s3cret")

        def add_items(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise Boom("token=s3cret")

        if stage == "parser":
            app.pipeline.parser.parse = parse  # type: ignore[method-assign]
        else:
            app.pipeline.store.add_items = add_items  # type: ignore[method-assign]

    settings = config()
    await poll_with(settings, broken)
    store = store_for(settings)
    [feed] = store.list_feeds()
    assert feed.state == FeedState.ERROR and feed.error_count == 1
    assert feed.last_error is not None and "internal error (Boom)" in feed.last_error
    assert "s3cret" not in feed.last_error
    assert feed.next_poll_at is not None and feed.last_polled_at is not None
    assert feed.next_poll_at - feed.last_polled_at >= timedelta(minutes=1)
    # The claim was released: at the next poll time the feed is claimed again.
    later = feed.next_poll_at + timedelta(seconds=1)
    assert [f.url for f in store.claim_due_feeds(later, 60)] == [feed.configured_url]


async def test_credentials_in_a_feed_url_stay_out_of_logs_errors_and_alerts(
    tmp_path: Path,
    feed_server: FeedServer,
    webhook_receiver: WebhookReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A token in the query or a password in the URL is the operator's, for the feed's
    server only: not in the poll log, the feed's error, the alert's feed or its name."""
    secret_url = feed_server.url("/feed.xml").replace("://", "://reader:pa55w0rd@")
    secret_url += "?api_key=s3cret&lang=ru"
    missing = feed_server.url("/missing.xml").replace("://", "://reader:pa55w0rd@")
    feed_server.set_feed("/feed.xml", rss(CSTO_ITEM, title=""))
    feed_server.set_response("/missing.xml", 404, b"gone")
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"""
database: sqlite:///{tmp_path / "m.db"}
polling: {{parse_workers: 0}}
feeds: [{{url: "{secret_url}"}}, {{url: "{missing}?token=s3cret"}}]
watchlists: [{{name: csto, terms: [CSTO], notify: [hook]}}]
channels: [{{name: hook, type: webhook, url: "{webhook_receiver.url}"}}]
""",
        encoding="utf-8",
    )
    settings = load_settings(path, {})
    with caplog.at_level(logging.DEBUG, logger="monitor"):  # the service's own log
        await poll_once(settings)
    [request] = webhook_receiver.requests
    payload = request.json()
    shown = [caplog.text, json.dumps(payload)]
    shown += [f"{f.name} {f.last_error}" for f in store_for(settings).list_feeds()]
    assert "api_key=***" in caplog.text and "lang=ru" in caplog.text
    for text in shown:
        assert "s3cret" not in text and "pa55w0rd" not in text, text
