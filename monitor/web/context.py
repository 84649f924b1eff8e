"""What the HTTP routes may reach: the running service (and through it the app's store,
settings, matcher and metrics, current after each reload).

Routes get it with the :data:`Context` dependency (``ctx: Context``), or from
``request.app.state.ctx``, where ``create_web_app`` puts it. Read the parts through it at
each request, never keep one: a reload swaps the settings, the matcher and the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from monitor.app import App
from monitor.config import Settings
from monitor.config_ops import HttpConfig
from monitor.metrics import Metrics
from monitor.schedule import Service
from monitor.store import Store
from monitor.web.health import http_settings


@dataclass(frozen=True, slots=True)
class WebContext:
    service: Service

    @property
    def app(self) -> App:
        return self.service.app

    @property
    def settings(self) -> Settings:
        return self.service.app.settings

    @property
    def http(self) -> HttpConfig:
        return http_settings(self.service)

    @property
    def store(self) -> Store:
        return self.service.app.store

    @property
    def metrics(self) -> Metrics:
        return self.service.app.metrics


def get_context(request: Request) -> WebContext:
    context: WebContext = request.app.state.ctx
    return context


Context = Annotated[WebContext, Depends(get_context)]
