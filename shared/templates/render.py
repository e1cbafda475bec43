"""Rendering a template for one customer: the email's three parts, an SMS body, a push message.

Each part renders in the sandbox (shared/templates/sandbox.py) with the customer's locale for the
filters. HTML autoescapes; subject and text do not (they are not HTML). A missing variable raises
:class:`TemplateError` naming it, with the template's file and line, instead of rendering an empty
hole. MJML bodies go through shared/templates/mjml.py; every HTML body has its CSS inlined. The
variables each template receives are listed in shared/domain/template_variables.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import jinja2
import jinja2.sandbox

from shared.templates import mjml
from shared.templates.filters import current_locale
from shared.templates.model import (
    DEFAULT_LOCALE,
    LAYOUT_FILES,
    MJML_BODY,
    EmailTemplate,
    PushTemplate,
    SmsTemplate,
    TemplateError,
    WebPushTemplate,
    normalise_locale,
)
from shared.templates.sandbox import compile_template, current_layouts


@dataclass(frozen=True)
class RenderedPush:
    title: str
    body: str
    link: str | None


@dataclass(frozen=True)
class RenderedWebPush:
    title: str
    body: str
    link: str | None
    icon: str | None
    image: str | None


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


def _template_line(tb: TracebackType | None, file: str) -> tuple[str, int | None]:
    where: tuple[str, int | None] = (file, None)
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name == file or name in LAYOUT_FILES:
            where = (name, tb.tb_lineno)
        tb = tb.tb_next
    return where


@contextmanager
def rendering(locale: str | None, layouts: Mapping[str, str] | None = None) -> Iterator[None]:
    """Locale for the filters and layouts for ``extends`` while templates render in this thread."""
    t1 = current_locale.set(normalise_locale(locale) or DEFAULT_LOCALE)
    t2 = current_layouts.set(dict(layouts or {}))
    try:
        yield
    finally:
        current_locale.reset(t1)
        current_layouts.reset(t2)


def _render_one(
    source: str, variables: Mapping[str, Any], *, file: str, html: bool, template_name: str
) -> str:
    compiled = compile_template(source, file=file, html=html, template_name=template_name)
    try:
        return compiled.render(variables)
    except jinja2.TemplateSyntaxError as exc:  # in a layout, found when the body extends it
        raise TemplateError(
            f"syntax error: {exc.message}", template=template_name, file=exc.name or file, line=exc.lineno
        ) from exc
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"no such layout: {exc.message}", template=template_name, file=file) from exc
    except jinja2.UndefinedError as exc:
        raise _runtime_error(f"missing variable: {exc.message}", exc, file, template_name) from exc
    except jinja2.sandbox.SecurityError as exc:
        raise _runtime_error(f"refused by the sandbox: {exc}", exc, file, template_name) from exc
    except Exception as exc:  # a template bug (bad filter input, 1 + "a"): report it, never half-send
        raise _runtime_error(f"{type(exc).__name__}: {exc}", exc, file, template_name) from exc


def _runtime_error(message: str, exc: BaseException, file: str, template_name: str) -> TemplateError:
    where, line = _template_line(exc.__traceback__, file)
    return TemplateError(message, template=template_name, file=where, line=line)


def _locale_of(template_locale: str | None, variables: Mapping[str, Any], locale: str | None) -> str | None:
    if locale:
        return locale
    if template_locale:
        return template_locale
    customer = variables.get("customer")
    return customer.get("locale") if isinstance(customer, Mapping) else None


def render_email(
    template: EmailTemplate, variables: Mapping[str, Any], *, locale: str | None = None
) -> RenderedEmail:
    """Render the three parts; raises :class:`TemplateError` on any template problem."""
    name = template.name
    body_file = MJML_BODY if template.mjml else "body.html"
    compiled = mjml.precompiled_mjml(template.html, template.layouts) if template.mjml else None
    with rendering(_locale_of(template.locale, variables, locale), template.layouts):
        subject = _render_one(template.subject, variables, file="subject.txt", html=False, template_name=name)
        html = None
        if compiled is not None:
            try:
                html = _render_one(compiled, variables, file=body_file, html=True, template_name=name)
            except TemplateError:
                html = None  # rendered the slow way below, whose error names the source's line
        if html is None:
            html = _render_one(template.html, variables, file=body_file, html=True, template_name=name)
            if template.mjml:
                html = mjml.mjml_to_html(html, template_name=name)
        text = _render_one(template.text, variables, file="body.txt", html=False, template_name=name)
    if "<style" in html:
        try:
            html = mjml.inline_css(html)
        except ValueError as exc:
            raise TemplateError(f"CSS: {exc}", template=name, file=body_file) from exc
    # A header is one line: newlines from the template (or a variable) must not reach it.
    subject = " ".join(subject.split())
    if not subject:
        raise TemplateError("subject renders empty", template=name, file="subject.txt")
    return RenderedEmail(subject=subject, html=html, text=text)


def shows_address(html: str, lines: list[str]) -> bool:
    """Whether every line of a postal address is visible in an email's HTML (on one line or several).

    Compared unescaped: Jinja escapes ``&`` and quotes, and the CSS inliner re-serialises entities."""
    import html as html_lib

    text = " ".join(html_lib.unescape(re.sub(r"<[^>]*>", " ", html)).split())
    return all(" ".join(line.split()) in text for line in lines)


def render_sms(template: SmsTemplate, variables: Mapping[str, Any], *, locale: str | None = None) -> str:
    """One SMS body: whitespace collapsed (line breaks cost characters and segments)."""
    with rendering(_locale_of(template.locale, variables, locale)):
        body = _render_one(template.body, variables, file="sms.txt", html=False, template_name=template.name)
    body = " ".join(body.split())
    if not body:
        raise TemplateError("SMS body renders empty", template=template.name, file="sms.txt")
    return body


def render_push(
    template: PushTemplate, variables: Mapping[str, Any], *, locale: str | None = None
) -> RenderedPush:
    def one(source: str, file: str) -> str:
        return " ".join(
            _render_one(source, variables, file=file, html=False, template_name=template.name).split()
        )

    with rendering(_locale_of(template.locale, variables, locale)):
        title, body = one(template.title, "push_title.txt"), one(template.body, "push_body.txt")
        link = one(template.link, "push_link.txt") if template.link else None
    if not title or not body:
        raise TemplateError("push title and body must not render empty", template=template.name)
    return RenderedPush(title=title, body=body, link=link or None)


def render_webpush(
    template: WebPushTemplate, variables: Mapping[str, Any], *, locale: str | None = None
) -> RenderedWebPush:
    """A browser notification: title and body on one line each; link, icon and image must render to
    https URLs (a page served over https may not load http images) or to nothing (left out)."""

    def one(source: str | None, file: str) -> str:
        if not source:
            return ""
        return " ".join(
            _render_one(source, variables, file=file, html=False, template_name=template.name).split()
        )

    with rendering(_locale_of(template.locale, variables, locale)):
        title, body = one(template.title, "webpush_title.txt"), one(template.body, "webpush_body.txt")
        urls = {f: one(getattr(template, f), f"webpush_{f}.txt") for f in ("link", "icon", "image")}
    if not title or not body:
        raise TemplateError("web push title and body must not render empty", template=template.name)
    for name, url in urls.items():
        if url and not url.startswith("https://"):
            raise TemplateError(
                f"must render to an https:// URL, got {url[:60]!r}",
                template=template.name,
                file=f"webpush_{name}.txt",
            )
    return RenderedWebPush(title=title, body=body, **{k: v or None for k, v in urls.items()})
