"""MJML email bodies: compiled to HTML once per template version, and CSS inlined before sending.

The ``mjml`` and ``css_inline`` packages are imported where they are called, so a Lambda that sends
no MJML or styled email does not load them at cold start.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from shared.templates.model import MJML_BODY, TemplateError


def mjml_to_html(source: str, *, template_name: str = "", file: str = MJML_BODY) -> str:
    """Compile MJML (after Jinja) to responsive HTML; an MJML error is a TemplateError."""
    from mjml import mjml_to_html as compile_mjml

    try:
        result = compile_mjml(source)
    except Exception as exc:  # the parser raises on malformed XML
        raise TemplateError(f"MJML: {type(exc).__name__}: {exc}", template=template_name, file=file) from exc
    errors = list(getattr(result, "errors", []) or [])
    if errors:
        raise TemplateError(f"MJML: {errors[0]}", template=template_name, file=file)
    return str(result.html)


# --- MJML compiled once per template version ----------------------------------------------------
#
# Compiling MJML takes tens of milliseconds, and Jinja runs first, so the MJML differs per customer.
# Instead the template itself is compiled once: every Jinja tag is swapped for a marker, the layout
# inheritance is resolved, markers for statements ({% for %}, {% if %}) that sit between MJML
# components are wrapped in <mj-raw> so they pass through where they stand, MJML compiles, and the
# markers are put back. The result is an HTML Jinja template, cached by the content of the body and
# its layouts (so by their versions), and rendered per send like any HTML body. A template this
# cannot prove it handled (a marker lost or doubled, super(), raw blocks) is compiled per send.

_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_INHERITANCE = re.compile(r"^\{%-?\s*(extends|block|endblock)\b")
# The only inheritance tags resolved ahead: a literal layout name and plain block names (an
# expression in ``extends`` would be evaluated before any data exists; such a body goes per send).
_SAFE_INHERITANCE = re.compile(
    r"^\{%-?\s*(extends\s+([\"'])layout\.mjml\2|block\s+[A-Za-z_]\w*|endblock(\s+[A-Za-z_]\w*)?)\s*-?%\}$"
)
# MJML attributes it copies into the HTML as they are: a variable may fill them. Others (width,
# padding...) MJML computes with, so they need the value itself: such a body goes per send.
_PASS_THROUGH_ATTRIBUTES = frozenset({"href", "src", "alt", "title", "lang", "rel", "name", "target"})
_ATTRIBUTE = re.compile(r"([\w-]+)\s*=\s*(\"[^\"]*\"|'[^']*')")
_MARKER = re.compile(r"BMRG([ES])(\d+)X")
# MJML components whose content is HTML passed through as is (a statement there needs no mj-raw)
_MJML_ENDING_TAGS = frozenset(
    {
        "mj-text",
        "mj-button",
        "mj-raw",
        "mj-table",
        "mj-navbar-link",
        "mj-accordion-title",
        "mj-accordion-text",
        "mj-social-element",
        "mj-title",
        "mj-preview",
        "mj-style",
    }
)
_MJML_TAG = re.compile(r"<(/?)(mj-[a-z-]+|mjml)\b[^>]*?(/?)>")
_precompiled: OrderedDict[str, str | None] = OrderedDict()
_precompiled_lock = threading.Lock()
_PRECOMPILED_MAX = 64


class _Unsupported(Exception):
    """This template cannot be compiled ahead of its data; compile it per send instead."""


def _mask(source: str, tags: list[str]) -> str:
    def swap(match: re.Match[str]) -> str:
        tag = match.group(0)
        if tag.startswith("{#"):
            return ""
        if _INHERITANCE.match(tag):
            if not _SAFE_INHERITANCE.match(tag):
                raise _Unsupported(tag)
            return tag  # resolved below, before MJML sees the source
        if re.match(r"^\{%-?\s*(raw|call|macro|set)\b", tag) or "super(" in tag:
            raise _Unsupported(tag)
        tags.append(tag)
        return f"BMRG{'S' if tag.startswith('{%') else 'E'}{len(tags) - 1}X"

    return _JINJA_TAG.sub(swap, source)


def _raw_statements(mjml: str) -> str:
    """Wrap statement markers that stand between MJML components in <mj-raw>."""
    out: list[str] = []
    depth = 0  # inside an ending tag (its content is HTML)
    pos = 0
    for tag in _MJML_TAG.finditer(mjml):
        text = mjml[pos : tag.start()]
        out.append(text if depth else re.sub(r"(BMRGS\d+X)", r"<mj-raw>\1</mj-raw>", text))
        closing, name, self_closing = tag.group(1), tag.group(2), tag.group(3)
        if "BMRGS" in tag.group(0):
            raise _Unsupported("a statement inside an MJML tag")
        for attribute, value in _ATTRIBUTE.findall(tag.group(0)):
            if "BMRGE" in value and attribute not in _PASS_THROUGH_ATTRIBUTES:
                raise _Unsupported(f"a variable in the {attribute} attribute")
        if name in _MJML_ENDING_TAGS and not self_closing:
            depth += -1 if closing else 1
        out.append(tag.group(0))
        pos = tag.end()
    out.append(mjml[pos:])
    return "".join(out)


def _precompile_mjml(body: str, layouts: Mapping[str, str]) -> str:
    if "BMRG" in body or "BMRG" in layouts.get("layout.mjml", ""):
        raise _Unsupported("the text already looks like a marker")
    tags: list[str] = []
    masked_layouts = {name: _mask(text, tags) for name, text in layouts.items() if name == "layout.mjml"}
    masked = _mask(body, tags)
    # Only a literal extends and block tags are left; the sandbox resolves the inheritance anyway.
    env = ImmutableSandboxedEnvironment(loader=jinja2.DictLoader(masked_layouts), autoescape=False)
    flat = env.from_string(masked).render()
    result = mjml_to_html(_raw_statements(flat))
    found: dict[str, int] = {}
    for kind, index in _MARKER.findall(result):
        found[kind + index] = found.get(kind + index, 0) + 1
    for index, tag in enumerate(tags):
        count = found.get(("S" if tag.startswith("{%") else "E") + str(index), 0)
        if (tag.startswith("{%") and count != 1) or count < 1:
            raise _Unsupported(f"{tag} did not survive MJML")
    return _MARKER.sub(lambda m: tags[int(m.group(2))], result)


def precompiled_mjml(body: str, layouts: Mapping[str, str]) -> str | None:
    """The MJML body compiled to an HTML Jinja template, once per content; None: compile per send."""
    key = hashlib.sha256(
        "\0".join([body, *(f"{k}\0{v}" for k, v in sorted(layouts.items()))]).encode()
    ).hexdigest()
    with _precompiled_lock:
        if key in _precompiled:
            _precompiled.move_to_end(key)
            return _precompiled[key]
    try:
        html: str | None = _precompile_mjml(body, layouts)
    except (_Unsupported, TemplateError, jinja2.TemplateError):
        html = None  # the per-send path reports any real error with its file and line
    with _precompiled_lock:
        _precompiled[key] = html
        while len(_precompiled) > _PRECOMPILED_MAX:
            _precompiled.popitem(last=False)
    return html


def inline_css(html: str) -> str:
    """Move <style> rules onto the elements (mail clients drop <style>); @media rules stay."""
    import css_inline

    inliner = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)
    return str(inliner.inline(html))
