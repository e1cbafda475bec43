"""Signup forms and the welcome pop-up: a store's form configuration, and what a submission becomes.

A store configures its form as data (`Store.form`, set with `boomerang stores set --settings`):
which fields it asks, which channels it asks consent for and the exact wording shown per locale,
when the pop-up shows, its colours and texts per locale, and which origins may post it. A
submission is checked here field by field (which field, what was wrong, what is allowed) and
becomes the event API's own calls: an identify with traits and per-channel consent carrying its
proof (source = the form, the wording shown, the page, the time) and a `Signed Up` track, both
linked to the visitor's anonymous id so earlier browsing joins the profile. The consent wording
is taken from the configuration, never from the browser: the proof is what the store showed.

Pure: no I/O. The HTTP side (keys, origins, honeypot, rate limits) is shared/services/forms/.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.domain.birthdays import BIRTHDAY_FORMAT, parse_birthday

FieldName = Literal["email", "phone", "first_name", "gender", "interests", "birthday"]
FIELD_NAMES: tuple[str, ...] = ("email", "phone", "first_name", "gender", "interests", "birthday")
ConsentChannel = Literal["email", "sms"]
CHANNEL_FIELD = {"email": "email", "sms": "phone"}  # a channel's consent needs its address asked
DEFAULT_GENDERS = ("female", "male", "non-binary", "prefer-not-to-say")
FORM_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
LOCALE_PATTERN = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
OPTION_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
COLOUR_PATTERN = r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"
SOURCE_PREFIX = "form:"
SIGNED_UP = "Signed Up"
MAX_SUBMISSION_BYTES = 8 * 1024  # a signup is a few hundred bytes; more is not a person typing
MAX_ANONYMOUS_ID = 200
_TEXT = re.compile(r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")  # no control characters but tab/newline


def _origin(value: str) -> str:
    """`scheme://host[:port]`, lower case, as browsers send it in the Origin header."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an origin: use https://shop.example (scheme and host)")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{value!r} is not an origin: no path, query or credentials (https://shop.example)")
    default = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


def origin_of(url: str) -> str | None:
    """The origin of a page URL, or None when it is not an http(s) URL."""
    try:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        default = {"http": 80, "https": 443}[parts.scheme]
        port = f":{parts.port}" if parts.port and parts.port != default else ""
    except ValueError:
        return None
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


class FormTexts(BaseModel):
    """What the pop-up says in one locale. Labels of gender and interest options by their value."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=120)
    body: str | None = Field(default=None, max_length=600)
    offer: str | None = Field(default=None, max_length=200)  # e.g. "10% off your first order"
    submit: str = Field(default="Sign up", min_length=1, max_length=60)
    close: str = Field(default="Close", min_length=1, max_length=60)
    thanks: str = Field(default="Thank you! Check your inbox.", min_length=1, max_length=300)
    confirm: str = Field(default="Almost done: confirm with the link we just emailed you.", max_length=300)
    labels: dict[str, str] = Field(default_factory=dict, max_length=80)  # field or option value -> label

    @field_validator("title", "body", "offer", "submit", "close", "thanks", "confirm")
    @classmethod
    def _plain(cls, v: str | None) -> str | None:
        if v is not None and not _TEXT.match(v):
            raise ValueError("must be plain text without control characters")
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        for name, label in v.items():
            if not 1 <= len(label) <= 120 or not _TEXT.match(label):
                raise ValueError(f"label of {name!r}: 1 to 120 characters of plain text")
        return v


class Colours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    background: str = Field(default="#ffffff", pattern=COLOUR_PATTERN)
    text: str = Field(default="#1f2328", pattern=COLOUR_PATTERN)
    accent: str = Field(default="#0b5cad", pattern=COLOUR_PATTERN)  # the button
    accent_text: str = Field(default="#ffffff", pattern=COLOUR_PATTERN)


class ShowRules(BaseModel):
    """When the pop-up opens. Page patterns are matched against the path: `*` is any run of
    characters (`/products/*`); `exclude` wins over `pages`."""

    model_config = ConfigDict(extra="forbid")

    delay_seconds: float = Field(default=5, ge=0, le=600)
    exit_intent: bool = False  # also open when the pointer leaves the page upwards (before the delay)
    pages: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=50)
    exclude: list[str] = Field(default_factory=list, max_length=50)
    once_per_visitor: bool = True  # closed or submitted: not shown again to that browser
    again_after_days: int | None = Field(default=None, ge=1, le=365)  # when once_per_visitor is false

    @field_validator("pages", "exclude")
    @classmethod
    def _patterns(cls, v: list[str]) -> list[str]:
        for p in v:
            if not p or len(p) > 200 or not (p.startswith("/") or p == "*"):
                raise ValueError(f"{p!r}: a path pattern starting with '/' (e.g. /products/*) or '*'")
        return v


class RateLimits(BaseModel):
    """Submissions allowed per window; past them the form answers 429 and stores nothing."""

    model_config = ConfigDict(extra="forbid")

    per_ip_per_hour: int = Field(default=10, ge=1, le=10_000)
    per_store_per_minute: int = Field(default=120, ge=1, le=100_000)


class FormConfig(BaseModel):
    """A store's signup form and welcome pop-up (README "Signup forms")."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default="welcome", pattern=FORM_ID_PATTERN)  # the consent proof's source: form:<id>
    enabled: bool = True
    fields: dict[FieldName, Literal["required", "optional"]] = Field(
        default_factory=lambda: {"email": "required", "first_name": "optional"}  # type: ignore[arg-type]
    )
    interests: list[str] = Field(default_factory=list, max_length=30)  # the store's own list (values)
    genders: list[str] = Field(default_factory=lambda: list(DEFAULT_GENDERS), min_length=1, max_length=10)
    # the exact wording shown next to each channel's checkbox, per locale; proof of what was agreed
    consent: dict[ConsentChannel, dict[str, str]] = Field(default_factory=dict)
    texts: dict[str, FormTexts] = Field(min_length=1, max_length=30)  # per locale; the store's locale first
    default_locale: str = "en"
    colours: Colours = Field(default_factory=Colours)
    show: ShowRules = Field(default_factory=ShowRules)
    allowed_origins: list[str] = Field(min_length=1, max_length=20)  # who may embed and post it
    limits: RateLimits = Field(default_factory=RateLimits)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(_origin(o) for o in v))

    @field_validator("interests", "genders")
    @classmethod
    def _options(cls, v: list[str]) -> list[str]:
        for o in v:
            if not OPTION_PATTERN.match(o):
                raise ValueError(
                    f"{o!r}: option values are 1 to 40 lowercase letters, digits or '-' "
                    "(labels per locale go in texts.<locale>.labels)"
                )
        if len(set(v)) != len(v):
            raise ValueError("lists each option once")
        return v

    @field_validator("texts")
    @classmethod
    def _text_locales(cls, v: dict[str, FormTexts]) -> dict[str, FormTexts]:
        for name in v:
            if not LOCALE_PATTERN.match(name):
                raise ValueError(f"{name!r} is not a locale: use e.g. en, pl, en-GB")
        return v

    @field_validator("consent")
    @classmethod
    def _consent_texts(cls, v: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for channel, by_locale in v.items():
            if not by_locale:
                raise ValueError(f"{channel}: give the consent text shown, per locale")
            for locale, text in by_locale.items():
                if not 10 <= len(text) <= 1000 or not _TEXT.match(text):
                    raise ValueError(f"{channel}.{locale}: 10 to 1000 characters of plain text")
        return v

    @model_validator(mode="after")
    def _coherent(self) -> FormConfig:
        if not LOCALE_PATTERN.match(self.default_locale):
            raise ValueError(f"default_locale {self.default_locale!r} is not a locale (e.g. en)")
        if self.default_locale not in self.texts:
            raise ValueError(f"texts has no {self.default_locale!r} (the default_locale)")
        if "email" not in self.fields and "phone" not in self.fields:
            raise ValueError("fields must ask for email or phone: a signup needs a way to reach them")
        if "interests" in self.fields and not self.interests:
            raise ValueError("fields asks for interests: list the store's own in `interests`")
        for channel, by_locale in self.consent.items():
            needed = CHANNEL_FIELD[channel]
            if needed not in self.fields:
                raise ValueError(f"consent asks for {channel} but fields does not ask for {needed}")
            missing = sorted(set(self.texts) - set(by_locale))
            if missing:
                raise ValueError(f"consent.{channel} has no text for locale(s) {', '.join(missing)}")
        if not self.consent:
            raise ValueError("consent: ask for at least one channel (email or sms), with its wording")
        return self

    def locale_for(self, wanted: str | None) -> str:
        """The locale the browser gets: its own if configured, else its language, else the default."""
        if wanted and wanted in self.texts:
            return wanted
        base = (wanted or "").split("-")[0].lower()
        return base if base in self.texts else self.default_locale

    def public(self) -> dict[str, Any]:
        """What the browser may see (no limits, no origins)."""
        return self.model_dump(mode="json", exclude={"limits", "allowed_origins", "enabled"})


# --- a submission ---------------------------------------------------------------------------------


class FieldProblem(BaseModel):
    field: str
    message: str


class SubmissionInvalid(Exception):
    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


SUBMISSION_KEYS = frozenset(
    {*FIELD_NAMES, "consent", "locale", "page_url", "anonymous_id", "submission_id", "website"}
)
HONEYPOT = "website"  # hidden from people (off-screen, aria-hidden, tabindex -1); bots fill it


def honeypot_filled(payload: Any) -> bool:
    return isinstance(payload, dict) and bool(str(payload.get(HONEYPOT) or "").strip())


def _email(v: str) -> str:
    v = v.strip().lower()
    if len(v) > 254 or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v):
        raise ValueError("must be an email address like name@example.com")
    return v


def _phone(v: str) -> str:
    from shared.domain.contacts import normalise_phone

    try:
        return normalise_phone(v)
    except ValueError as exc:
        raise ValueError(
            "must be an international number with its country code, like +44 20 7946 0018"
        ) from exc


def _birthday(v: str, today: date) -> str:
    try:
        value = parse_birthday(v)
    except ValueError as exc:
        raise ValueError(BIRTHDAY_FORMAT) from exc
    if len(value) == 10 and not (today.year - 120 <= int(value[:4]) <= today.year):
        raise ValueError(f"the year must be between {today.year - 120} and {today.year}")
    return value


class Submission(BaseModel):
    """A checked submission: what the identify and the Signed Up event are made of."""

    traits: dict[str, Any]
    consent: dict[str, bool]
    locale: str
    page_url: str
    anonymous_id: str
    submission_id: str


def check_submission(config: FormConfig, payload: Any, origin: str | None, today: date) -> Submission:
    """Every field checked against the store's form; SubmissionInvalid lists all problems at once."""
    problems: list[FieldProblem] = []

    def bad(name: str, message: str) -> None:
        problems.append(FieldProblem(field=name, message=message))

    if not isinstance(payload, dict):
        raise SubmissionInvalid([FieldProblem(field="(body)", message="must be a JSON object")])
    for name in sorted(set(payload) - SUBMISSION_KEYS):
        bad(name, f"unknown field; allowed: {', '.join(sorted(SUBMISSION_KEYS - {HONEYPOT}))}")
    traits: dict[str, Any] = {}
    for name in FIELD_NAMES:
        value = payload.get(name)
        wanted = config.fields.get(name)  # type: ignore[call-overload]
        empty = value is None or value == "" or value == []
        if wanted is None:
            if not empty:
                bad(name, "this form does not ask for it")
            continue
        if empty:
            if wanted == "required":
                bad(name, "required")
            continue
        try:
            traits[name] = _field(config, name, value, today)
        except ValueError as exc:
            bad(name, str(exc))
    consent = payload.get("consent", {})
    given: dict[str, bool] = {}
    if not isinstance(consent, dict):
        bad("consent", 'must be an object like {"email": true}')
    else:
        for channel, ticked in consent.items():
            if channel not in config.consent:
                bad(f"consent.{channel}", f"this form asks consent for {', '.join(config.consent)} only")
            elif not isinstance(ticked, bool):
                bad(f"consent.{channel}", "must be true or false")
            elif ticked and CHANNEL_FIELD[channel] not in traits:
                if any(p.field == CHANNEL_FIELD[channel] for p in problems):
                    continue  # already said what is wrong with the address itself
                bad(f"consent.{channel}", f"needs the {CHANNEL_FIELD[channel]} field filled in")
            else:
                given[channel] = ticked
    locale = payload.get("locale")
    if locale is not None and (not isinstance(locale, str) or locale not in config.texts):
        bad("locale", f"must be one of the form's locales: {', '.join(config.texts)}")
    page_url = payload.get("page_url")
    if not isinstance(page_url, str) or not page_url or len(page_url) > 2000:
        bad("page_url", "required: the page the form was shown on (up to 2000 characters)")
    elif origin_of(page_url) is None:
        bad("page_url", "must be an http(s) URL")
    elif origin is not None and origin_of(page_url) != origin:
        bad("page_url", "must be on the site that posts the form (the request's Origin)")
    anonymous_id = payload.get("anonymous_id")
    if not isinstance(anonymous_id, str) or not 1 <= len(anonymous_id) <= MAX_ANONYMOUS_ID:
        bad("anonymous_id", f"required: the visitor's anonymous id, 1 to {MAX_ANONYMOUS_ID} characters")
    elif not _TEXT.match(anonymous_id) or "\n" in anonymous_id:
        bad("anonymous_id", "must be printable text on one line")
    submission_id = payload.get("submission_id")
    if not isinstance(submission_id, str) or not re.fullmatch(r"[A-Za-z0-9-]{8,64}", submission_id):
        bad("submission_id", "required: 8 to 64 letters, digits or '-' (one per submission, kept on retries)")
    if not problems and not any(given.values()) and not traits.keys() - {"first_name", "gender"}:
        bad("(form)", "nothing to sign up with")
    if problems:
        raise SubmissionInvalid(problems)
    return Submission(
        traits=traits,
        consent=given,
        locale=config.locale_for(locale),
        page_url=str(page_url),
        anonymous_id=str(anonymous_id),
        submission_id=str(submission_id),
    )


def _field(config: FormConfig, name: str, value: Any, today: date) -> Any:
    if name == "interests":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a list of the store's interests")
        unknown = [v for v in value if v not in config.interests]
        if unknown:
            raise ValueError(
                f"{', '.join(map(repr, unknown))} not offered; choose from {', '.join(config.interests)}"
            )
        return list(dict.fromkeys(value))
    if not isinstance(value, str):
        raise ValueError("must be text")
    if len(value) > 254:
        raise ValueError("at most 254 characters")
    if name == "email":
        return _email(value)
    if name == "phone":
        return _phone(value)
    if name == "birthday":
        return _birthday(value.strip(), today)
    if name == "gender":
        if value not in config.genders:
            raise ValueError(f"choose one of {', '.join(config.genders)}")
        return value
    value = " ".join(value.split())  # first_name
    if not value or len(value) > 100 or not _TEXT.match(value) or re.search(r"[<>]", value):
        raise ValueError("1 to 100 characters of plain text, without < or >")
    return value


def signup_user_id(sub: Submission) -> str:
    """Who signs up: `guest-<hash of the email>` as the store platforms' guests are (so a later guest
    checkout with that email is the same customer), else the hash of the phone."""
    from shared.domain.webhooks import email_key

    if "email" in sub.traits:
        return "guest-" + email_key(sub.traits["email"])
    return "guest-p" + hashlib.sha256(sub.traits["phone"].encode()).hexdigest()[:24]


def signup_calls(config: FormConfig, sub: Submission) -> list[dict[str, Any]]:
    """The event API calls a submission becomes. messageIds derive from the submission id, so a
    retried POST (the browser resends after a timeout) is folded once."""
    user_id = signup_user_id(sub)
    traits: dict[str, Any] = {**sub.traits, "locale": sub.locale, "signup_form": config.id}
    calls: list[dict[str, Any]] = []
    # an unticked box is no choice at all: it never withdraws consent given elsewhere
    given = [c for c, ok in sub.consent.items() if ok]
    base = {"userId": user_id, "anonymousId": sub.anonymous_id}
    calls.append({**base, "type": "identify", "messageId": f"form:{sub.submission_id}:0", "traits": traits})
    # one Consent Updated per channel ticked: each channel's proof carries its own wording
    for n, channel in enumerate(given, 1):
        calls.append(
            {
                **base,
                "type": "track",
                "event": "Consent Updated",
                "messageId": f"form:{sub.submission_id}:c{n}",
                "properties": {
                    "consent": {channel: "subscribed"},
                    "consent_source": SOURCE_PREFIX + config.id,
                    "consent_text": config.consent[channel][sub.locale],  # type: ignore[index]
                    "consent_url": sub.page_url,
                },
            }
        )
    calls.append(
        {
            **base,
            "type": "track",
            "event": SIGNED_UP,
            "messageId": f"form:{sub.submission_id}:s",
            "properties": {"form_id": config.id, "page_url": sub.page_url, "channels": given},
        }
    )
    return calls
