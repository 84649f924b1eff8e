"""The ``monitor`` command: parse arguments, call the app, print.

Every command takes ``--config FILE`` (default ``$MONITOR_CONFIG``, else ``./monitor.yaml``).
One module per group of commands; this one assembles them.
"""

from __future__ import annotations

import click

from monitor.cli import delivery, discover, feeds, matching, service
from monitor.cli.common import Commands


@click.group("monitor", cls=Commands, no_args_is_help=True)
def app() -> None:
    """Poll feeds, match watchlists, send alerts."""


for command in (
    *service.COMMANDS,
    *matching.COMMANDS,
    discover.discover,
    feeds.feeds,
    delivery.alerts,
    delivery.channels,
):
    app.add_command(command)


def main() -> None:
    app()
