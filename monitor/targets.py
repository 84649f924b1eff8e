"""The configuration as the delivery side sees it: each channel by its delivery targets.

Input: the ``Settings`` read from the file; output: the same settings with every channel
replaced by its targets (``alerts.registry.delivery_targets``: itself, or an apprise
channel's one per URL, ``phones#1`` … ``phones#N``) and every route to it (a watchlist's
``notify``, ``health.notify``) replaced by one route per target, with the route's own
digest. The pipeline then writes one delivery per (alert, target), and the outbox retries,
digests and rate-limits each target on its own.

The file's view stays what the operator wrote: validation, the dashboard and the API show
``phones``; ``monitor channels``, the metrics and the deliveries show the targets.
Does not validate (``monitor.config`` did) and reads nothing.
"""

from __future__ import annotations

from alerts.registry import ChannelConfig, delivery_targets
from monitor.config import NotifyRoute, Settings, WatchlistConfig


def target_names(settings: Settings) -> dict[str, tuple[str, ...]]:
    """Each configured channel's name -> its targets' names, in the file's order."""
    return {c.name: tuple(t.name for t in delivery_targets(c)) for c in settings.channels}


def target_configs(settings: Settings) -> list[ChannelConfig]:
    return [target for channel in settings.channels for target in delivery_targets(channel)]


def delivery_settings(settings: Settings) -> Settings:
    """``settings`` with channels and routes by target; itself when no channel has targets
    other than itself."""
    names = target_names(settings)
    if all(targets == (name,) for name, targets in names.items()):
        return settings

    def routes(route: NotifyRoute) -> list[NotifyRoute]:
        targets = names.get(route.channel, (route.channel,))
        return [route.model_copy(update={"channel": target}) for target in targets]

    def watchlist(config: WatchlistConfig) -> WatchlistConfig:
        notify = [target for route in config.notify for target in routes(route)]
        return config.model_copy(update={"notify": notify})

    notify = [t for name in settings.health.notify for t in names.get(name, (name,))]
    return settings.model_copy(
        update={
            "channels": target_configs(settings),
            "watchlists": [watchlist(w) for w in settings.watchlists],
            "health": settings.health.model_copy(update={"notify": notify}),
        }
    )
