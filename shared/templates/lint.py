"""Checks a template folder before it may be sent: the validator λ, `boomerang templates lint`.

Every problem names the file, the line (when there is one) and what is wrong and allowed:

- syntax errors (Jinja's own message and line);
- unsafe constructs: attributes or keys starting with ``_`` (``''.__class__.__mro__``), known
  escape hatches (``mro``, ``globals``, ``subclasses``, ``os``...), the ``attr`` filter, Jinja's
  helper objects (``self``, ``cycler``, ``lipsum``...), ``include``/``import``, and ``extends`` of
  anything but the shared layout;
- unknown variables and attributes, against the template's row in shared/domain/template_variables.py;
- trial renders with several sample customers (the folder's locale, other names and locales, empty
  and long carts, missing optional fields), each within the render budget and its channel's output
  limit: runtime errors, a template too slow or too large, a marketing email with no visible
  unsubscribe link or postal address, an SMS longer than its declared segments, an empty push;
- files with names Boomerang does not know, and channels missing a required file.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import nodes

from shared.domain import template_variables as catalog
from shared.templates.model import (
    ALL_FILES,
    CHANNEL_FILES,
    LAYOUT,
    LAYOUT_FILES,
    LOCALE_PATTERN,
    MAX_SMS_SEGMENTS,
    MJML_BODY,
    EmailTemplate,
    PushTemplate,
    SmsTemplate,
    TemplateError,
    WebPushTemplate,
    sms_segments_budget,
)
from shared.templates.render import render_email, render_push, render_sms, render_webpush, shows_address
from shared.templates.sandbox import environment

UNSAFE_NAMES = frozenset(
    {
        "mro",
        "globals",
        "builtins",
        "subclasses",
        "base",
        "bases",
        "func_globals",
        "f_globals",
        "f_locals",
        "f_back",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "co_code",
        "func_code",
        "im_func",
        "im_self",
        "os",
        "sys",
        "subprocess",
        "popen",
        "system",
        "import",
        "eval",
        "exec",
        "compile",
        "open",
        "getattr",
        "setattr",
        "environment",
        "application",
        "module",
        "modules",
        "request",
        "config",
        "self",
        "cycler",
        "joiner",
        "lipsum",
        "namespace",
        "dict",
        "attr",
        "url_for",
        "get_flashed_messages",
        "session",
        "g",
        "loader",
        "tb_frame",
    }  # fmt: skip
)
UNSAFE_FILTERS = frozenset({"attr"})


@dataclass(frozen=True)
class Problem:
    file: str  # relative to the folder checked, e.g. "pl/subject.txt"
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "message": self.message}


# --- one file -------------------------------------------------------------------------------------


def _describe(shape: Any) -> str:
    if isinstance(shape, dict):
        return ", ".join(sorted(shape))
    if isinstance(shape, list):
        return "a list (use it in {% for x in ... %})"
    return f"a {shape} value"


class _Checker:
    def __init__(self, file: str, spec: catalog.TemplateSpec, *, layout: bool) -> None:
        self.file = file
        self.spec = spec
        self.roots = spec.shape()
        self.layout = layout
        self.problems: list[Problem] = []
        self._reported: set[tuple[int | None, str]] = set()

    def add(self, node: nodes.Node | None, message: str) -> None:
        line = getattr(node, "lineno", None)
        if (line, message) not in self._reported:
            self._reported.add((line, message))
            self.problems.append(Problem(self.file, line, message))

    # shapes: dict/list/leaf str from the catalog, or None when unknown (locals, filter results)
    def shape_of(self, node: nodes.Node, scope: Mapping[str, Any]) -> Any:
        if isinstance(node, nodes.Name):
            if node.name in scope:
                return scope[node.name]
            return self.roots.get(node.name)
        if isinstance(node, nodes.Getattr):
            return self._member(self.shape_of(node.node, scope), node.attr, node)
        if isinstance(node, nodes.Getitem):
            parent = self.shape_of(node.node, scope)
            arg = node.arg
            if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                return self._member(parent, arg.value, node)
            if isinstance(arg, nodes.Slice):
                return parent  # products[:3] is still a list
            if isinstance(parent, list):
                return parent[0]
            return None
        return None

    def _member(self, parent: Any, attr: str, node: nodes.Node) -> Any:
        if isinstance(parent, dict):
            return parent.get(attr)
        return None

    def check_member(self, parent: Any, attr: str, node: nodes.Node, path: str) -> None:
        if attr.startswith("_") or attr in UNSAFE_NAMES:
            self.add(
                node, f"unsafe: '{attr}' reaches Python internals; templates may only read their variables"
            )
            return
        if parent is None:
            return
        if isinstance(parent, dict):
            if attr not in parent:
                self.add(node, f"unknown variable {path}.{attr}; {path} has: {_describe(parent)}")
        elif isinstance(parent, list):
            self.add(node, f"{path} is a list: loop over it or index it ({path}[0]), it has no '{attr}'")
        elif attr not in catalog.STR_METHODS:
            self.add(
                node,
                f"{path} is {_describe(parent)}: '{attr}' is not allowed "
                f"(methods allowed: {', '.join(sorted(catalog.STR_METHODS))})",
            )

    def path_of(self, node: nodes.Node) -> str:
        if isinstance(node, nodes.Name):
            return node.name
        if isinstance(node, nodes.Getattr):
            return f"{self.path_of(node.node)}.{node.attr}"
        if isinstance(node, nodes.Getitem):
            arg = node.arg
            inner = repr(arg.value) if isinstance(arg, nodes.Const) else "..."
            return f"{self.path_of(node.node)}[{inner}]"
        return "(expression)"

    # the walk
    def walk(self, node: nodes.Node, scope: dict[str, Any]) -> None:
        if isinstance(node, nodes.Name) and node.ctx == "load":
            self._name(node, scope)
        elif isinstance(node, nodes.Getattr):
            self.check_member(self.shape_of(node.node, scope), node.attr, node, self.path_of(node.node))
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            value = node.arg.value
            if isinstance(value, str):
                self.check_member(self.shape_of(node.node, scope), value, node, self.path_of(node.node))
        elif isinstance(node, nodes.Const) and isinstance(node.value, str) and node.value.startswith("__"):
            self.add(node, f"unsafe: the string '{node.value}' names Python internals")
        elif isinstance(node, nodes.Filter | nodes.Test) and node.name in UNSAFE_FILTERS:
            self.add(node, f"unsafe: the '{node.name}' filter is not allowed")
        elif isinstance(node, nodes.Extends):
            target = node.template
            if not (isinstance(target, nodes.Const) and target.value in LAYOUT_FILES) or self.layout:
                self.add(node, 'only {% extends "layout.html" %} (or layout.mjml/layout.txt) is allowed here')
        elif isinstance(node, nodes.Include | nodes.Import | nodes.FromImport):
            self.add(node, "include/import is not allowed: extend the shared layout instead")
        if isinstance(node, nodes.For):
            self._for(node, scope)
            return
        if isinstance(node, nodes.Macro | nodes.CallBlock):
            inner = dict(scope)
            for arg in getattr(node, "args", []):
                inner[arg.name] = None
            inner.update(dict.fromkeys(("caller", "varargs", "kwargs")))
            for child in node.iter_child_nodes():
                self.walk(child, inner)
            return
        for child in node.iter_child_nodes():
            self.walk(child, scope)

    def _name(self, node: nodes.Name, scope: Mapping[str, Any]) -> None:
        name = node.name
        if name in scope or name in self.roots or name in catalog.BUILTINS:
            return
        if name in UNSAFE_NAMES or name.startswith("_"):
            self.add(node, f"unsafe: '{name}' is not available to templates")
            return
        allowed = ", ".join(sorted(self.roots))
        self.add(node, f"unknown variable '{name}'; this template may use: {allowed}")

    def _for(self, node: nodes.For, scope: dict[str, Any]) -> None:
        self.walk(node.iter, scope)
        iterable = self.shape_of(node.iter, scope)
        element = iterable[0] if isinstance(iterable, list) else None
        if isinstance(iterable, dict | str) and iterable is not None:
            self.add(node.iter, f"{self.path_of(node.iter)} is not a list; it is {_describe(iterable)}")
        inner = dict(scope)
        inner["loop"] = None
        if isinstance(node.target, nodes.Name):
            inner[node.target.name] = element
        else:
            for name in node.target.find_all(nodes.Name):
                inner[name.name] = None
        for child in (*node.body, *node.else_):
            self.walk(child, inner)
        if node.test is not None:
            self.walk(node.test, inner)


def _locals(tree: nodes.Template) -> dict[str, Any]:
    """Names a template defines itself ({% set %}, macros): their shape is unknown."""
    names: dict[str, Any] = {}
    for node in tree.find_all((nodes.Assign, nodes.AssignBlock)):
        target: nodes.Node = node.target  # type: ignore[attr-defined]
        targets = [target, *target.find_all(nodes.Name)]
        for name in targets:
            if isinstance(name, nodes.Name):
                names[name.name] = None
    for macro in tree.find_all(nodes.Macro):
        names[macro.name] = None
    return names


def lint_source(source: str, *, file: str, template: str) -> list[Problem]:
    """Syntax, unsafe constructs and unknown variables of one file (no rendering)."""
    html = file.endswith((".html", ".mjml"))
    env = environment(html=html)
    try:
        tree = env.parse(source, name=file, filename=file)
        env.compile(source, name=file, filename=file)  # unknown filters and tests fail here
    except jinja2.TemplateSyntaxError as exc:
        return [Problem(file, exc.lineno, f"syntax error: {exc.message}")]
    spec = catalog.spec_for(template)
    checker = _Checker(file, spec, layout=template == LAYOUT)
    checker.walk(tree, _locals(tree))
    return sorted(checker.problems, key=lambda p: (p.line or 0, p.message))


# --- a whole folder -------------------------------------------------------------------------------


def split_locale(relpath: str) -> tuple[str, str]:
    """``pl/subject.txt`` -> (``pl``, ``subject.txt``); ``subject.txt`` -> ("", ``subject.txt``)."""
    head, _, tail = relpath.rpartition("/")
    return head, tail


def unit_of(file: str) -> str | None:
    for channel, (required, optional) in CHANNEL_FILES.items():
        if file in required or file in optional:
            return channel
    return None


def units(files: Iterable[str], template: str) -> dict[tuple[str, str], list[str]]:
    """Group a folder's files into (locale, channel) units, the pieces that become active together."""
    out: dict[tuple[str, str], list[str]] = {}
    for relpath in files:
        locale, file = split_locale(relpath)
        channel = unit_of(file)
        if channel is None or (channel == "layout") != (template == LAYOUT):
            continue
        out.setdefault((locale, channel), []).append(relpath)
    return out


def missing_files(channel: str, present: Iterable[str]) -> list[str]:
    names = {split_locale(p)[1] for p in present}
    required, _ = CHANNEL_FILES[channel]
    missing = [f for f in required if f not in names]
    if channel == "email" and "body.html" not in names and MJML_BODY not in names:
        missing.append("body.html (or body.mjml)")
    return missing


def check_names(relpaths: Iterable[str], template: str) -> list[Problem]:
    problems = []
    for relpath in relpaths:
        locale, file = split_locale(relpath)
        if locale and ("/" in locale or not LOCALE_PATTERN.match(locale)):
            problems.append(
                Problem(relpath, None, f"'{locale}' is not a locale folder (use e.g. pl, pt-BR, zh-CN)")
            )
        allowed = LAYOUT_FILES if template == LAYOUT else sorted(ALL_FILES - set(LAYOUT_FILES))
        if file not in allowed:
            problems.append(Problem(relpath, None, f"unknown file name; allowed: {', '.join(allowed)}"))
    return problems


def lint_unit(
    template: str,
    locale: str,
    channel: str,
    files: Mapping[str, str],
    layouts: Mapping[str, str] | None = None,
) -> list[Problem]:
    """Check one (locale, channel) unit; ``files`` maps file names (no locale folder) to text."""
    prefix = f"{locale}/" if locale else ""
    problems: list[Problem] = []
    missing = missing_files(channel, files)
    if missing:
        problems.append(
            Problem(
                prefix + missing[0].split(" ")[0],
                None,
                f"missing: the {channel} template{' for ' + locale if locale else ''} also needs "
                f"{', '.join(missing)}; until it has them, the next locale or the default template is sent",
            )
        )
    for file, source in sorted(files.items()):
        if file == "sms.json":
            try:
                sms_segments_budget(source, template)
            except TemplateError as exc:
                problems.append(Problem(prefix + file, exc.line, exc.problem))
            continue
        problems += [
            Problem(prefix + p.file, p.line, p.message)
            for p in lint_source(source, file=file, template=template)
        ]
    if problems or channel == "layout":
        if channel == "layout" and not problems:
            problems += _check_layout(files, prefix)
        return problems
    return [
        Problem(prefix + p.file, p.line, p.message) for p in _trial(template, locale, channel, files, layouts)
    ]


def _check_layout(files: Mapping[str, str], prefix: str) -> list[Problem]:
    problems = []
    for file in ("layout.html", "layout.mjml"):
        if file in files and "block content" not in re.sub(r"\s+", " ", files[file]):
            problems.append(Problem(prefix + file, None, "a layout needs {% block content %}{% endblock %}"))
        if file in files and "unsubscribe_url" not in files[file]:
            problems.append(
                Problem(
                    prefix + file,
                    None,
                    "the layout's footer must link {{ unsubscribe_url }} (marketing email)",
                )
            )
        if file in files and not re.search(r"store\s*\.\s*address", files[file]):
            problems.append(
                Problem(
                    prefix + file,
                    None,
                    "the layout's footer must show the store's postal address, {{ store.address }} "
                    "(or store.address_lines): the law (CAN-SPAM) requires it in marketing email",
                )
            )
    return problems


_TRIALS_MAX = 512  # verdicts kept: a folder's unchanged units are not rendered again on each upload
_trials: OrderedDict[str, list[Problem]] = OrderedDict()
_trials_lock = threading.Lock()


def _trial(
    template: str, locale: str, channel: str, files: Mapping[str, str], layouts: Mapping[str, str] | None
) -> list[Problem]:
    """Render the unit for several sample customers (different names, locales, empty and long carts,
    missing optional fields): a loop or an error that only some customers meet is caught here, and
    each render is bounded (CPU, size), so the slowest template still gets a verdict quickly.

    The verdict depends only on the unit's text (the samples are constants), so it is kept by content
    (bounded): every upload re-checks the whole folder, and its unchanged units cost nothing."""
    key = hashlib.sha256(
        repr((template, locale, channel, sorted(files.items()), sorted((layouts or {}).items()))).encode()
    ).hexdigest()
    with _trials_lock:
        if key in _trials:
            _trials.move_to_end(key)
            return list(_trials[key])
    problems = _trial_uncached(template, locale, channel, files, layouts)
    with _trials_lock:
        _trials[key] = problems
        while len(_trials) > _TRIALS_MAX:
            _trials.popitem(last=False)
    return list(problems)


def _trial_uncached(
    template: str, locale: str, channel: str, files: Mapping[str, str], layouts: Mapping[str, str] | None
) -> list[Problem]:
    for n, (label, variables) in enumerate(catalog.sample_variations(template, locale or None)):
        try:
            problems = _trial_one(template, locale, channel, files, layouts, variables, first=n == 0)
        except TemplateError as exc:
            return [Problem(exc.file or "./", exc.line, f"with {label}: {exc.problem}")]
        if problems:
            return problems
    return []


def _trial_one(
    template: str,
    locale: str,
    channel: str,
    files: Mapping[str, str],
    layouts: Mapping[str, str] | None,
    variables: dict[str, Any],
    *,
    first: bool,
) -> list[Problem]:
    spec = catalog.spec_for(template)
    loc = locale or None
    if channel == "email":
        mjml = MJML_BODY in files
        email = EmailTemplate(
            name=template,
            subject=files["subject.txt"],
            html=files[MJML_BODY] if mjml else files["body.html"],
            text=files["body.txt"],
            locale=loc,
            layouts=dict(layouts or {}),
            mjml=mjml,
        )
        rendered = render_email(email, variables)
        if not first:
            return []  # the links and the address come from the template, not the customer
        unsubscribe = variables.get("unsubscribe_url")
        if spec.marketing and unsubscribe and f'href="{unsubscribe}"' not in rendered.html:
            body = MJML_BODY if mjml else "body.html"
            return [
                Problem(
                    body,
                    None,
                    "marketing email without a visible unsubscribe link: add "
                    '<a href="{{ unsubscribe_url }}">Unsubscribe</a> (or extend the layout, whose footer has it)',
                )
            ]
        address = variables.get("store", {}).get("address_lines")
        if spec.marketing and address and not shows_address(rendered.html, address):
            return [
                Problem(
                    MJML_BODY if mjml else "body.html",
                    None,
                    "marketing email without the store's postal address (CAN-SPAM requires it): add "
                    "{{ store.address }} to the footer (or extend the layout, whose footer has it)",
                )
            ]
    elif channel == "sms":
        declared = sms_segments_budget(files.get("sms.json"), template)
        # The declared segments hold for the usual sample; another customer's long name (or one in
        # another script, which makes the whole SMS UCS-2) only has to fit the most sms.json allows.
        sms = SmsTemplate(
            name=template,
            body=files["sms.txt"],
            max_segments=declared if first else MAX_SMS_SEGMENTS,
            locale=loc,
        )
        render_sms(sms, variables)
    elif channel == "push":
        render_push(
            PushTemplate(
                name=template,
                title=files["push_title.txt"],
                body=files["push_body.txt"],
                link=files.get("push_link.txt"),
                locale=loc,
            ),
            variables,
        )
    elif channel == "webpush":
        from shared.domain.webpush import notification_payload

        shown = render_webpush(
            WebPushTemplate(
                name=template,
                title=files["webpush_title.txt"],
                body=files["webpush_body.txt"],
                link=files.get("webpush_link.txt"),
                icon=files.get("webpush_icon.txt"),
                image=files.get("webpush_image.txt"),
                locale=loc,
            ),
            variables,
        )
        try:
            notification_payload(shown.title, shown.body, shown.link, shown.icon, shown.image, {})
        except ValueError as exc:  # the notification would be over the push services' size limit
            return [Problem("webpush_body.txt", None, f"with sample data: {exc}")]
    return []


def lint_folder(
    template: str, files: Mapping[str, str], layouts_for: Any = None
) -> tuple[list[Problem], dict[tuple[str, str], list[Problem]]]:
    """Check every file of a template folder (relative paths -> text).

    ``layouts_for(locale)`` gives the layout files a body extends (default: none). Returns the
    problems not tied to a unit (unknown file names) and each (locale, channel) unit's problems.
    """
    general = check_names(files, template)
    bad = {p.file for p in general}
    per_unit: dict[tuple[str, str], list[Problem]] = {}
    for (locale, channel), relpaths in units([f for f in files if f not in bad], template).items():
        unit_files = {split_locale(r)[1]: files[r] for r in relpaths}
        layouts = layouts_for(locale) if layouts_for else None
        per_unit[(locale, channel)] = lint_unit(template, locale, channel, unit_files, layouts)
    return general, per_unit
