"""The ``monitor`` command: parse arguments, call the app, print.

Every command takes ``--config FILE`` (default ``$MONITOR_CONFIG``, else ``./monitor.yaml``).
One module per group of commands; this one assembles them.
"""

from __future__ import annotations

import importlib.machinery
import sys

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
    name_main_module()
    app()


def name_main_module() -> None:
    """Run as the ``monitor`` console script, the main module is that script, and a parse
    worker (multiprocessing's forkserver starts each by re-running the main module) would
    run it again: the whole command line and application imported into every worker, some
    80 MB each where parsing needs 30. Named as ``python -m monitor`` names it, the workers
    skip it (multiprocessing never re-runs a package's ``__main__``)."""
    module = sys.modules["__main__"]
    if getattr(module, "__spec__", None) is None:
        module.__spec__ = importlib.machinery.ModuleSpec("monitor.__main__", None)
