"""A config author's Jinja2 template, rendered within bounds of size, time and threads.

Input: a template's source (from the configuration) and the context a channel gives it;
output: the rendered text, or ``TemplateLimitError`` naming the bound it hit (the template's
own errors pass through). Jinja2's ImmutableSandboxedEnvironment already keeps a template
away from Python's internals and from mutating its data; this module also keeps one from
taking the service down, by mistake or not:

- size: ``*``, ``**``, ``+``, ``%`` and ``~``, every filter and every method call are
  checked before they run against what they could make (a repeated string, a padded width,
  a replacement multiplied by its matches, a nested list turned into text), and what they
  made after; nothing may pass VALUE_MAX, and the output stops at OUTPUT_MAX.
- time: every loop step, call, operator and output chunk checks the render's deadline, so
  even a nested loop that prints nothing stops within RENDER_TIMEOUT.
- threads: a channel renders in its own one-thread executor, never on the event loop nor
  in its default executor; a render still running when the next message comes is refused
  at once (``TemplateBusyError``) instead of queueing behind it.

Checks run before the operation because a single huge operation (``'x' * 10**10``) runs
in C without releasing the GIL: no thread or timeout could stop it. Does not know what a
channel does with the text, and does not touch the network.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

from alerts.durations import format_duration
from alerts.errors import AlertError

OUTPUT_MAX = 4_000_000  # characters: a large digest's JSON fits many times over
VALUE_MAX = OUTPUT_MAX  # characters or items in any one value a template makes
INT_BITS_MAX = 65_536  # an integer of about 20,000 digits: more than any template needs
RENDER_TIMEOUT = 2.0  # seconds; part of the channel's send, well inside the outbox's bound
_TICK_EVERY = 256  # loop steps between two looks at the clock

_PERCENT_WIDTHS = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


class TemplateLimitError(AlertError):
    """The template went past a bound; the same template and data will do so again."""


class TemplateBusyError(AlertError):
    """The previous render of this template is still running in its thread."""


def weight(value: Any, memo: dict[int, int] | None = None) -> int:
    """Roughly the length of ``str(value)``: characters of strings, plus one per item of
    containers, nested ones counted as often as they appear. A list that holds one big
    list a thousand times weighs a thousand times as much, so its text is refused before
    it is made; each distinct container is walked once, so the count itself stays cheap."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, Namespace):
        value = value._Namespace__attrs  # type: ignore[attr-defined]
    if not isinstance(value, list | tuple | set | frozenset | dict):
        return 1
    memo = {} if memo is None else memo
    known = memo.get(id(value))
    if known is not None:
        return known
    memo[id(value)] = VALUE_MAX + 1  # a container inside itself counts as too big
    items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
    total = len(value)
    for item in items:
        total += weight(item, memo)
        if total > VALUE_MAX:
            break
    memo[id(value)] = total
    return total


def _refuse_over(size: int, what: str) -> None:
    if size > VALUE_MAX:
        raise TemplateLimitError(f"{what} would make a value over {VALUE_MAX} characters")


def _checked(value: Any) -> Any:
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset):
        _refuse_over(len(value), "the template")
    return value


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


def _count(value: Any, default: int = 0) -> int:
    """An argument as a size: a number as itself, text as its length."""
    if isinstance(value, bool) or value is None:
        return default
    if isinstance(value, int):
        return value
    return len(value) if isinstance(value, str) else default


def _sized(value: Any) -> int:
    return len(value) if isinstance(value, list | tuple | str) else 0


def _replaced(text: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    old, new = _arg(args, kwargs, 0, "old"), _arg(args, kwargs, 1, "new")
    if not isinstance(old, str) or not isinstance(new, str):
        return len(text)
    found = text.count(old) if old else len(text) + 1
    limit = _arg(args, kwargs, 2, "count")
    if isinstance(limit, int) and limit >= 0:
        found = min(found, limit)
    return len(text) + found * max(0, len(new) - len(old))


def _widths(template: str, args: Iterable[Any]) -> int:
    """The widest field a ``%`` or ``{}`` format string asks for; a width taken from the
    arguments (``%*s``, ``{:{}}``) counts as the largest number among them."""
    specs = [m.group(0) for m in _PERCENT_WIDTHS.finditer(template)]
    with contextlib.suppress(ValueError):  # not a {} format string: str.format says so
        specs += [spec or "" for _, _, spec, _ in string.Formatter().parse(template)]
    numbers = [int(n) for spec in specs for n in _DIGITS.findall(spec)]
    if any("*" in spec or "{" in spec for spec in specs):
        numbers += [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
    return max(numbers, default=0)


Estimate = Callable[[str, Any, tuple[Any, ...], Mapping[str, Any]], int]

# What a filter or a string method could make beyond its input's own length, by name: the
# operations whose output can be far larger than their input. (text, value, args, kwargs)
_ESTIMATES: dict[str, Estimate] = {
    "center": lambda t, v, a, k: _count(_arg(a, k, 0, "width"), 80),
    "ljust": lambda t, v, a, k: _count(_arg(a, k, 0, "width")),
    "rjust": lambda t, v, a, k: _count(_arg(a, k, 0, "width")),
    "zfill": lambda t, v, a, k: _count(_arg(a, k, 0, "width")),
    "indent": lambda t, v, a, k: (t.count("\n") + 1) * _count(_arg(a, k, 0, "width"), 4),
    "expandtabs": lambda t, v, a, k: t.count("\t") * _count(_arg(a, k, 0, "tabsize"), 8),
    "wordwrap": lambda t, v, a, k: len(t) * _count(_arg(a, k, 2, "wrapstring"), 1),
    "join": lambda t, v, a, k: _count(_arg(a, k, 0, "d")) * _sized(v),
    "replace": lambda t, v, a, k: _replaced(t, a, k),
    "format": lambda t, v, a, k: _widths(t, [*a, *k.values()]),
    "batch": lambda t, v, a, k: _count(_arg(a, k, 0, "linecount")),
    "slice": lambda t, v, a, k: _count(_arg(a, k, 0, "slices")),
    "tojson": lambda t, v, a, k: weight(v) * (1 + _count(_arg(a, k, 0, "indent"))),
}


def _estimate(name: str, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    text = value if isinstance(value, str) else ""
    estimate = _ESTIMATES.get(name)
    return len(text) + (estimate(text, value, args, kwargs) if estimate else 0)


class _CheckedCodeGenerator(CodeGenerator):
    """Two statements Jinja2 does not route through the environment: ``~`` (joined in
    place) and ``for`` (a plain Python loop). Both are sent through it here."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        wrapper = nodes.EnvironmentAttribute("checked_iter", lineno=node.lineno)
        node.iter = nodes.Call(wrapper, [node.iter], [], None, None, lineno=node.lineno)
        super().visit_For(node, frame)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox with size and time checks. One render at a time per instance: the
    deadline is the instance's (``BoundedTemplate`` gives each template its own)."""

    code_generator_class = _CheckedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(
            undefined=jinja2.StrictUndefined, autoescape=False, finalize=self._finalize
        )
        self.deadline = float("inf")
        self.timeout = RENDER_TIMEOUT
        self._steps = 0
        self.globals.pop("lipsum", None)  # lipsum(n) writes n paragraphs
        self.filters = {name: self._checked_filter(f) for name, f in self.filters.items()}

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateLimitError(f"took longer than {format_duration(self.timeout)}")

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        self.tick()
        if operator in ("*", "**") and _is_int(left) and _is_int(right):
            _check_int(operator, left, right)
        elif operator == "*":
            sequence, times = (right, left) if _is_int(left) else (left, right)
            if _is_int(times) and not isinstance(sequence, int | float):
                _refuse_over(weight(sequence) * max(0, times), "'*'")
        elif operator == "+":
            _refuse_over(weight(left) + weight(right), "'+'")
        elif operator == "%" and isinstance(left, str):
            pieces = right if isinstance(right, tuple) else (right,)
            _refuse_over(len(left) + _widths(left, pieces) + weight(right), "'%'")
        return _checked(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        __self.tick()
        if getattr(__obj, "__func__", None) is BoundedSandbox.checked_iter:
            return __obj(*args)  # a loop of ours (see _CheckedCodeGenerator): nothing to weigh
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str) and getattr(__obj, "__name__", "") == "join" and args:
            args = (list(args[0]), *args[1:])
            _refuse_over(len(owner) * len(args[0]) + weight(args[0]), "str.join")
        elif isinstance(owner, str):
            _refuse_over(_estimate(__obj.__name__, owner, args, kwargs), f"str.{__obj.__name__}")
        return _checked(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            found = [*args, *kwargs.values(), *(a for m in args if isinstance(m, dict) for a in m)]
            size = len(template) + _widths(template, found) + weight(args) + weight(kwargs)
            _refuse_over(size, "str.format")
            return _checked(wrapped(*args, **kwargs))

        return checked

    def checked_concat(self, items: tuple[Any, ...]) -> str:
        self.tick()
        _refuse_over(sum(weight(item) for item in items), "'~'")
        return _checked("".join(map(str, items)))

    def checked_iter(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self._steps += 1
            if self._steps % _TICK_EVERY == 0:
                self.tick()
            yield item

    def _finalize(self, value: Any) -> Any:
        """Each ``{{ }}`` value before it becomes text: a nested list can weigh far more
        than it took to build."""
        _refuse_over(weight(value), "printing a value")
        return value

    def _checked_filter(self, original: Callable[..., Any]) -> Callable[..., Any]:
        # pass_context/pass_eval_context filters get that argument first; wraps() keeps
        # the marker Jinja2 reads, so it still passes it.
        passed = 1 if hasattr(original, "jinja_pass_arg") else 0
        name = original.__name__.removeprefix("do_").removeprefix("sync_do_")

        @functools.wraps(original)
        def checked(*args: Any, **kwargs: Any) -> Any:
            self.tick()
            value, rest = (args[passed], args[passed + 1 :]) if len(args) > passed else (None, ())
            if name == "join" and not isinstance(value, str | list | tuple):
                value = list(value or ())
                args = (*args[:passed], value, *rest)
            memo: dict[int, int] = {}
            inputs = sum(weight(arg, memo) for arg in (*args[passed:], *kwargs.values()))
            _refuse_over(inputs, f"filter {name}")
            _refuse_over(_estimate(name, value, rest, kwargs), f"filter {name}")
            return _checked(original(*args, **kwargs))

        return checked


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(operator: str, left: int, right: int) -> None:
    bits = left.bit_length() + right.bit_length()
    if operator == "**":
        bits = left.bit_length() * max(0, right) if abs(left) > 1 else 0
    if bits > INT_BITS_MAX:
        raise TemplateLimitError(f"'{operator}' would make a number over {INT_BITS_MAX} bits")


def compile_template(source: str) -> jinja2.Template:
    """Raise jinja2.TemplateSyntaxError for a template that does not compile."""
    return BoundedSandbox().from_string(source)


class BoundedTemplate:
    """One channel's template, its sandbox and its one render thread."""

    def __init__(self, source: str, *, timeout: float = RENDER_TIMEOUT) -> None:
        self._sandbox = BoundedSandbox()
        self._sandbox.timeout = timeout
        self._template = self._sandbox.from_string(source)
        self._timeout = timeout
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="alerts-template"
        )
        self._running: concurrent.futures.Future[str] | None = None

    async def render(self, context: Mapping[str, Any]) -> str:
        """May raise TemplateLimitError, TemplateBusyError or the template's own error."""
        if self._running is not None and not self._running.done():
            raise TemplateBusyError("the previous render of this template is still running")
        deadline = time.monotonic() + self._timeout
        self._running = self._executor.submit(self._render, context, deadline)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(self._running), self._timeout)
        except TimeoutError:
            raise TemplateLimitError(f"took longer than {format_duration(self._timeout)}") from None

    def close(self) -> None:
        """A render still running ends at its next check; nothing waits for it."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _render(self, context: Mapping[str, Any], deadline: float) -> str:
        self._sandbox.deadline = deadline
        chunks: list[str] = []
        size = 0
        for chunk in self._template.generate(context):
            size += len(chunk)
            if size > OUTPUT_MAX:
                raise TemplateLimitError(f"output over {OUTPUT_MAX} characters")
            self._sandbox.tick()
            chunks.append(chunk)
        return "".join(chunks)
