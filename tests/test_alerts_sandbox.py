"""The template sandbox (alerts/sandbox.py) on its own: what it refuses before it runs,
its deadline, its output cap and its one thread. The webhook channel's use of it, through
a real receiver, is in test_webhook.py."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from receivers import sample_digest

from alerts.config_webhook import WebhookConfig
from alerts.sandbox import (
    OUTPUT_MAX,
    VALUE_MAX,
    BoundedTemplate,
    TemplateBusyError,
    TemplateLimitError,
    compile_template,
    weight,
)

SLACK = 1.0  # what a loaded test machine may add to a deadline


@pytest.fixture
def context() -> dict[str, Any]:
    digest = sample_digest()
    return {"payload": {"id": digest.id, "alerts": [{"id": a.id} for a in digest.alerts]}}


async def render(source: str, context: dict[str, Any], timeout: float = 1.0) -> str:
    template = BoundedTemplate(source, timeout=timeout)
    try:
        return await template.render(context)
    finally:
        template.close()


REFUSED = [
    "{{ 'x' * 10**7 }}",
    "{{ [1, 2] * 10**7 }}",
    "{{ 10 ** (10 ** 10) }}",
    "{% set ns = namespace(n=10) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}"
    "{% endfor %}{{ ns.n }}",
    "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}",
    "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}"
    "{% endfor %}",
    "{{ 'x'.center(1000000000) }}",
    "{{ 'a\tb'.expandtabs(100000000) }}",
    "{{ '%1000000000s' % 'x' }}",
    "{{ '%*s' % (1000000000, 'x') }}",
    "{{ '{0:{1}}'.format('x', 1000000000) }}",
    "{{ '%1000000000s'|format('x') }}",
    "{{ ('ab' * 1000)|indent(10000000) }}",
    "{{ [1]|batch(1000000000, 0)|list }}",
    "{{ payload|tojson(indent=100000000) }}",
    "{% set s = 'x' * 100000 %}{{ s.replace('x', s) }}",
    "{% set s = 'x' * 100000 %}{{ s.join(['a'] * 100000) }}",
    "{{ (['a'] * 1000)|join('x' * 30000) }}",
    "{% set a = ['x' * 1000] * 1000 %}{% set b = [a, a, a, a, a] %}{{ [b, b, b, b, b] }}",
]


@pytest.mark.parametrize("source", REFUSED)
async def test_what_could_exhaust_memory_is_refused_before_it_runs(
    source: str, context: dict[str, Any]
) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateLimitError, match="would make"):
        await render(source, context)
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize(
    "source",
    [
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "{% for a in 'x' * 100000 %}{% for b in 'x' * 100000 %}{% endfor %}{% endfor %}",
        "{% macro m(n) %}{% for i in range(10) %}{{ m(n - 1) if n else '' }}{% endfor %}"
        "{% endmacro %}{{ m(12) }}",
    ],
)
async def test_a_loop_that_never_ends_stops_at_the_deadline(
    source: str, context: dict[str, Any]
) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateLimitError, match=r"took longer than 0\.3s"):
        await render(source, context, timeout=0.3)
    assert time.monotonic() - started < 0.3 + SLACK


async def test_output_stops_at_its_cap(context: dict[str, Any]) -> None:
    source = "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}"
    with pytest.raises(TemplateLimitError, match=f"output over {OUTPUT_MAX} characters"):
        await render(source, context)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ payload.alerts | map(attribute='id') | join(',') }}", "a3,a2,a1"),
        ("{% for a in payload.alerts %}{{ loop.index }}:{{ a.id ~ '!' }} {% endfor %}", None),
        ("{{ '%-4s|' % 'ab' }}{{ '{:>4}'.format('cd') }}{{ 'x'|center(5) }}", "ab  |  cd  x  "),
        ("{{ payload | tojson }}", None),
        ("{{ 2 ** 64 }} {{ 'ab' * 3 }} {{ [0] * 2 }}", "18446744073709551616 ababab [0, 0]"),
        ("{% for i in range(3) recursive %}{{ i }}{% endfor %}", "012"),
    ],
)
async def test_ordinary_templates_render_as_before(
    source: str, expected: str | None, context: dict[str, Any]
) -> None:
    output = await render(source, context)
    if expected is not None:
        assert output == expected
    else:
        assert output


async def test_a_render_still_running_is_not_queued_behind(context: dict[str, Any]) -> None:
    slow = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
    template = BoundedTemplate(slow, timeout=0.5)
    first = asyncio.create_task(template.render(context))
    await asyncio.sleep(0)  # the first render is handed to the thread
    with pytest.raises(TemplateBusyError):
        await template.render(context)
    with pytest.raises(TemplateLimitError):
        await first
    template.close()


def test_a_hostile_template_is_checked_by_the_config_without_running_it() -> None:
    # Constant folding could run an operation while the configuration is validated.
    raw = {"type": "webhook", "name": "hook", "url": "https://example.org/hook"}
    started = time.monotonic()
    for source in [*REFUSED, "{{ 'x'|center(1000000000) }}"]:
        compile_template(source)
        WebhookConfig.model_validate(raw | {"template": source})
    assert time.monotonic() - started < 2


def test_weight_counts_shared_containers_as_often_as_they_appear() -> None:
    inner = ["x" * 10] * 10  # 10 items of 10 characters
    assert weight(inner) == 10 + 100
    assert weight([inner, inner]) == 2 + 2 * 110
    deep: Any = "x"
    for _ in range(40):  # 2**40 characters, counted without walking them
        deep = (deep, deep)
    assert weight(deep) > VALUE_MAX
