"""The sandboxed Jinja environment every template compiles in (lint parses with the same one).

Templates are written by store staff, so they run in Jinja's immutable sandbox: no attribute access
to internals (``''.__class__``), no mutating the variables, no Jinja helper objects, only our
filters. Every render is bounded (shared/templates/budget.py): each ``{% for %}`` iterates through
``_guard_iter`` and each ``~`` through ``_guard_value`` (the compiled tree
is rewritten to call them, see :meth:`_Sandbox._generate`); calls, filters, ``range()``, ``*``,
``+`` and ``%`` are counted and their sizes checked *before* a padding, width, repetition or
replacement builds a huge string; every ``{{ output }}``, each loop pass's template text and each
macro's result count towards the text a render writes. ``{% extends "layout.html" %}`` finds the layout
files of the render in progress (:data:`current_layouts`) and nothing else. Compiled templates are
cached by their content, so a version compiles once per Lambda.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import re
import threading
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from shared.templates.budget import Budget, TemplateBudgetExceeded, budget, current_budget
from shared.templates.filters import FILTERS
from shared.templates.model import LAYOUT_FILES, TemplateError

current_layouts: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "template_layouts", default=None
)
_MAX_SEQUENCE = 100_000  # largest string/list a template may build with * (the sandbox bounds range())
_COMPILED_MAX = 256


# str methods whose int arguments are a width, a count or a tab size: checked before they run
_WIDTH_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})
# %-format and str.format fields: the digits of a width or a precision
_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\d+|\*)?(?:\.(\d+|\*))?")
_FORMAT_SPEC = re.compile(r"\{[^{}]*?:([^{}]*)\}")
_DIGITS = re.compile(r"\d+")
_NESTED_SPEC = re.compile(r"\{[^{}]*:[^{}]*\{")


def check_format_widths(fmt: str, *, percent: bool) -> None:
    """Refuse a format string whose width or precision would pad past the budget's width."""
    budget().width(_widest(fmt, percent), "a format width or precision")


@lru_cache(maxsize=512)  # format strings are mostly the template's own constants
def _widest(fmt: str, percent: bool) -> int:
    if percent:
        numbers = [n for pair in _PERCENT_FIELD.findall(fmt) for n in pair if n and n != "*"]
    else:
        numbers = [n for spec in _FORMAT_SPEC.findall(fmt) for n in _DIGITS.findall(spec)]
    return max((int(n) for n in numbers), default=0)


def _check_str_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Before a str method runs: widths and counts bounded, replacements estimated."""
    target = obj
    if isinstance(obj, types.FunctionType):  # the sandbox's wrapper of str.format / format_map
        target = obj.__dict__.get("__wrapped__", obj)
    if not isinstance(target, types.BuiltinMethodType) or not isinstance(target.__self__, str):
        return
    name, text = target.__name__, target.__self__
    if name in ("format", "format_map"):
        check_format_widths(text, percent=False)
        if _NESTED_SPEC.search(text):  # '{:{}}'.format(x, n): a width taken from the arguments
            values = (
                args[0].values() if name == "format_map" and args and isinstance(args[0], Mapping) else ()
            )
            for arg in (*args, *kwargs.values(), *values):
                budget().width(arg, "a format width or precision")
    elif name in _WIDTH_METHODS:
        for arg in (*args, *kwargs.values()):
            budget().width(arg, f"{name}() width")
    elif name == "replace" and len(args) >= 2:
        _check_replace(text, args[0], args[1], args[2] if len(args) > 2 else -1)


def _check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    size = len(text) + hits * (len(new) - len(old))
    limit = budget().limits.value_chars
    if size > limit:
        raise TemplateBudgetExceeded(f"replace() would build {size:,} characters; at most {limit:,}")


_SIZED_FILTERS = frozenset({"center", "indent", "slice", "batch", "wordwrap", "format", "replace"})


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that counts as work, has its widths checked first and its result's size after."""
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0  # context/environment first
    sized = name in _SIZED_FILTERS

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        b = budget()
        value = args[skip] if len(args) > skip else None
        b.tick()
        if sized:
            _check_filter_args(name, b, value, list(args[skip + 1 :]), kwargs)
        return b.value(func(*args, **kwargs))

    return bounded


def _check_filter_args(name: str, b: Budget, value: Any, rest: list[Any], kwargs: dict[str, Any]) -> None:
    """Before a filter that pads, wraps, formats or replaces runs: what it would build is bounded."""
    if name in ("center", "indent", "slice", "batch"):
        width = rest[0] if rest else kwargs.get("width", kwargs.get("slices", kwargs.get("linecount")))
        if name == "indent" and isinstance(width, str):
            # the indentation is written once per line: its length times the lines
            if len(width) * (str(value).count("\n") + 1) > b.limits.value_chars:
                raise TemplateBudgetExceeded("indent() would build too long a text")
        else:
            b.width(width, f"{name}() width")
    elif name == "wordwrap":
        width = rest[0] if rest else kwargs.get("width", 79)
        wrap = rest[2] if len(rest) > 2 else kwargs.get("wrapstring") or "\n"
        if isinstance(width, int) and width < 1:
            raise TemplateBudgetExceeded("wordwrap() width must be at least 1")
        if isinstance(value, str) and isinstance(width, int):
            if len(value) // max(width, 1) * (len(str(wrap)) + 1) > b.limits.value_chars:
                raise TemplateBudgetExceeded("wordwrap() would build too long a text")
    elif name == "format" and isinstance(value, str):
        check_format_widths(value, percent=True)
        if "*" in value:  # '%*d'|format(n, 1): the width comes from the arguments
            for arg in (*rest, *kwargs.values()):
                b.width(arg, "a format width or precision")
    elif name == "replace" and len(rest) >= 2:
        _check_replace(str(value), rest[0], rest[1], rest[2] if len(rest) > 2 else -1)


class _Sandbox(ImmutableSandboxedEnvironment):
    """Immutable sandbox; mapping keys win over methods, and every render is bounded (see above)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Jinja tries attributes before keys, so ``cart.items`` would be dict.items; data wins here.
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > 100:
            raise jinja2.sandbox.SecurityError("exponent too large")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(n, int)
                    and len(seq) * n > _MAX_SEQUENCE
                ):
                    raise TemplateBudgetExceeded(
                        f"* would build {len(seq) * n:,} items or characters; at most {_MAX_SEQUENCE:,}"
                    )
        elif operator == "%" and isinstance(left, str):
            check_format_widths(left, percent=True)
            if "*" in left:
                for arg in right if isinstance(right, tuple) else (right,):
                    budget().width(arg, "a format width or precision")
        elif (
            operator == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple)
        ):
            size, limit = len(left) + len(right), budget().limits.value_chars
            if size > limit:
                raise TemplateBudgetExceeded(f"+ would build {size:,} items or characters; at most {limit:,}")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        # Macros, caller(), recursive loop(), methods and range(): work, depth and size bounded.
        b = budget()
        b.tick()
        _check_str_call(__obj, args, kwargs)
        b.enter()
        try:
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            b.depth -= 1
        if isinstance(result, str):
            b.wrote(len(result))  # a macro's text (its body is not a loop's)
        return b.value(result)

    def _generate(self, source: Any, name: str | None, filename: str | None, defer_init: bool = False) -> str:
        # Rewrite the tree so loops and concatenations go through the guards below.
        if isinstance(source, nodes.Template):
            source = _Guards().visit(source)
        return super()._generate(source, name, filename, defer_init)


# Filter names no template can write (not identifiers): the guards are called directly, not through
# the sandbox's call(), which would cost each loop and concatenation a call's checks.
_GUARD_ITER, _GUARD_VALUE = "boomerang:guard_iter", "boomerang:guard_value"


def _guarded(name: str, arg: nodes.Node, *args: nodes.Expr) -> nodes.Filter:
    return nodes.Filter(arg, name, list(args), [], None, None, lineno=arg.lineno)


def _static_chars(body: list[nodes.Node]) -> int:
    """The template text a loop's body writes on each pass (its own, not its inner loops' or macros')."""
    total, stack = 0, list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, nodes.TemplateData):
            total += len(node.data)
        elif not isinstance(node, nodes.For | nodes.Macro | nodes.CallBlock):
            stack.extend(node.iter_child_nodes())
    return total


class _Guards(NodeTransformer):
    def visit_For(self, node: nodes.For) -> nodes.Node:
        visited = self.generic_visit(node)
        assert isinstance(visited, nodes.For)
        static = nodes.Const(_static_chars(visited.body), lineno=visited.lineno)
        visited.iter = _guarded(_GUARD_ITER, visited.iter, static)
        return visited

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        visited = self.generic_visit(node)
        assert isinstance(visited, nodes.Concat)
        return _guarded(_GUARD_VALUE, visited)


def _bounded_range(*args: int) -> range:
    """``range()``, no longer than the work a whole render may do."""
    rng = range(*args)
    limit = budget().limits.work
    if len(rng) > limit:
        raise TemplateBudgetExceeded(f"range() of {len(rng):,} items; at most {limit:,}")
    return rng


def _guard_iter(iterable: Iterable[Any], static_chars: int = 0) -> Iterator[Any] | Any:
    """What a ``{% for %}`` iterates: each item is a unit of work, and writes the body's text."""
    if isinstance(iterable, jinja2.Undefined):
        return iterable  # StrictUndefined raises its own clear error when the loop starts
    return budget().iterate(iterable, static_chars)


def _guard_value(value: Any) -> Any:
    """The result of a ``~`` concatenation, checked for size."""
    return budget().value(value)


def _finalize(value: Any) -> Any:
    """Every ``{{ output }}``: its length counts towards the text a render may write."""
    if isinstance(value, str):
        b = current_budget.get()
        if b is not None:
            b.wrote(len(value))
    return value


class _LayoutLoader(jinja2.BaseLoader):
    """``{% extends "layout.html" %}``: the layout files of the render in progress, nothing else."""

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        layouts = current_layouts.get() or {}
        if template not in LAYOUT_FILES or template not in layouts:
            available = ", ".join(sorted(layouts)) or "none"
            raise jinja2.TemplateNotFound(f"{template} (layouts available: {available})")
        return layouts[template], template, lambda: False


def _new_env(*, autoescape: bool) -> jinja2.Environment:
    env = _Sandbox(
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        cache_size=0,  # we cache compiled templates ourselves, by content
        loader=_LayoutLoader(),
        finalize=_finalize,
    )
    # Only our filters and a few harmless globals: no lipsum/cycler/joiner/namespace/dict.
    env.globals = {"range": _bounded_range}
    env.filters.update(FILTERS)
    env.filters = {name: _bounded_filter(name, f) for name, f in env.filters.items()}
    env.filters.update({_GUARD_ITER: _guard_iter, _GUARD_VALUE: _guard_value})
    return env


@lru_cache(maxsize=2)
def _env(autoescape: bool) -> jinja2.Environment:
    return _new_env(autoescape=autoescape)


def environment(*, html: bool) -> jinja2.Environment:
    """The sandboxed environment templates render in (lint parses with the same one)."""
    return _env(html)


_compiled: dict[tuple[bool, str], jinja2.Template] = {}
_compiled_lock = threading.Lock()


def compile_template(source: str, *, file: str, html: bool, template_name: str) -> jinja2.Template:
    key = (html, hashlib.sha256(source.encode("utf-8")).hexdigest())
    with _compiled_lock:
        hit = _compiled.get(key)
    if hit is not None:
        return hit
    env = _env(html)
    try:
        # The file name goes into the code object so runtime errors can report template lines.
        code = env.compile(source, name=file, filename=file)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"syntax error: {exc.message}", template=template_name, file=file, line=exc.lineno
        ) from exc
    except jinja2.sandbox.SecurityError as exc:  # constant folding met an unsafe attribute
        raise TemplateError(f"refused by the sandbox: {exc}", template=template_name, file=file) from exc
    compiled = env.template_class.from_code(env, code, env.make_globals(None))
    with _compiled_lock:
        if len(_compiled) >= _COMPILED_MAX:
            _compiled.clear()
        _compiled[key] = compiled
    return compiled
