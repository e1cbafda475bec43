"""TemplateStore against S3 and send_raw against SES v2, both emulated in-process by moto."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from shared.adapters.channels.email import PermanentSendError, build_mime, send_raw
from shared.domain.template_variables import sample_variables
from shared.templates.model import EmailTemplate, TemplateError
from shared.templates.publish import validate_change
from shared.templates.render import render_email
from shared.templates.store import TemplateStore

REGION = "us-east-1"
BUCKET = "boomerang-templates"
DEFAULTS = Path(__file__).resolve().parents[2] / "infra" / "templates" / "_default"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def put_template(
    s3: Any,
    owner: str,
    name: str,
    *,
    subject: str,
    html: str = '<p>h {{ unsubscribe_url }}</p><a href="{{ unsubscribe_url }}">u</a> {{ store.address }}',
    text: str = "t",
    locale: str = "",
    validate: bool = True,
) -> None:
    """Upload an email template's three files, then run the validator as the S3 event would."""
    folder = f"templates/{owner}/{name}/" + (f"{locale}/" if locale else "")
    for file, body in (("subject.txt", subject), ("body.html", html), ("body.txt", text)):
        s3.put_object(Bucket=BUCKET, Key=folder + file, Body=body.encode("utf-8"))
    if validate:
        validate_change(s3, BUCKET, folder + "subject.txt")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- TemplateStore: only validated (active) versions are sent -------------------------------------


def test_store_override_wins(s3: Any) -> None:
    put_template(s3, "_default", "cart-abandoned", subject="default subject")
    put_template(s3, "shop-1", "cart-abandoned", subject="shop subject", text="shop")

    template = TemplateStore(s3, BUCKET).email("shop-1", "cart-abandoned")

    assert (template.subject, template.text) == ("shop subject", "shop")
    assert template.origin == f"s3://{BUCKET}/templates/shop-1/cart-abandoned/"


def test_falls_back_to_default(s3: Any) -> None:
    put_template(s3, "_default", "cart-abandoned", subject="default subject")
    put_template(s3, "shop-1", "welcome", subject="not this one")

    template = TemplateStore(s3, BUCKET).email("shop-2", "cart-abandoned")

    assert template.subject == "default subject"
    assert template.origin.endswith("templates/_default/cart-abandoned/")


def test_unvalidated_upload_is_never_sent(s3: Any) -> None:
    # Given a default, and a store override the validator has not seen yet
    put_template(s3, "_default", "cart-abandoned", subject="default subject")
    put_template(s3, "shop-1", "cart-abandoned", subject="{{ broken", validate=False)

    # Then the default is sent
    assert TemplateStore(s3, BUCKET).email("shop-1", "cart-abandoned").subject == "default subject"


def test_rejected_edit_keeps_the_previous_version(s3: Any) -> None:
    put_template(s3, "shop-1", "cart-abandoned", subject="good {{ customer.first_name }}")
    s3.put_object(
        Bucket=BUCKET, Key="templates/shop-1/cart-abandoned/subject.txt", Body=b"bad {{ customer.first_name }"
    )

    outcome = validate_change(s3, BUCKET, "templates/shop-1/cart-abandoned/subject.txt")

    assert outcome.status == "rejected"
    assert [(p.file, p.line) for p in outcome.problems] == [("subject.txt", 1)]
    assert (
        TemplateStore(s3, BUCKET).email("shop-1", "cart-abandoned").subject
        == "good {{ customer.first_name }}"
    )


def test_partial_override_is_not_activated_and_the_default_is_sent(s3: Any) -> None:
    put_template(s3, "_default", "cart-abandoned", subject="default subject")
    s3.put_object(Bucket=BUCKET, Key="templates/shop-1/cart-abandoned/body.html", Body=b"<p>only html</p>")

    outcome = validate_change(s3, BUCKET, "templates/shop-1/cart-abandoned/body.html")

    assert outcome.status == "pending"  # waiting for the other files; no notification
    assert "also needs subject.txt, body.txt" in outcome.problems[0].message
    assert TemplateStore(s3, BUCKET).email("shop-1", "cart-abandoned").subject == "default subject"


def test_partial_folder_without_the_validator_is_an_error_not_a_mix(s3: Any) -> None:
    put_template(s3, "_default", "cart-abandoned", subject="default subject", validate=False)
    s3.put_object(Bucket=BUCKET, Key="templates/shop-1/cart-abandoned/body.html", Body=b"<p>only html</p>")

    with pytest.raises(TemplateError, match=r"missing subject\.txt, body\.txt"):
        TemplateStore(s3, BUCKET, active_only=False).email("shop-1", "cart-abandoned")


def test_missing_everywhere_raises(s3: Any) -> None:
    with pytest.raises(TemplateError, match="winback") as info:
        TemplateStore(s3, BUCKET).email("shop-1", "winback")
    assert info.value.template == "winback"


@pytest.mark.parametrize(
    ("store_id", "name"), [("../other", "cart-abandoned"), ("shop-1", "a/../../b"), ("shop 1", "x")]
)
def test_ids_cannot_escape_their_prefix(s3: Any, store_id: str, name: str) -> None:
    with pytest.raises(ValueError):
        TemplateStore(s3, BUCKET).email(store_id, name)


def test_cache_respects_ttl(s3: Any) -> None:
    # Given a cached default
    clock = FakeClock()
    store = TemplateStore(s3, BUCKET, ttl_seconds=60, clock=clock)
    put_template(s3, "_default", "cart-abandoned", subject="v1")
    assert store.email("shop-1", "cart-abandoned").subject == "v1"

    # When the marketer's override is validated, then within the TTL the cached one is still served
    put_template(s3, "shop-1", "cart-abandoned", subject="v2")
    clock.now += 59
    assert store.email("shop-1", "cart-abandoned").subject == "v1"

    # And once the TTL has passed the edit shows up
    clock.now += 1
    assert store.email("shop-1", "cart-abandoned").subject == "v2"


def test_cache_avoids_s3_calls(s3: Any) -> None:
    put_template(s3, "_default", "cart-abandoned", subject="v1")
    calls: list[str] = []
    s3.meta.events.register("before-call.s3.GetObject", lambda **kw: calls.append("get"))
    store = TemplateStore(s3, BUCKET, clock=FakeClock())

    store.email("shop-1", "cart-abandoned")
    first = len(calls)
    store.email("shop-1", "cart-abandoned")

    # manifests of shop-1, _default and both layout folders, then the three active versions
    assert first == 7
    assert len(calls) == first


def test_locale_folder_then_language_then_root(s3: Any) -> None:
    put_template(s3, "shop-1", "cart-abandoned", subject="English")
    put_template(s3, "shop-1", "cart-abandoned", subject="Polski", locale="pl")
    put_template(s3, "shop-1", "cart-abandoned", subject="Português", locale="pt")
    put_template(s3, "shop-1", "cart-abandoned", subject="Português do Brasil", locale="pt-BR")
    store = TemplateStore(s3, BUCKET)

    def subject(locale: str | None) -> tuple[str, str | None]:
        t = store.email("shop-1", "cart-abandoned", locale=locale)
        return t.subject, t.locale

    assert subject("pl") == ("Polski", "pl")
    assert subject("pl_PL") == ("Polski", "pl")  # the language when the region has no folder
    assert subject("pt-BR") == ("Português do Brasil", "pt-BR")
    assert subject("pt-PT") == ("Português", "pt")
    assert subject("ro") == ("English", None)  # the store's default locale (the folder root)
    assert subject(None) == ("English", None)


def test_layout_is_shared_and_locale_aware(s3: Any) -> None:
    layout = (
        "<html><body>{% block content %}{% endblock %}"
        '<footer>{{ store.address }} <a href="{{ unsubscribe_url }}">Unsubscribe</a></footer></body></html>'
    )
    s3.put_object(Bucket=BUCKET, Key="templates/shop-1/_layout/layout.html", Body=layout.encode())
    assert validate_change(s3, BUCKET, "templates/shop-1/_layout/layout.html").status == "active"
    body = '{% extends "layout.html" %}{% block content %}<p>{{ cart.value | money(cart.currency) }}</p>{% endblock %}'
    put_template(s3, "shop-1", "cart-abandoned", subject="Koszyk", html=body, locale="pl")

    template = TemplateStore(s3, BUCKET).email("shop-1", "cart-abandoned", locale="pl")
    rendered = render_email(template, sample_variables("cart-abandoned"))

    assert "128,00\xa0€" in rendered.html  # Polish money, from the pl folder's locale
    assert (
        "1 Harbour Street" in rendered.html
        and 'href="https://api.shop.example.com/v1/unsubscribe' in rendered.html
    )


def test_shipped_default_templates_load_and_render(s3: Any) -> None:
    for file in ("layout.html", "layout.txt"):  # the bodies extend the shipped layout
        key = f"templates/_default/_layout/{file}"
        s3.put_object(Bucket=BUCKET, Key=key, Body=(DEFAULTS / "_layout" / file).read_bytes())
    validate_change(s3, BUCKET, "templates/_default/_layout/layout.html")
    for file in ("subject.txt", "body.html", "body.txt"):
        key = f"templates/_default/cart-abandoned/{file}"
        s3.put_object(Bucket=BUCKET, Key=key, Body=(DEFAULTS / "cart-abandoned" / file).read_bytes())
    validate_change(s3, BUCKET, "templates/_default/cart-abandoned/body.txt")

    rendered = render_email(TemplateStore(s3, BUCKET).email("shop-1", "cart-abandoned"), cart_context())

    assert "Wool socks" in rendered.html and "$25.00" in rendered.text


# --- send_raw against moto SES v2 -----------------------------------------------------------------


def cart_context() -> dict[str, Any]:
    return {
        "customer": {"first_name": "Łucja"},
        "store": {"name": "Acme", "url": "https://shop.example.com", "address": None, "address_lines": []},
        "cart": {
            "items": [
                {
                    "name": "Wool socks",
                    "quantity": 2,
                    "price": "12.50",
                    "currency": "USD",
                    "image_url": None,
                    "url": None,
                    "line_total": "25.00",
                }
            ],
            "value": "25.00",
            "currency": "USD",
            "item_count": 2,
        },
        "recovery_url": "https://shop.example.com/cart/recover?c=1",
        "unsubscribe_url": "https://api.example.com/v1/unsubscribe?t=v1.x.y",
        "preferences_url": "https://api.example.com/v1/preferences?t=v1.x.y",
        "step": {"id": "reminder-1", "index": 0, "is_last": False},
    }


@pytest.fixture
def ses() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("sesv2", region_name=REGION)
        client.create_email_identity(EmailIdentity="shop@mail.example.com")
        yield client


def test_send_raw_delivers_through_moto(ses: Any) -> None:
    folder = DEFAULTS / "cart-abandoned"
    subject, html, text = (
        (folder / f).read_text(encoding="utf-8") for f in ("subject.txt", "body.html", "body.txt")
    )
    layouts = {f.name: f.read_text(encoding="utf-8") for f in (DEFAULTS / "_layout").glob("layout.*")}
    rendered = render_email(
        EmailTemplate("cart-abandoned", subject, html, text, layouts=layouts), cart_context()
    )
    raw = build_mime(
        sender="Acme <shop@mail.example.com>",
        to="lucja@example.org",
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        unsubscribe_url="https://api.example.com/v1/unsubscribe?t=v1.x.y",
        unsubscribe_mailto=None,
        headers={"X-Boomerang-Journey": "cart-abandoned"},
    )

    message_id = send_raw(
        ses,
        sender="shop@mail.example.com",
        to="lucja@example.org",
        raw=raw,
        configuration_set=None,
        tags={"journey": "cart-abandoned"},
    )

    sent = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
    assert [m.id for m in sent] == [message_id]
    parsed = email.message_from_bytes(sent[0].raw_data.encode(), policy=email.policy.default)
    assert parsed["Subject"] == "Łucja, you left something in your cart"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # moto appends the To header's addresses to Destination's, so the recipient shows up twice.
    assert set(sent[0].destinations) == {"lucja@example.org"}
    assert sent[0].source == "shop@mail.example.com"


def test_unverified_sender_is_permanent(ses: Any) -> None:
    raw = build_mime(
        sender="other@unverified.example",
        to="lucja@example.org",
        subject="s",
        html="<p>h</p>",
        text="t",
        unsubscribe_url="https://api.example.com/u",
        unsubscribe_mailto=None,
        headers={},
    )
    with pytest.raises(PermanentSendError) as info:
        send_raw(
            ses,
            sender="other@unverified.example",
            to="lucja@example.org",
            raw=raw,
            configuration_set=None,
            tags={},
        )
    assert info.value.code == "MessageRejected"
    assert "lucja@example.org" not in str(info.value)
