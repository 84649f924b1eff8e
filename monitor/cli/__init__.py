"""The ``monitor`` command: parse arguments, call the app, print.

Every command takes ``--config FILE`` (default ``$MONITOR_CONFIG``, else ``./monitor.yaml``).
One module per group of commands; this one assembles them.
"""

from __future__ import annotations

import typer

from monitor.cli import delivery, discover, feeds, matching, service

app = typer.Typer(
    help="Poll feeds, match watchlists, send alerts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for group in (service.app, matching.app, discover.app):
    app.registered_commands += group.registered_commands
app.add_typer(feeds.feeds_app, name="feeds")
app.add_typer(delivery.alerts_app, name="alerts")
app.add_typer(delivery.channels_app, name="channels")


def main() -> None:
    app()
