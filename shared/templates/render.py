"""Rendering a template for one customer: the email's three parts, an SMS body, a push message.

Each part renders in the sandbox (shared/templates/sandbox.py) with the customer's locale for the
filters. HTML autoescapes; subject and text do not (they are not HTML). A missing variable raises
:class:`TemplateError` naming it, with the template's file and line, instead of rendering an empty
hole. MJML bodies go through shared/templates/mjml.py; every HTML body has its CSS inlined. The
variables each template receives are listed in shared/domain/template_variables.py.

Each message renders within one budget (shared/templates/budget.py: CPU, work, size) and within its
channel's output limit (:data:`EMAIL_HTML_BYTES`, :data:`PUSH_BYTES`, the SMS's declared segments),
both raising :class:`TemplateBudgetExceeded`. Error messages are scrubbed of the render's values
(shared/templates/scrub.py): they are logged and recorded, and must not carry personal data.
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
from shared.templates.budget import Budget, Limits, TemplateBudgetExceeded, current_budget
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
from shared.templates.scrub import scrub, string_values, template_names

# Per-channel output limits. Gmail clips an email whose HTML is over 102 KB (the rest, footer and
# unsubscribe link included, hides behind "View entire message"); APNs and FCM refuse a payload over
# 4 KB, of which the title, body and link may take this much (the rest: image URL, data, framing);
# an RFC 5322 header line is at most 998 characters.
EMAIL_HTML_BYTES = 100_000
EMAIL_TEXT_BYTES = 100_000
SUBJECT_CHARS = 998
PUSH_BYTES = 3_000


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
def rendering(
    locale: str | None, layouts: Mapping[str, str] | None = None, limits: Limits | None = None
) -> Iterator[None]:
    """Locale for the filters, layouts for ``extends`` and one budget while a message renders."""
    t1 = current_locale.set(normalise_locale(locale) or DEFAULT_LOCALE)
    t2 = current_layouts.set(dict(layouts or {}))
    t3 = current_budget.set(Budget(limits))
    try:
        yield
    finally:
        current_locale.reset(t1)
        current_layouts.reset(t2)
        current_budget.reset(t3)


def _render_one(
    source: str, variables: Mapping[str, Any], *, file: str, html: bool, template_name: str
) -> str:
    compiled = compile_template(source, file=file, html=html, template_name=template_name)
    try:
        # Bounded as it is written (the budget counts outputs, loop passes' text, macros' results),
        # so a 30 MB body is stopped long before it exists; the channel's limit is checked after.
        return compiled.render(variables)
    except TemplateBudgetExceeded as exc:
        where, line = _template_line(exc.__traceback__, file)
        raise type(exc)(exc.problem, template=template_name, file=where, line=line) from None
    except jinja2.TemplateSyntaxError as exc:  # in a layout, found when the body extends it
        raise TemplateError(
            f"syntax error: {exc.message}", template=template_name, file=exc.name or file, line=exc.lineno
        ) from exc
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"no such layout: {exc.message}", template=template_name, file=file) from exc
    except RecursionError as exc:
        problem = "calls nested too deep (a macro calling itself without end?)"
        raise _runtime_error(problem, exc, file, template_name, TemplateBudgetExceeded) from None
    except Exception as exc:  # a template bug (bad filter input, 1 + "a"): report it, never half-send
        raise _scrubbed(exc, source, variables, file, template_name) from None


def _scrubbed(
    exc: Exception, source: str, variables: Mapping[str, Any], file: str, template_name: str
) -> TemplateError:
    """The error, told without the customer's values: the message ("number: 'Yolanda' is not a
    number") is logged and recorded, so it is scrubbed, and raised without its cause (a traceback
    would print the original)."""
    if isinstance(exc, jinja2.UndefinedError):
        problem = f"missing variable: {exc.message}"
    elif isinstance(exc, jinja2.sandbox.SecurityError):
        problem = f"refused by the sandbox: {exc}"
    else:
        problem = f"{type(exc).__name__}: {exc}"
    problem = scrub(problem, names=_names(source), values=string_values(variables))
    return _runtime_error(problem, exc, file, template_name)


def _names(source: str) -> set[str]:
    """The names the template's author wrote (kept in error messages), the layouts' included."""
    layouts = current_layouts.get() or {}
    return set().union(*(template_names(text) for text in (source, *layouts.values())))


def _runtime_error(
    message: str,
    exc: BaseException,
    file: str,
    template_name: str,
    kind: type[TemplateError] = TemplateError,
) -> TemplateError:
    where, line = _template_line(exc.__traceback__, file)
    return kind(message, template=template_name, file=where, line=line)


def _locale_of(template_locale: str | None, variables: Mapping[str, Any], locale: str | None) -> str | None:
    if locale:
        return locale
    if template_locale:
        return template_locale
    customer = variables.get("customer")
    return customer.get("locale") if isinstance(customer, Mapping) else None


def render_email(
    template: EmailTemplate,
    variables: Mapping[str, Any],
    *,
    locale: str | None = None,
    limits: Limits | None = None,
) -> RenderedEmail:
    """Render the three parts; raises :class:`TemplateError` on any template problem
    (:class:`TemplateBudgetExceeded` when it costs too much or comes out too large)."""
    name = template.name
    body_file = MJML_BODY if template.mjml else "body.html"
    compiled = mjml.precompiled_mjml(template.html, template.layouts) if template.mjml else None
    with rendering(_locale_of(template.locale, variables, locale), template.layouts, limits):
        subject = _render_one(template.subject, variables, file="subject.txt", html=False, template_name=name)
        html = None
        if compiled is not None:
            try:
                html = _render_one(compiled, variables, file=body_file, html=True, template_name=name)
            except TemplateBudgetExceeded:
                raise  # the slow way would only spend more
            except TemplateError:
                html = None  # rendered the slow way below, whose error names the source's line
        if html is None:
            html = _render_one(template.html, variables, file=body_file, html=True, template_name=name)
            if template.mjml:
                try:
                    html = mjml.mjml_to_html(html, template_name=name)
                except TemplateError as exc:  # the parser may quote the rendered text
                    raise TemplateError(
                        scrub(exc.problem, names=_names(template.html), values=string_values(variables)),
                        template=name,
                        file=body_file,
                    ) from None
        text = _render_one(template.text, variables, file="body.txt", html=False, template_name=name)
    if "<style" in html:
        try:
            html = mjml.inline_css(html)
        except ValueError as exc:
            problem = scrub(f"CSS: {exc}", names=_names(template.html), values=string_values(variables))
            raise TemplateError(problem, template=name, file=body_file) from None
    # A header is one line: newlines from the template (or a variable) must not reach it.
    subject = " ".join(subject.split())
    if not subject:
        raise TemplateError("subject renders empty", template=name, file="subject.txt")
    _at_most(len(subject), SUBJECT_CHARS, "characters", "the subject line", name, "subject.txt")
    _at_most(
        len(html.encode("utf-8")),
        EMAIL_HTML_BYTES,
        "bytes",
        "the HTML body (Gmail clips an email over 102 KB, hiding its footer)",
        name,
        body_file,
    )
    _at_most(len(text.encode("utf-8")), EMAIL_TEXT_BYTES, "bytes", "the text body", name, "body.txt")
    return RenderedEmail(subject=subject, html=html, text=text)


def _at_most(size: int, limit: int, unit: str, what: str, template: str, file: str) -> None:
    if size > limit:
        raise TemplateBudgetExceeded(
            f"{what} is {size:,} {unit}; at most {limit:,}", template=template, file=file
        )


def shows_address(html: str, lines: list[str]) -> bool:
    """Whether every line of a postal address is visible in an email's HTML (on one line or several).

    Compared unescaped: Jinja escapes ``&`` and quotes, and the CSS inliner re-serialises entities."""
    import html as html_lib

    text = " ".join(html_lib.unescape(re.sub(r"<[^>]*>", " ", html)).split())
    return all(" ".join(line.split()) in text for line in lines)


def render_sms(
    template: SmsTemplate,
    variables: Mapping[str, Any],
    *,
    locale: str | None = None,
    limits: Limits | None = None,
) -> str:
    """One SMS body: whitespace collapsed (line breaks cost characters and segments), within the
    segments its sms.json declares."""
    from shared.domain.contacts import segments

    with rendering(_locale_of(template.locale, variables, locale), limits=limits):
        body = _render_one(template.body, variables, file="sms.txt", html=False, template_name=template.name)
    body = " ".join(body.split())
    if not body:
        raise TemplateError("SMS body renders empty", template=template.name, file="sms.txt")
    count = segments(body)
    if count.segments > template.max_segments:
        raise TemplateBudgetExceeded(
            f"SMS is {count.segments} segments ({count.characters} {count.encoding} characters), more "
            f"than the {template.max_segments} declared in sms.json (default 2): shorten it or raise "
            "max_segments (at most 10)",
            template=template.name,
            file="sms.txt",
        )
    return body


def render_push(
    template: PushTemplate,
    variables: Mapping[str, Any],
    *,
    locale: str | None = None,
    limits: Limits | None = None,
) -> RenderedPush:
    def one(source: str, file: str) -> str:
        return " ".join(
            _render_one(source, variables, file=file, html=False, template_name=template.name).split()
        )

    with rendering(_locale_of(template.locale, variables, locale), limits=limits):
        title, body = one(template.title, "push_title.txt"), one(template.body, "push_body.txt")
        link = one(template.link, "push_link.txt") if template.link else None
    if not title or not body:
        raise TemplateError("push title and body must not render empty", template=template.name)
    size = sum(len(part.encode("utf-8")) for part in (title, body, link or ""))
    _at_most(size, PUSH_BYTES, "bytes", "the push title, body and link", template.name, "push_body.txt")
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
