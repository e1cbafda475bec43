"""Message templates: where they live, which version is in force, and how they render safely.

Storage (S3, versioned bucket)
    ``templates/<store_id>/<name>/`` holds a template in the store's default locale:
    email ``subject.txt``, ``body.html`` (or ``body.mjml``), ``body.txt``; SMS ``sms.txt`` (optional
    ``sms.json`` ``{"max_segments": N}``); push ``push_title.txt``, ``push_body.txt`` (optional
    ``push_link.txt``). ``templates/<store_id>/<name>/<locale>/`` (``pl``, ``pt-BR``, ``zh-CN``...)
    holds translations with the same file names. ``templates/<store_id>/_layout/`` holds the optional
    shared layout (``layout.html`` or ``layout.mjml``, ``layout.txt``) that bodies extend with
    ``{% extends "layout.html" %}``. ``templates/_default/`` ships with Boomerang.

Which version is sent
    Only *active* versions. The validator (shared/templates/publish.py) checks each upload and
    records the versions in force in ``active/templates/<store_id>/<name>.json``; an upload that
    fails its checks never becomes active, so the previous version keeps being sent. Each channel
    resolves on its own: the customer's locale, then its language (``pt`` for ``pt-BR``), then the
    folder root (the store's default locale); first the store's folder, then ``_default``.

Rendering
    Templates are written by store staff, so they run in Jinja's immutable sandbox: no attribute
    access to internals (``''.__class__``), no mutating the variables, ranges and string/list
    repetition bounded. HTML autoescapes; subject and text do not (they are not HTML). A missing
    variable raises :class:`TemplateError` naming it, instead of rendering an empty hole. MJML
    bodies are compiled to HTML once per version, Jinja left in (see "MJML compiled once" below);
    every HTML body has its CSS inlined before sending.

Filters (locale-aware, Babel)
    ``money(amount, currency)`` ``12.5|money("EUR")`` -> ``€12.50`` (en), ``12,50 €`` (pl);
    ``number(value, decimals=None)``, ``percent(value)``, ``date(epoch_or_iso, format="medium")``,
    ``datetime(epoch_or_iso, format="medium", tz="UTC")``; ``href(url)`` keeps only http(s) links.

The variables each template receives are listed in shared/domain/template_variables.py.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from types import TracebackType
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict

DEFAULT_STORE = "_default"
LAYOUT = "_layout"
TEMPLATE_FILES = ("subject.txt", "body.html", "body.txt")
MJML_BODY = "body.mjml"
SMS_FILES = ("sms.txt",)  # optional sms.json: {"max_segments": N}
PUSH_FILES = ("push_title.txt", "push_body.txt")  # optional push_link.txt
LAYOUT_FILES = ("layout.html", "layout.mjml", "layout.txt")
DEFAULT_SMS_SEGMENTS = 2
DEFAULT_LOCALE = "en"
ACTIVE_PREFIX = "active/"  # active/templates/<store>/<name>.json

# Every file a template folder may hold, by channel: (required, optional). Email needs one of
# body.html / body.mjml, handled in code.
CHANNEL_FILES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "email": (("subject.txt", "body.txt"), ("body.html", MJML_BODY)),
    "sms": (SMS_FILES, ("sms.json",)),
    "push": (PUSH_FILES, ("push_link.txt",)),
    "layout": ((), LAYOUT_FILES),
}
ALL_FILES = frozenset(f for req, opt in CHANNEL_FILES.values() for f in (*req, *opt))

_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")  # keeps store ids and names inside their prefix
LOCALE_PATTERN = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_MAX_SEQUENCE = 100_000  # largest string/list a template may build with * (the sandbox bounds range())
_MAX_TEMPLATE_BYTES = 512 * 1024
_COMPILED_MAX = 256
_VERSIONS_MAX = 512


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
class RenderedPush:
    title: str
    body: str
    link: str | None


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


# --- variables ------------------------------------------------------------------------------------


class _Vars(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomerVars(_Vars):
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None


class StoreVars(_Vars):
    name: str
    url: str | None
    address: str | None = None
    address_lines: list[str] = []


class CartItemVars(_Vars):
    name: str
    quantity: int
    price: Decimal
    currency: str
    image_url: str | None = None
    url: str | None = None
    line_total: Decimal


class CartVars(_Vars):
    items: list[CartItemVars]
    value: Decimal | None
    currency: str
    item_count: int


class StepVars(_Vars):
    id: str
    index: int
    is_last: bool


class CartAbandonedVariables(_Vars):
    """The contract between the journey step that sends and the cart-abandoned templates."""

    customer: CustomerVars
    store: StoreVars
    cart: CartVars
    recovery_url: str
    unsubscribe_url: str
    preferences_url: str
    step: StepVars

    def context(self) -> dict[str, Any]:
        return self.model_dump(mode="python")


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


# --- storage --------------------------------------------------------------------------------------


def _check_id(kind: str, value: str) -> None:
    if not isinstance(value, str) or not _ID.match(value) or ".." in value:
        raise ValueError(f"invalid template {kind}: {value!r}")


def folder_prefix(owner: str, name: str) -> str:
    return f"templates/{owner}/{name}/"


def manifest_key(owner: str, name: str) -> str:
    return f"{ACTIVE_PREFIX}templates/{owner}/{name}.json"


class TemplateStore:
    """Reads the active versions of templates from S3.

    The record of which versions are active is cached for ``ttl_seconds`` (how long a marketer's
    validated edit takes to show up); a version's text never changes, so it is cached by version id.
    ``active_only=False`` reads the newest object of each file instead (tests and tools that put
    files straight into a bucket without the validator).
    """

    def __init__(
        self,
        s3_client: Any,
        bucket: str,
        ttl_seconds: float = 60,
        *,
        clock: Callable[[], float] = time.monotonic,
        active_only: bool = True,
    ) -> None:
        self._s3 = s3_client
        self._bucket = bucket
        self._ttl = ttl_seconds
        self._clock = clock
        self.active_only = active_only
        self._manifests: dict[tuple[str, str], tuple[float, dict[str, Any] | None]] = {}
        self._latest: dict[str, tuple[float, str | None]] = {}
        self._versions: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()  # the local emulator calls handlers from several threads

    def clear(self) -> None:
        with self._lock:
            self._manifests.clear()
            self._latest.clear()

    # -- public: one channel's template ------------------------------------------------------------
    def email(self, store_id: str, name: str, *, locale: str | None = None) -> EmailTemplate:
        files, origin, loc = self._resolve(store_id, name, "email", locale)
        mjml = files.get(MJML_BODY) is not None
        return EmailTemplate(
            name=name,
            subject=files["subject.txt"] or "",
            html=(files[MJML_BODY] if mjml else files.get("body.html")) or "",
            text=files["body.txt"] or "",
            origin=origin,
            locale=loc,
            layouts=self.layouts(store_id, locale=loc or locale),
            mjml=mjml,
        )

    def sms(self, store_id: str, name: str, *, locale: str | None = None) -> SmsTemplate:
        files, origin, loc = self._resolve(store_id, name, "sms", locale)
        return SmsTemplate(
            name=name,
            body=files["sms.txt"] or "",
            max_segments=sms_segments_budget(files.get("sms.json"), name),
            origin=origin,
            locale=loc,
        )

    def push(self, store_id: str, name: str, *, locale: str | None = None) -> PushTemplate:
        files, origin, loc = self._resolve(store_id, name, "push", locale)
        return PushTemplate(
            name=name,
            title=files["push_title.txt"] or "",
            body=files["push_body.txt"] or "",
            link=files.get("push_link.txt"),
            origin=origin,
            locale=loc,
        )

    def layouts(self, store_id: str, *, locale: str | None = None) -> dict[str, str]:
        """The shared layout files (store's, else the default's), each resolved by locale."""
        out: dict[str, str] = {}
        for file in LAYOUT_FILES:
            for owner, sub in self._candidates(store_id, locale):
                body = self._file(owner, LAYOUT, sub + file)
                if body is not None:
                    out[file] = body
                    break
        return out

    # -- resolution --------------------------------------------------------------------------------
    @staticmethod
    def _candidates(store_id: str, locale: str | None) -> Iterator[tuple[str, str]]:
        for owner in dict.fromkeys((store_id, DEFAULT_STORE)):
            for loc in locale_chain(locale):
                yield owner, f"{loc}/" if loc else ""

    def _resolve(
        self, store_id: str, name: str, channel: str, locale: str | None
    ) -> tuple[dict[str, str | None], str, str | None]:
        _check_id("store id", store_id)
        _check_id("name", name)
        required, optional = CHANNEL_FILES[channel]
        for owner, sub in self._candidates(store_id, locale):
            found = {f: self._file(owner, name, sub + f) for f in (*required, *optional)}
            present = [f for f, v in found.items() if v is not None and f in required]
            if not present and not (channel == "email" and (found["body.html"] or found[MJML_BODY])):
                continue
            missing = [f for f in required if found[f] is None]
            if channel == "email" and found["body.html"] is None and found[MJML_BODY] is None:
                missing.append("body.html")
            if missing:
                # Only reachable without the validator (it never activates half a channel).
                raise TemplateError(
                    f"incomplete template in s3://{self._bucket}/{folder_prefix(owner, name)}{sub}: "
                    f"missing {', '.join(missing)}",
                    template=name,
                )
            origin = f"s3://{self._bucket}/{folder_prefix(owner, name)}{sub}"
            return found, origin, sub.rstrip("/") or None
        what = "active " if self.active_only else ""
        raise TemplateError(
            f"no {what}{channel} template in s3://{self._bucket}/templates/{store_id}/{name}/ "
            f"nor templates/{DEFAULT_STORE}/{name}/",
            template=name,
        )

    def _file(self, owner: str, name: str, relpath: str) -> str | None:
        key = folder_prefix(owner, name) + relpath
        if not self.active_only:
            return self._latest_text(key)
        manifest = self.manifest(owner, name)
        entry = (manifest or {}).get("files", {}).get(relpath)
        if not entry:
            return None
        return self._version_text(key, entry.get("version_id"))

    def manifest(self, owner: str, name: str) -> dict[str, Any] | None:
        """The active-versions record of a template folder (None: nothing validated there yet)."""
        cache_key = (owner, name)
        now = self._clock()
        with self._lock:
            hit = self._manifests.get(cache_key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        raw = self._get(manifest_key(owner, name))
        manifest = json.loads(raw) if raw else None
        with self._lock:
            self._manifests[cache_key] = (now, manifest)
        return manifest

    def _latest_text(self, key: str) -> str | None:
        now = self._clock()
        with self._lock:
            hit = self._latest.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        text = self._get(key)
        with self._lock:
            self._latest[key] = (now, text)
        return text

    def _version_text(self, key: str, version_id: str | None) -> str | None:
        if not version_id or version_id == "null":  # an unversioned bucket has one version
            return self._latest_text(key)
        cache_key = (key, version_id)
        with self._lock:
            if cache_key in self._versions:
                self._versions.move_to_end(cache_key)
                return self._versions[cache_key]
        text = self._get(key, version_id)
        if text is None:
            raise TemplateError(f"active version {version_id} of s3://{self._bucket}/{key} is gone")
        with self._lock:
            self._versions[cache_key] = text
            while len(self._versions) > _VERSIONS_MAX:
                self._versions.popitem(last=False)
        return text

    def _get(self, key: str, version_id: str | None = None) -> str | None:
        return read_object(self._s3, self._bucket, key, version_id)


def read_object(s3: Any, bucket: str, key: str, version_id: str | None = None) -> str | None:
    """An object's text (UTF-8, at most 512 KB); None when it does not exist."""
    args = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
    try:
        response = s3.get_object(**args)
    except s3.exceptions.NoSuchKey:
        return None
    except Exception as exc:
        # Without s3:ListBucket a missing key answers 403, which we must not read as "absent".
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code in ("404", "NotFound", "NoSuchVersion"):
            return None
        raise
    body: bytes = response["Body"].read(_MAX_TEMPLATE_BYTES + 1)
    if len(body) > _MAX_TEMPLATE_BYTES:
        raise TemplateError(f"s3://{bucket}/{key} is larger than {_MAX_TEMPLATE_BYTES} bytes")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TemplateError(f"s3://{bucket}/{key} is not UTF-8") from exc


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
        if isinstance(segments, bool) or not isinstance(segments, int) or not 1 <= segments <= 10:
            raise ValueError(f"max_segments must be a whole number from 1 to 10, not {segments!r}")
    except ValueError as exc:  # JSONDecodeError included
        raise TemplateError(
            str(exc), template=name, file="sms.json", line=getattr(exc, "lineno", None)
        ) from exc
    return segments


# --- filters --------------------------------------------------------------------------------------

_render_locale: contextvars.ContextVar[str] = contextvars.ContextVar(
    "template_locale", default=DEFAULT_LOCALE
)
_render_layouts: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "template_layouts", default=None
)
_ZERO_DECIMAL = {"JPY", "KRW", "VND", "CLP", "ISK", "HUF", "TWD", "UGX"}


@lru_cache(maxsize=64)
def _babel_locale(locale: str) -> Any:
    from babel import Locale, UnknownLocaleError

    try:
        return Locale.parse(locale.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse(DEFAULT_LOCALE)


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{what}: {value!r} is not a number")
    try:
        # str() first: Decimal(0.1) would carry the float's binary artefacts into the output.
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{what}: {value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{what}: {value!r} is not a number")
    return number


def money(amount: Any, currency: Any, locale: str | None = None) -> str:
    """An amount in a currency, written the way the customer's locale writes it (half-up)."""
    from babel.numbers import format_currency

    value = _decimal(amount, "money")
    code = str(currency or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise ValueError(f"money: {currency!r} is not an ISO 4217 currency code")
    exponent = Decimal(1) if code in _ZERO_DECIMAL else Decimal("0.01")
    value = value.quantize(exponent, rounding=ROUND_HALF_UP)
    return str(format_currency(value, code, locale=_babel_locale(locale or _render_locale.get())))


def number(value: Any, decimals: int | None = None) -> str:
    from babel.numbers import format_decimal

    amount = _decimal(value, "number")
    if decimals is not None:
        amount = amount.quantize(Decimal(1).scaleb(-int(decimals)), rounding=ROUND_HALF_UP)
        pattern = "#,##0" + ("." + "0" * int(decimals) if decimals else "")
        return str(format_decimal(amount, format=pattern, locale=_babel_locale(_render_locale.get())))
    return str(format_decimal(amount, locale=_babel_locale(_render_locale.get())))


def percent(value: Any) -> str:
    from babel.numbers import format_percent

    return str(format_percent(_decimal(value, "percent"), locale=_babel_locale(_render_locale.get())))


def _moment(value: Any, tz: str) -> datetime:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz) if tz != "UTC" else UTC
    if isinstance(value, datetime):
        return value.astimezone(zone) if value.tzinfo else value.replace(tzinfo=UTC).astimezone(zone)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC).astimezone(zone)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        parsed = datetime.fromisoformat(text)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(zone)
    raise ValueError(f"date: {value!r} is not a time (epoch seconds or ISO-8601)")


def date(value: Any, format: str = "medium", tz: str = "UTC") -> str:
    from babel.dates import format_date

    return str(
        format_date(_moment(value, tz).date(), format=format, locale=_babel_locale(_render_locale.get()))
    )


def datetime_(value: Any, format: str = "medium", tz: str = "UTC") -> str:
    from babel.dates import format_datetime

    moment = _moment(value, tz)
    return str(
        format_datetime(
            moment, format=format, tzinfo=moment.tzinfo, locale=_babel_locale(_render_locale.get())
        )
    )


def href(url: Any) -> str:
    text = "" if url is None else str(url).strip()
    return text if re.match(r"^https?://", text, re.IGNORECASE) else ""


FILTERS: dict[str, Callable[..., Any]] = {
    "money": money,
    "number": number,
    "percent": percent,
    "date": date,
    "datetime": datetime_,
    "href": href,
}


# --- environments ---------------------------------------------------------------------------------


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
        layouts = _render_layouts.get() or {}
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


def _compile(source: str, *, file: str, html: bool, template_name: str) -> jinja2.Template:
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
    t1 = _render_locale.set(normalise_locale(locale) or DEFAULT_LOCALE)
    t2 = _render_layouts.set(dict(layouts or {}))
    try:
        yield
    finally:
        _render_locale.reset(t1)
        _render_layouts.reset(t2)


def _render_one(
    source: str, variables: Mapping[str, Any], *, file: str, html: bool, template_name: str
) -> str:
    compiled = _compile(source, file=file, html=html, template_name=template_name)
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


def render_email(
    template: EmailTemplate, variables: Mapping[str, Any], *, locale: str | None = None
) -> RenderedEmail:
    """Render the three parts; raises :class:`TemplateError` on any template problem."""
    name = template.name
    body_file = MJML_BODY if template.mjml else "body.html"
    compiled = precompiled_mjml(template.html, template.layouts) if template.mjml else None
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
                html = mjml_to_html(html, template_name=name)
        text = _render_one(template.text, variables, file="body.txt", html=False, template_name=name)
    if "<style" in html:
        try:
            html = inline_css(html)
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
