"""The JSON API under ``/api``: feeds with their health, alerts with their deliveries,
watchlists, stored items with a text search, trials (``match``, ``backtest``), and the
operator's actions (add, remove, pause and resume a feed; send an alert again).

Every route requires ``Authorization: Bearer <http.token>``; without a token configured
the API is off and says so (503). One module per resource; :mod:`~monitor.web.api.base`
has what they share (the bearer check, the error shape, the running app). Routes read and
change the service only through the running app's store, settings and clock; the
work they do per request is bounded (pages of at most 500, searches and backtests over a
bounded number of items), and it runs in worker threads, off the service's event loop.
"""

from __future__ import annotations

from fastapi import APIRouter, Security

from monitor.web.api import alerts, feeds, items, trial, watchlists
from monitor.web.api.base import ERROR_RESPONSES, MAX_BODY, bearer

router = APIRouter(
    prefix="/api",
    dependencies=[Security(bearer)],
    responses=ERROR_RESPONSES,
    max_body_size=MAX_BODY,  # a larger body is refused (413) before it is all read
)
for part in (feeds, alerts, watchlists, items, trial):
    router.include_router(part.router)

__all__ = ["router"]
