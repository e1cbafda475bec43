"""What a template is, wherever it is stored and however it renders.

The files each channel's folder holds, the locale folders a template is looked up in (the customer's
locale, then its language, then the folder root, which is the store's default locale), the loaded
template objects, and :class:`TemplateError`, which every step from loading to rendering raises.
Standard library only, so every template module (and the S3 store) can share it for free.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_STORE = "_default"
LAYOUT = "_layout"
TEMPLATE_FILES = ("subject.txt", "body.html", "body.txt")
MJML_BODY = "body.mjml"
SMS_FILES = ("sms.txt",)  # optional sms.json: {"max_segments": N}
PUSH_FILES = ("push_title.txt", "push_body.txt")  # optional push_link.txt
# browser push: optional webpush_link.txt (opened on click), webpush_icon.txt, webpush_image.txt (URLs)
WEBPUSH_FILES = ("webpush_title.txt", "webpush_body.txt")
WEBPUSH_OPTIONAL = ("webpush_link.txt", "webpush_icon.txt", "webpush_image.txt")
LAYOUT_FILES = ("layout.html", "layout.mjml", "layout.txt")
DEFAULT_SMS_SEGMENTS = 2
MAX_SMS_SEGMENTS = 10  # the most sms.json may declare
DEFAULT_LOCALE = "en"

# Every file a template folder may hold, by channel: (required, optional). Email needs one of
# body.html / body.mjml, handled in code.
CHANNEL_FILES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "email": (("subject.txt", "body.txt"), ("body.html", MJML_BODY)),
    "sms": (SMS_FILES, ("sms.json",)),
    "push": (PUSH_FILES, ("push_link.txt",)),
    "webpush": (WEBPUSH_FILES, WEBPUSH_OPTIONAL),
    "layout": ((), LAYOUT_FILES),
}
ALL_FILES = frozenset(f for req, opt in CHANNEL_FILES.values() for f in (*req, *opt))

LOCALE_PATTERN = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class TemplateError(Exception):
    """A template could not be found, compiled or rendered. The message says where."""

    def __init__(self, message: str, *, template: str = "", file: str = "", line: int | None = None):
        self.template = template
        self.file = file
        self.line = line
        self.problem = message
        where = "/".join(p for p in (template, file) if p)
        if where and line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {message}" if where else message)


@dataclass(frozen=True)
class EmailTemplate:
    name: str
    subject: str
    html: str  # HTML, or MJML when ``mjml`` is true
    text: str
    origin: str = ""  # where it was loaded from, for error messages and logs
    locale: str | None = None  # the locale its words are in (None: the store's default)
    layouts: Mapping[str, str] = field(default_factory=dict)  # layout.html / layout.mjml / layout.txt
    mjml: bool = False


@dataclass(frozen=True)
class SmsTemplate:
    name: str
    body: str
    max_segments: int = DEFAULT_SMS_SEGMENTS  # the budget the template declares; longer is refused
    origin: str = ""
    locale: str | None = None


@dataclass(frozen=True)
class PushTemplate:
    name: str
    title: str
    body: str
    link: str | None = None
    origin: str = ""
    locale: str | None = None


@dataclass(frozen=True)
class WebPushTemplate:
    name: str
    title: str
    body: str
    link: str | None = None
    icon: str | None = None
    image: str | None = None
    origin: str = ""
    locale: str | None = None


# --- locales --------------------------------------------------------------------------------------


def normalise_locale(locale: str | None) -> str | None:
    """``pt_br`` / ``pt-BR`` -> ``pt-BR``; None or garbage -> None."""
    if not locale or not isinstance(locale, str):
        return None
    parts = locale.strip().replace("_", "-").split("-")
    if not parts[0]:
        return None
    out = [parts[0].lower()] + [p.upper() if len(p) == 2 else p.title() for p in parts[1:] if p]
    text = "-".join(out)
    return text if LOCALE_PATTERN.match(text) else None


def locale_chain(locale: str | None) -> list[str]:
    """Folders to try under a template, most specific first; "" is the root (store default)."""
    chain: list[str] = []
    loc = normalise_locale(locale)
    if loc:
        chain.append(loc)
        language = loc.split("-")[0]
        if language != loc:
            chain.append(language)
    chain.append("")
    return chain


def sms_segments_budget(meta: str | None, name: str = "") -> int:
    """``sms.json``'s ``max_segments`` (1-10), default 2."""
    if not meta:
        return DEFAULT_SMS_SEGMENTS
    try:
        data = json.loads(meta)
        if not isinstance(data, dict):
            raise ValueError('expected an object like {"max_segments": 3}')
        unknown = set(data) - {"max_segments"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}; allowed: max_segments")
        segments = data.get("max_segments", DEFAULT_SMS_SEGMENTS)
        if (
            isinstance(segments, bool)
            or not isinstance(segments, int)
            or not 1 <= segments <= MAX_SMS_SEGMENTS
        ):
            raise ValueError(
                f"max_segments must be a whole number from 1 to {MAX_SMS_SEGMENTS}, not {segments!r}"
            )
    except ValueError as exc:  # JSONDecodeError included
        raise TemplateError(
            str(exc), template=name, file="sms.json", line=getattr(exc, "lineno", None)
        ) from exc
    return segments
