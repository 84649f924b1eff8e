"""The service holds in memory only the code of the channel types it is configured to use.

Validation needs each channel type's config model (``alerts/config_<type>.py``, light);
a channel's own module and its libraries (Jinja2, the SMTP client and the stdlib's mail
composition, Standard Webhooks, Apprise) are imported when a channel of that type is built.
Each case builds the ``App`` as ``monitor run`` does, in a process of its own, from a
configuration with the channels named, and reads ``sys.modules`` there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a process of its own per case, each building an App

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

# What each stack brings; a webhook without a template needs no Jinja2. (``email.message``
# is not here: httpx imports it, through urllib.request and http.client, whatever the
# channels.)
JINJA = ("jinja2", "markupsafe", "alerts.sandbox", "alerts.webhook_template")
SMTP = ("aiosmtplib", "alerts.smtp", "alerts.email", "email.policy", "email.generator")
WEBHOOK = ("standardwebhooks", "alerts.webhook")
APPRISE = ("apprise", "alerts.apprise", "alerts.render_apprise")
LOG = ("alerts.log",)

# Builds the App as ``monitor run`` does (migrating apart, as the service), with the
# modules ``monitor run`` imports beside the CLI, then prints every module loaded.
BUILD = """
import json, sys
from pathlib import Path

import monitor.schedule, monitor.web.server
from monitor.app import App
from monitor.config import load_settings

App(load_settings(Path(sys.argv[1])), long_running=True)
"""
REPORT = "import json, sys; print(json.dumps(sorted(sys.modules)))"

CHANNELS = {
    "none": "[]",
    "log": "[{name: console, type: log}]",
    "webhook": f"[{{name: hook, type: webhook, url: 'https://hooks.example.org/x', "
    f"secret: '{SECRET}'}}]",
    "email": "[{name: mail, type: email, to: [a@example.org], from: m@example.org, "
    "smtp: {host: smtp.example.org, starttls: true}}]",
}


def loaded_modules(tmp_path: Path, channels: str) -> set[str]:
    config = tmp_path / "monitor.yaml"
    config.write_text(
        f"""
database: sqlite:///{tmp_path / "monitor.db"}
polling: {{parse_workers: 0}}
feeds: [{{url: "https://feeds.example.org/rss"}}]
channels: {channels}
""",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-c", BUILD + REPORT, str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def assert_absent(loaded: set[str], *stacks: tuple[str, ...]) -> None:
    names = {name for stack in stacks for name in stack}
    assert sorted(names & loaded) == []


@pytest.mark.parametrize(
    ("case", "present", "absent"),
    [
        ("none", (), (JINJA, SMTP, WEBHOOK, APPRISE, LOG)),
        ("log", LOG, (JINJA, SMTP, WEBHOOK, APPRISE)),
        ("webhook", WEBHOOK, (JINJA, SMTP, APPRISE, LOG)),
        ("email", ("aiosmtplib", "alerts.email"), (WEBHOOK, APPRISE, LOG)),
    ],
)
def test_the_service_loads_only_the_channel_types_it_uses(
    tmp_path: Path, case: str, present: tuple[str, ...], absent: tuple[tuple[str, ...], ...]
) -> None:
    loaded = loaded_modules(tmp_path, CHANNELS[case])
    assert set(present) <= loaded
    assert_absent(loaded, *absent)


def test_the_command_line_loads_no_channel_code() -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import monitor.cli\n{REPORT}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    assert_absent(set(json.loads(done.stdout)), JINJA, SMTP, WEBHOOK, APPRISE, LOG)
