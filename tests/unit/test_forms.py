"""The signup form's configuration and a submission's validation (shared/domain/forms.py)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from shared.domain.api_calls import normalise
from shared.domain.forms import (
    FormConfig,
    SubmissionInvalid,
    check_submission,
    honeypot_filled,
    signup_calls,
    signup_user_id,
)
from shared.domain.stores import Store

TODAY = date(2026, 12, 3)
ORIGIN = "https://shop.example"
EMAIL_TEXT = "Email me news and offers from Example Shop. Unsubscribe any time."
SMS_TEXT = "Text me offers from Example Shop. Reply STOP to end."


def config(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "fields": {
            "email": "required",
            "phone": "optional",
            "first_name": "optional",
            "gender": "optional",
            "interests": "optional",
            "birthday": "optional",
        },
        "interests": ["running", "hiking"],
        "consent": {
            "email": {"en": EMAIL_TEXT, "pl": "Wyślij mi nowości e-mailem."},
            "sms": {"en": SMS_TEXT, "pl": "Wyślij mi SMS z ofertami."},
        },
        "texts": {"en": {"title": "Join us", "offer": "10% off"}, "pl": {"title": "Dołącz"}},
        "allowed_origins": ["https://Shop.example/", "https://shop.example:443"],
    }
    return {**base, **over}


def form(**over: Any) -> FormConfig:
    return FormConfig.model_validate(config(**over))


def submission(**over: Any) -> dict[str, Any]:
    base = {
        "email": "Ada@Example.com",
        "first_name": "  Ada  ",
        "gender": "female",
        "interests": ["hiking"],
        "birthday": "1990-03-15",
        "consent": {"email": True},
        "locale": "en",
        "page_url": "https://shop.example/products/boots?x=1",
        "anonymous_id": "anon-123",
        "submission_id": "3b1f6c8e-0000-4000-8000-000000000001",
        "website": "",
    }
    return {**base, **over}


def problems(
    payload: dict[str, Any], cfg: FormConfig | None = None, origin: str | None = ORIGIN
) -> dict[str, str]:
    with pytest.raises(SubmissionInvalid) as caught:
        check_submission(cfg or form(), payload, origin, TODAY)
    return {p.field: p.message for p in caught.value.problems}


def config_error(**over: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        FormConfig.model_validate(config(**over))
    return str(caught.value)


# --- configuration ---------------------------------------------------------------------------------


def test_a_full_configuration_is_accepted_and_origins_are_normalised() -> None:
    cfg = form()
    assert cfg.allowed_origins == ["https://shop.example"]
    assert cfg.id == "welcome" and cfg.show.once_per_visitor and cfg.show.delay_seconds == 5
    # the browser sees neither the allow-list nor the limits
    assert "allowed_origins" not in cfg.public() and "limits" not in cfg.public()
    # it lives with the store's other settings
    store = Store(
        store_id="s-1", name="S", url="https://shop.example", sender_email="a@shop.example", form=config()
    )
    assert store.form == cfg


@pytest.mark.parametrize(
    ("over", "says"),
    [
        ({"allowed_origins": ["shop.example"]}, "is not an origin: use https://shop.example"),
        ({"allowed_origins": ["https://shop.example/path"]}, "no path, query or credentials"),
        ({"allowed_origins": []}, "at least 1 item"),
        ({"consent": {}}, "ask for at least one channel"),
        ({"consent": {"push": {"en": EMAIL_TEXT}}}, "consent.push"),
        (
            {"consent": {"email": {"en": "short"}, "sms": {"en": SMS_TEXT, "pl": SMS_TEXT}}},
            "10 to 1000 characters",
        ),
        ({"consent": {"email": {"en": EMAIL_TEXT}}}, "consent.email has no text for locale(s) pl"),
        ({"fields": {"first_name": "required"}, "consent": {}}, "must ask for email or phone"),
        (
            {"fields": {"email": "required"}, "consent": {"sms": {"en": SMS_TEXT, "pl": SMS_TEXT}}},
            "consent asks for sms but fields does not ask for phone",
        ),
        ({"interests": []}, "list the store's own in `interests`"),
        ({"interests": ["Running Shoes"]}, "option values are 1 to 40 lowercase"),
        ({"fields": {"email": "mandatory"}}, "'required' or 'optional'"),
        ({"fields": {"email": "required", "age": "optional"}}, "fields.age"),
        ({"texts": {"pl": {"title": "Dołącz"}}}, "texts has no 'en' (the default_locale)"),
        ({"texts": {"English": {"title": "x"}}}, "is not a locale"),
        ({"colours": {"accent": "red"}}, "colours.accent"),
        ({"show": {"delay_seconds": 9999}}, "show.delay_seconds"),
        ({"show": {"pages": ["products/*"]}}, "a path pattern starting with '/'"),
        ({"limits": {"per_ip_per_hour": 0}}, "limits.per_ip_per_hour"),
        ({"popup": True}, "popup"),
    ],
)
def test_a_wrong_configuration_names_the_field_and_what_is_allowed(over: dict[str, Any], says: str) -> None:
    assert says in config_error(**over)


def test_the_locale_falls_back_to_the_language_then_the_default() -> None:
    cfg = form()
    assert (cfg.locale_for("pl"), cfg.locale_for("pl-PL"), cfg.locale_for("de"), cfg.locale_for(None)) == (
        "pl",
        "pl",
        "en",
        "en",
    )


# --- submissions -----------------------------------------------------------------------------------


def test_a_good_submission_is_cleaned() -> None:
    sub = check_submission(form(), submission(), ORIGIN, TODAY)
    assert sub.traits == {
        "email": "ada@example.com",
        "first_name": "Ada",
        "gender": "female",
        "interests": ["hiking"],
        "birthday": "1990-03-15",
    }
    assert sub.consent == {"email": True} and sub.locale == "en"


@pytest.mark.parametrize(
    ("over", "field", "says"),
    [
        ({"email": ""}, "email", "required"),
        ({"email": "ada-at-example"}, "email", "like name@example.com"),
        ({"phone": "555 0100"}, "phone", "international number with its country code"),
        ({"gender": "robot"}, "gender", "choose one of female, male, non-binary, prefer-not-to-say"),
        ({"interests": ["sailing"]}, "interests", "'sailing' not offered; choose from running, hiking"),
        ({"interests": "hiking"}, "interests", "must be a list"),
        ({"birthday": "15/03/1990"}, "birthday", "must be a date like 1990-04-23, or a month and day"),
        ({"birthday": "2030-03-15"}, "birthday", "between 1906 and 2026"),
        ({"first_name": "<script>"}, "first_name", "without < or >"),
        ({"first_name": "x" * 300}, "first_name", "at most 254"),
        ({"consent": {"push": True}}, "consent.push", "asks consent for email, sms only"),
        ({"consent": {"email": "yes"}}, "consent.email", "true or false"),
        ({"consent": {"sms": True}}, "consent.sms", "needs the phone field filled in"),
        ({"consent": ["email"]}, "consent", "must be an object"),
        ({"locale": "fr"}, "locale", "one of the form's locales: en, pl"),
        ({"page_url": "javascript:alert(1)"}, "page_url", "http(s) URL"),
        ({"page_url": "https://evil.example/"}, "page_url", "the request's Origin"),
        ({"page_url": None}, "page_url", "required"),
        ({"anonymous_id": ""}, "anonymous_id", "required"),
        ({"submission_id": "x"}, "submission_id", "8 to 64"),
        ({"password": "hunter2"}, "password", "unknown field"),
    ],
)
def test_a_wrong_submission_names_the_field_and_what_is_allowed(
    over: dict[str, Any], field: str, says: str
) -> None:
    found = problems(submission(**over))
    assert says in found[field], found


def test_every_problem_is_reported_at_once() -> None:
    found = problems(submission(email="nope", gender="robot", locale="xx"))
    assert set(found) == {"email", "gender", "locale"}


def test_a_field_the_form_does_not_ask_is_refused() -> None:
    cfg = form(fields={"email": "required"}, consent={"email": {"en": EMAIL_TEXT, "pl": EMAIL_TEXT}})
    assert problems(submission(), cfg)["first_name"] == "this form does not ask for it"


def test_the_honeypot() -> None:
    assert honeypot_filled(submission(website="http://spam.example"))
    assert not honeypot_filled(submission()) and not honeypot_filled(submission(website="  "))


def test_a_submission_becomes_the_event_apis_calls_with_the_consent_proof() -> None:
    cfg = form()
    sub = check_submission(
        cfg,
        submission(phone="+44 20 7946 0018", consent={"email": True, "sms": False}, locale="pl"),
        ORIGIN,
        TODAY,
    )
    calls = signup_calls(cfg, sub)
    assert [c.get("event", c["type"]) for c in calls] == ["identify", "Consent Updated", "Signed Up"]
    assert all(c["userId"] == signup_user_id(sub) and c["anonymousId"] == "anon-123" for c in calls)
    assert calls[0]["traits"]["phone"] == "+442079460018" and calls[0]["traits"]["locale"] == "pl"
    proof = calls[1]["properties"]
    # the wording is the configured one for the locale shown, never the browser's; an unticked box is no choice
    assert proof == {
        "consent": {"email": "subscribed"},
        "consent_source": "form:welcome",
        "consent_text": "Wyślij mi nowości e-mailem.",
        "consent_url": "https://shop.example/products/boots?x=1",
    }
    # a retried POST makes the same messageIds, so it is folded once
    assert [c["messageId"] for c in calls] == [c["messageId"] for c in signup_calls(cfg, sub)]
    # and the event API's own models accept every call
    events, errors = normalise(calls, "s-1", 1_700_000_000.0)
    assert not errors and len(events) == 3
    assert signup_user_id(sub) == signup_user_id(
        check_submission(cfg, submission(email=" ADA@example.com"), ORIGIN, TODAY)
    )


def test_a_journey_waits_for_the_double_opt_in_click_only_when_that_is_all_that_is_missing() -> None:
    from shared.domain.fold import CONFIRM_LINK_LIFETIME_S
    from shared.domain.journey_decisions import awaiting_confirmation
    from shared.domain.journeys import Entry
    from shared.domain.profiles import Consent, Profile

    asked = 1_700_000_000.0
    profile = Profile(
        store_id="s-1", customer_id="u:1", consent={"email": Consent(status="pending", at=asked)}
    )
    welcome = Entry(has_ordered=False, consent=["email"])
    assert awaiting_confirmation(welcome, profile, None, asked + 60) == asked
    # the link has expired: a new request is needed, the journey does not wait for ever
    assert awaiting_confirmation(welcome, profile, None, asked + CONFIRM_LINK_LIFETIME_S) is None
    # another condition fails too, or the journey does not need email
    profile.orders.count = 1
    assert awaiting_confirmation(welcome, profile, None, asked + 60) is None
    assert awaiting_confirmation(Entry(consent=["sms"]), profile, None, asked + 60) is None
