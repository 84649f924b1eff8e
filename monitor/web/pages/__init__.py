"""The dashboard: server-rendered pages over the running service's store.

Each module is one section (``overview``, ``feeds``, ``alerts``, ``watchlists``,
``items``) plus the sign-in (``login``); ``base`` has what they share, ``session`` the
cookie and CSRF values. Pages work without JavaScript; ``static/monitor.js`` only makes
them nicer (the query tester answers as you type). Every asset is served from
``/static`` by this server: no CDN, and a Content-Security-Policy that allows nothing
else (``monitor.web.headers``).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from monitor.web.pages import alerts, feeds, items, login, overview, watchlists

STATIC = Path(__file__).resolve().parent.parent / "static"
SECTIONS = (login, overview, alerts, items, watchlists, feeds)


def install_pages(web: FastAPI) -> None:
    web.mount("/static", StaticFiles(directory=STATIC), name="static")
    for section in SECTIONS:
        web.include_router(section.router)
