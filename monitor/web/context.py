"""What the HTTP routes may reach: the running service (and through it the app's store,
settings and matcher, current after each reload)."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.schedule import Service


@dataclass
class WebContext:
    service: Service
