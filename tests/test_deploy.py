"""The deployment files agree with each other and with the code: docker-compose.yml, the
Dockerfile, examples/docker.yaml and the systemd unit. No Docker engine runs here, so the
files are read and cross-checked instead of started."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

from monitor.config import load_settings
from monitor.config_ops import split_listen

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
TOKEN = "t" * 32


def _mounts(service: dict[str, object]) -> dict[str, Path]:
    """Container path -> host path, for the service's bind mounts."""
    found: dict[str, Path] = {}
    for volume in service.get("volumes", []):  # type: ignore[union-attr]
        host, container, *_ = str(volume).split(":")
        if host.startswith("."):
            found[container] = ROOT / host
    return found


def _compose_settings():  # type: ignore[no-untyped-def]
    monitor = SERVICES["monitor"]
    env = {k: str(v) for k, v in monitor["environment"].items()}
    env["MONITOR_TOKEN"] = TOKEN  # compose takes it from the operator's environment
    config = _mounts(monitor)[env["MONITOR_CONFIG"]]
    return load_settings(config, env)


def test_compose_runs_the_service_on_the_mounted_configuration() -> None:
    monitor = SERVICES["monitor"]
    assert monitor["command"] == ["run"]
    assert monitor["build"] == "."
    config = monitor["environment"]["MONITOR_CONFIG"]
    assert config in _mounts(monitor), "MONITOR_CONFIG must be a mounted file"
    assert _mounts(monitor)[config].is_file()
    assert f"MONITOR_CONFIG={config}" in DOCKERFILE  # the image's default is the same path
    assert "MONITOR_TOKEN" in monitor["environment"]


def test_compose_database_is_the_postgres_service_with_its_credentials() -> None:
    url = make_url(_compose_settings().database)
    assert url.get_backend_name() == "postgresql"
    assert url.host in SERVICES
    postgres = SERVICES[url.host]["environment"]
    assert (url.username, url.password, url.database) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )
    depends = SERVICES["monitor"]["depends_on"]
    assert depends[url.host]["condition"] == "service_healthy"
    assert "healthcheck" in SERVICES[url.host]


def test_compose_mail_goes_to_the_smtp_service() -> None:
    hosts = {c.smtp.host for c in _compose_settings().channels if c.type == "email"}
    assert hosts and hosts <= set(SERVICES["monitor"]["depends_on"])


def test_compose_publishes_ports_on_loopback_only() -> None:
    ports = [str(p) for s in SERVICES.values() for p in s.get("ports", [])]
    assert ports
    for port in ports:
        assert port.startswith("127.0.0.1:"), f"{port} is published on every interface"
    http = _compose_settings().http
    assert http is not None and http.token == TOKEN
    host, port = split_listen(http.listen)
    assert host == "0.0.0.0"  # inside the container, reached through the published port
    published = [p.split(":") for p in SERVICES["monitor"]["ports"]]
    assert [int(p[-1]) for p in published] == [port]


def test_dockerfile_runs_as_non_root_with_a_health_check_on_healthz() -> None:
    final = DOCKERFILE[DOCKERFILE.rindex("\nFROM ") :]
    users = re.findall(r"^USER\s+(\S+)", final, re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}
    check = re.search(r"^HEALTHCHECK .*?(?<!\\)$", final, re.MULTILINE | re.DOTALL)
    assert check is not None
    _, port = split_listen(_compose_settings().http.listen)  # type: ignore[union-attr]
    assert f"127.0.0.1:{port}/healthz" in check.group(0)


def test_dockerfile_copies_every_package_the_project_installs() -> None:
    """A package left out of the image builds a wheel that fails at import."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    copied = set(re.findall(r"^COPY (\w+) \./\1$", DOCKERFILE, re.MULTILINE))
    assert set(packages) <= copied, f"not copied into the build stage: {set(packages) - copied}"


def _unit() -> dict[str, list[tuple[str, str]]]:
    """The unit's sections as (key, value) lists: systemd allows a key more than once."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for line in (ROOT / "examples/monitor.service").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
        else:
            key, _, value = line.partition("=")
            sections[current].append((key, value))
    return sections


def test_systemd_unit_restarts_reloads_and_drops_privileges() -> None:
    service = dict(_unit()["Service"])
    assert service["Restart"] == "on-failure"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"  # SIGHUP reloads the config
    assert service["ExecStart"].endswith("monitor run")
    assert service["User"] not in {"root", "0"}
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert service.get(key) == value, key
    assert service["StateDirectory"] == "monitor" == Path(service["WorkingDirectory"]).name
    assert int(service["TimeoutStopSec"]) >= 60  # the drain on SIGTERM needs the time


def test_systemd_unit_passes_systemd_analyze(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    monitor = str(Path(sys.executable).with_name("monitor"))  # the project's venv
    unit = tmp_path / "monitor.service"
    text = (ROOT / "examples/monitor.service").read_text(encoding="utf-8")
    unit.write_text(text.replace("/opt/monitor/bin/monitor", monitor), encoding="utf-8")
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
