"""Email templates: where they live, and how they are rendered safely.

Storage
    S3 ``templates/<store_id>/<name>/{subject.txt,body.html,body.txt}``. A store overrides a
    template by uploading all three files; otherwise ``templates/_default/<name>/`` is used. The
    three files always come from the same place (never a store subject over a default body); a
    store folder holding only some of them is a mistake and raises :class:`TemplateError` rather
    than silently sending the default.

Rendering
    Templates are written by store staff, so they run in Jinja's immutable sandbox: no attribute
    access to internals (``''.__class__``), no mutating the variables, ranges and string/list
    repetition bounded. HTML autoescapes; subject and text do not (they are not HTML). A missing
    variable raises :class:`TemplateError` naming it, instead of rendering an empty hole.

Filters
    ``money(amount, currency)``: ``12.5|money("USD")`` -> ``$12.50``, ``"EUR"`` -> ``€12.50``,
    ``"PLN"`` or any other code -> ``12.50 PLN``. Decimal arithmetic, half-up rounding.
    ``href(url)``: the URL if it is http(s), else ``""`` (keeps ``javascript:`` out of links).

Variables of ``cart-abandoned`` (see :class:`CartAbandonedVariables`)::

    customer        {first_name: str | None}
    store           {name: str, url: str}
    cart            {items: [{name, quantity, price, currency, image_url, url, line_total}],
                     value, currency, item_count}
                    image_url and url may be None; prices are numbers (Decimal, int, float or str)
    recovery_url    link that restores the cart
    unsubscribe_url signed one-click unsubscribe link (also sent as List-Unsubscribe)
    step            {id: str, index: int (0-based), is_last: bool}
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from types import TracebackType
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict

DEFAULT_STORE = "_default"
TEMPLATE_FILES = ("subject.txt", "body.html", "body.txt")
SMS_FILES = ("sms.txt",)  # optional sms.json: {"max_segments": N}
PUSH_FILES = ("push_title.txt", "push_body.txt")  # optional push_link.txt
DEFAULT_SMS_SEGMENTS = 2

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")  # keeps store ids and names inside their S3 prefix
_MAX_SEQUENCE = 100_000  # largest string/list a template may build with * (the sandbox bounds range())
_MAX_TEMPLATE_BYTES = 512 * 1024
_COMPILED_MAX = 256


class TemplateError(Exception):
    """A template could not be found, compiled or rendered. The message says where."""

    def __init__(self, message: str, *, template: str = "", file: str = "", line: int | None = None):
        self.template = template
        self.file = file
        self.line = line
        where = "/".join(p for p in (template, file) if p)
        if where and line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {message}" if where else message)


@dataclass(frozen=True)
class EmailTemplate:
    name: str
    subject: str
    html: str
    text: str
    origin: str = ""  # where it was loaded from, for error messages and logs


@dataclass(frozen=True)
class SmsTemplate:
    name: str
    body: str
    max_segments: int = DEFAULT_SMS_SEGMENTS  # the budget the template declares; longer is refused
    origin: str = ""


@dataclass(frozen=True)
class PushTemplate:
    name: str
    title: str
    body: str
    link: str | None = None
    origin: str = ""


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


class StoreVars(_Vars):
    name: str
    url: str


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
    value: Decimal
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
    step: StepVars

    def context(self) -> dict[str, Any]:
        return self.model_dump(mode="python")


# --- storage --------------------------------------------------------------------------------------


def _check_id(kind: str, value: str) -> None:
    if not isinstance(value, str) or not _ID.match(value) or ".." in value:
        raise ValueError(f"invalid template {kind}: {value!r}")


class TemplateStore:
    """Reads templates from S3 with a short per-(store, name) cache.

    Lambda containers live for hours; the TTL bounds how long a marketer's edit takes to show up.
    Both hits and fallbacks to the default are cached, so a warm container makes no S3 calls.
    """

    def __init__(
        self,
        s3_client: Any,
        bucket: str,
        ttl_seconds: float = 60,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._s3 = s3_client
        self._bucket = bucket
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, EmailTemplate]] = {}
        self._channel_cache: dict[tuple[str, str, tuple[str, ...]], tuple[float, dict[str, str | None]]] = {}
        self._lock = threading.Lock()  # the local emulator calls handlers from several threads

    def email(self, store_id: str, name: str) -> EmailTemplate:
        _check_id("store id", store_id)
        _check_id("name", name)
        key = (store_id, name)
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        template = self._load(store_id, name)
        with self._lock:
            self._cache[key] = (now, template)
        return template

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
            self._channel_cache.clear()

    def sms(self, store_id: str, name: str) -> SmsTemplate:
        files = self._channel_files(store_id, name, SMS_FILES, ("sms.json",))
        meta = files.get("sms.json")
        segments = DEFAULT_SMS_SEGMENTS
        if meta:
            try:
                segments = int(json.loads(meta).get("max_segments", DEFAULT_SMS_SEGMENTS))
            except (ValueError, AttributeError, TypeError) as exc:
                raise TemplateError(f"sms.json: {exc}", template=name, file="sms.json") from exc
        return SmsTemplate(
            name=name, body=files["sms.txt"] or "", max_segments=segments, origin=files["@origin"] or ""
        )

    def push(self, store_id: str, name: str) -> PushTemplate:
        files = self._channel_files(store_id, name, PUSH_FILES, ("push_link.txt",))
        return PushTemplate(
            name=name,
            title=files["push_title.txt"] or "",
            body=files["push_body.txt"] or "",
            link=files.get("push_link.txt"),
            origin=files["@origin"] or "",
        )

    def _channel_files(
        self, store_id: str, name: str, required: tuple[str, ...], optional: tuple[str, ...]
    ) -> dict[str, str | None]:
        """A channel's files from the store's folder if it has them, else from the default."""
        _check_id("store id", store_id)
        _check_id("name", name)
        key = (store_id, name, required)
        now = self._clock()
        with self._lock:
            hit = self._channel_cache.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        for owner in dict.fromkeys((store_id, DEFAULT_STORE)):
            prefix = f"templates/{owner}/{name}/"
            found = {f: self._get(prefix + f) for f in required}
            if all(v is None for v in found.values()):
                continue
            missing = [f for f, v in found.items() if v is None]
            if missing:
                raise TemplateError(
                    f"incomplete template in s3://{self._bucket}/{prefix}: missing {', '.join(missing)}",
                    template=name,
                )
            files: dict[str, str | None] = {**found, **{f: self._get(prefix + f) for f in optional}}
            files["@origin"] = f"s3://{self._bucket}/{prefix}"
            with self._lock:
                self._channel_cache[key] = (now, files)
            return files
        raise TemplateError(
            f"no {'/'.join(required)} in s3://{self._bucket}/templates/{store_id}/{name}/ "
            f"nor templates/{DEFAULT_STORE}/{name}/",
            template=name,
        )

    def _load(self, store_id: str, name: str) -> EmailTemplate:
        if store_id != DEFAULT_STORE:
            override = self._load_folder(store_id, name)
            if override is not None:
                return override
        default = self._load_folder(DEFAULT_STORE, name)
        if default is None:
            raise TemplateError(
                f"no template in s3://{self._bucket}/templates/{store_id}/{name}/ "
                f"nor templates/{DEFAULT_STORE}/{name}/",
                template=name,
            )
        return default

    def _load_folder(self, owner: str, name: str) -> EmailTemplate | None:
        prefix = f"templates/{owner}/{name}/"
        files = {f: self._get(prefix + f) for f in TEMPLATE_FILES}
        present = [f for f, body in files.items() if body is not None]
        if not present:
            return None
        if len(present) != len(TEMPLATE_FILES):
            missing = ", ".join(f for f in TEMPLATE_FILES if files[f] is None)
            raise TemplateError(
                f"incomplete template in s3://{self._bucket}/{prefix}: missing {missing}", template=name
            )
        subject, html, text = (files[f] or "" for f in TEMPLATE_FILES)
        return EmailTemplate(
            name=name, subject=subject, html=html, text=text, origin=f"s3://{self._bucket}/{prefix}"
        )

    def _get(self, key: str) -> str | None:
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
        except self._s3.exceptions.NoSuchKey:
            return None
        except Exception as exc:
            # Without s3:ListBucket a missing key answers 403, which we must not read as "absent".
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("404", "NotFound"):
                return None
            raise
        body: bytes = response["Body"].read(_MAX_TEMPLATE_BYTES + 1)
        if len(body) > _MAX_TEMPLATE_BYTES:
            raise TemplateError(f"s3://{self._bucket}/{key} is larger than {_MAX_TEMPLATE_BYTES} bytes")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TemplateError(f"s3://{self._bucket}/{key} is not UTF-8") from exc


# --- filters --------------------------------------------------------------------------------------

# Currencies written with a leading symbol; every other ISO code is written after the amount.
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$", "INR": "₹"}
_ZERO_DECIMAL = {"JPY", "KRW", "VND", "CLP", "ISK", "HUF", "TWD", "UGX"}


def money(amount: Any, currency: Any) -> str:
    if isinstance(amount, bool) or amount is None:
        raise ValueError(f"money: {amount!r} is not an amount")
    try:
        # str() first: Decimal(0.1) would carry the float's binary artefacts into the output.
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount).strip())
    except InvalidOperation:
        raise ValueError(f"money: {amount!r} is not an amount") from None
    if not value.is_finite():
        raise ValueError(f"money: {amount!r} is not an amount")
    code = str(currency or "").strip().upper()
    exponent = Decimal(1) if code in _ZERO_DECIMAL else Decimal("0.01")
    value = value.quantize(exponent, rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    digits = f"{abs(value):,}"
    symbol = _SYMBOLS.get(code)
    if symbol:
        return f"{sign}{symbol}{digits}"
    return f"{sign}{digits} {code}".rstrip()


def href(url: Any) -> str:
    text = "" if url is None else str(url).strip()
    return text if re.match(r"^https?://", text, re.IGNORECASE) else ""


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


def _new_env(*, autoescape: bool) -> jinja2.Environment:
    env = _Sandbox(
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        cache_size=0,  # we cache compiled templates ourselves, by content
    )
    env.filters["money"] = money
    env.filters["href"] = href
    return env


@lru_cache(maxsize=2)
def _env(autoescape: bool) -> jinja2.Environment:
    return _new_env(autoescape=autoescape)


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
    compiled = env.template_class.from_code(env, code, env.make_globals(None))
    with _compiled_lock:
        if len(_compiled) >= _COMPILED_MAX:
            _compiled.clear()
        _compiled[key] = compiled
    return compiled


def _template_line(tb: TracebackType | None, file: str) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == file:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _render_one(
    source: str, variables: Mapping[str, Any], *, file: str, html: bool, template_name: str
) -> str:
    compiled = _compile(source, file=file, html=html, template_name=template_name)
    try:
        return compiled.render(variables)
    except jinja2.UndefinedError as exc:
        raise _runtime_error(f"missing variable: {exc.message}", exc, file, template_name) from exc
    except jinja2.sandbox.SecurityError as exc:
        raise _runtime_error(f"refused by the sandbox: {exc}", exc, file, template_name) from exc
    except Exception as exc:  # a template bug (bad filter input, 1 + "a"): report it, never half-send
        raise _runtime_error(f"{type(exc).__name__}: {exc}", exc, file, template_name) from exc


def _runtime_error(message: str, exc: BaseException, file: str, template_name: str) -> TemplateError:
    return TemplateError(
        message, template=template_name, file=file, line=_template_line(exc.__traceback__, file)
    )


def render_email(template: EmailTemplate, variables: Mapping[str, Any]) -> RenderedEmail:
    """Render the three parts; raises :class:`TemplateError` on any template problem."""
    subject = _render_one(
        template.subject, variables, file="subject.txt", html=False, template_name=template.name
    )
    html = _render_one(template.html, variables, file="body.html", html=True, template_name=template.name)
    text = _render_one(template.text, variables, file="body.txt", html=False, template_name=template.name)
    # A header is one line: newlines from the template (or a variable) must not reach it.
    subject = " ".join(subject.split())
    if not subject:
        raise TemplateError("subject renders empty", template=template.name, file="subject.txt")
    return RenderedEmail(subject=subject, html=html, text=text)


def render_sms(template: SmsTemplate, variables: Mapping[str, Any]) -> str:
    """One SMS body: whitespace collapsed (line breaks cost characters and segments)."""
    body = _render_one(template.body, variables, file="sms.txt", html=False, template_name=template.name)
    body = " ".join(body.split())
    if not body:
        raise TemplateError("SMS body renders empty", template=template.name, file="sms.txt")
    return body


def render_push(template: PushTemplate, variables: Mapping[str, Any]) -> RenderedPush:
    def one(source: str, file: str) -> str:
        return " ".join(
            _render_one(source, variables, file=file, html=False, template_name=template.name).split()
        )

    title, body = one(template.title, "push_title.txt"), one(template.body, "push_body.txt")
    link = one(template.link, "push_link.txt") if template.link else None
    if not title or not body:
        raise TemplateError("push title and body must not render empty", template=template.name)
    return RenderedPush(title=title, body=body, link=link or None)
