"""The query tester's YAML: pasted into the configuration file in place of the watchlist, it
is the same watchlist with the tested query (scope, language and every route's settings
kept). No server: ``watchlist_yaml`` is a pure function of the configuration."""

from __future__ import annotations

import pytest
import yaml

from monitor.config import WatchlistConfig
from monitor.web.pages.watchlists import watchlist_yaml

QUERY = 'Тоқаев AND "state visit" NOT football'


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "csto", "terms": ["CSTO", "ОДКБ"], "notify": ["hook"]},
        {
            "name": "wires",
            "query": "Kazakhstan",
            "feeds": ["Wire", "Mirror"],
            "tags": ["asia"],
            "language": "ru",
            "notify": [
                "hook",
                {"channel": "archive", "stories": "separate"},
                {"channel": "mail", "digest": "daily@08:00 Asia/Almaty"},
                {"channel": "chat", "digest": "1h", "stories": "separate"},
            ],
        },
        {"name": "quiet", "query": "CSTO"},
    ],
    ids=["terms", "routes", "no-routes"],
)
def test_the_yaml_reads_back_as_the_watchlist_with_the_tested_query(
    entry: dict[str, object],
) -> None:
    config = WatchlistConfig.model_validate(entry)
    [pasted] = yaml.safe_load(watchlist_yaml(config, QUERY))
    again = WatchlistConfig.model_validate(pasted)
    assert again == config.model_copy(update={"terms": None, "query": QUERY})


def test_a_route_without_settings_of_its_own_stays_a_bare_channel_name() -> None:
    config = WatchlistConfig.model_validate(
        {"name": "csto", "query": "CSTO", "notify": ["hook", {"channel": "mail"}]}
    )
    assert "notify:\n  - hook\n  - mail\n" in watchlist_yaml(config, "CSTO")
