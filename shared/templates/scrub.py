"""Render errors without the customer's values in them.

A template bug met at send time (``{{ customer.first_name|number }}`` for a customer called Yolanda)
raises ``number: 'Yolanda' is not a number``; that message goes to logs, to the step's recorded
reason and to the outbox, none of which may hold personal data. :func:`scrub` keeps what helps the
template's author (the error class, the template's own names, type names) and replaces every other
quoted value, e-mail address or long number, and any of the render's own string values, with
:data:`PLACEHOLDER`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import jinja2
from jinja2 import nodes

PLACEHOLDER = "'…'"
# Python and Jinja type names, as exceptions quote them ('int', "str", 'dict object')
_TYPES = frozenset(
    (
        "None NoneType int float str bool bytes list tuple dict set Decimal decimal.Decimal Markup "
        "Undefined StrictUndefined datetime date range generator function method LoopContext Macro "
        "builtin_function_or_method"
    ).split()
)
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")
_EMAIL = re.compile(r"[^\s'\"<>@]+@[^\s'\"<>@]+")
_LONG_NUMBER = re.compile(r"\+?\d[\d\s().-]{5,}\d")
_MIN_VALUE = 3  # shorter values ("en", "EUR"-like codes are 3) are only scrubbed when quoted


def template_names(source: str) -> set[str]:
    """The names a template's author wrote: variables, attributes, filters, tests, macros."""
    try:
        tree = jinja2.Environment().parse(source)
    except jinja2.TemplateSyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.find_all((nodes.Name, nodes.Getattr, nodes.Filter, nodes.Test, nodes.Macro)):
        names.add(getattr(node, "attr", None) or node.name)  # type: ignore[attr-defined]
    return names


def string_values(variables: Any, limit: int = 2_000) -> set[str]:
    """The string leaves of a render's variables (the customer's name, cart lines...)."""
    out: set[str] = set()
    stack = [variables]
    while stack and len(out) < limit:
        value = stack.pop()
        if isinstance(value, str):
            if len(value.strip()) >= _MIN_VALUE:
                out.add(value.strip())
        elif isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list | tuple | set):
            stack.extend(value)
    return out


def scrub(message: str, *, names: Iterable[str] = (), values: Iterable[str] = ()) -> str:
    """``message`` with every value that may be the customer's replaced by :data:`PLACEHOLDER`."""
    allowed = _TYPES | set(names)

    def quoted(match: re.Match[str]) -> str:
        inner = match.group(0)[1:-1]
        kind = inner.removesuffix(" object")
        return match.group(0) if inner in allowed or kind in allowed else PLACEHOLDER

    text = _QUOTED.sub(quoted, message)
    for value in sorted(values, key=len, reverse=True):
        if value in text:
            text = text.replace(value, "…")
    return _LONG_NUMBER.sub("…", _EMAIL.sub("…", text))
