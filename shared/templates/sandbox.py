"""The sandboxed Jinja environment every template compiles in (lint parses with the same one).

Templates are written by store staff, so they run in Jinja's immutable sandbox: no attribute access
to internals (``''.__class__``), no mutating the variables, ranges and string/list repetition
bounded, no Jinja helper objects, only our filters. ``{% extends "layout.html" %}`` finds the layout
files of the render in progress (:data:`current_layouts`) and nothing else. Compiled templates are
cached by their content, so a version compiles once per Lambda.
"""

from __future__ import annotations

import contextvars
import hashlib
import threading
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from shared.templates.filters import FILTERS
from shared.templates.model import LAYOUT_FILES, TemplateError

current_layouts: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "template_layouts", default=None
)
_MAX_SEQUENCE = 100_000  # largest string/list a template may build with * (the sandbox bounds range())
_COMPILED_MAX = 256


class _Sandbox(ImmutableSandboxedEnvironment):
    """Immutable sandbox; mapping keys win over methods, and ``'x' * n`` and ``**`` are bounded."""

    intercepted_binops = frozenset({"*", "**"})

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
                    raise jinja2.sandbox.SecurityError("repetition too large")
        return super().call_binop(context, operator, left, right)


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
    )
    # Only our filters and a few harmless globals: no lipsum/cycler/joiner/namespace/dict.
    env.globals = {"range": env.globals["range"]}
    env.filters.update(FILTERS)
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
