"""Where the dashboard is served when the configuration says nothing: loopback only, and
read-only (no credential), so a fresh install shows nothing to the network and lets no one
change anything."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from starlette.requests import Request

from monitor.config import load_settings
from monitor.config_ops import split_listen
from monitor.web.pages.session import viewer_of


def test_without_an_http_section_the_dashboard_is_on_loopback_and_read_only(
    tmp_path: Path,
) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text(f"database: sqlite:///{tmp_path / 'monitor.db'}\n", encoding="utf-8")
    http = load_settings(config, environ={}).http
    assert http is not None
    host, _ = split_listen(http.listen)
    assert ipaddress.ip_address(host).is_loopback
    assert http.credentials == ()
    anyone = viewer_of(Request({"type": "http", "headers": []}), http)
    assert anyone.read_only and anyone.may_view and not anyone.may_act
