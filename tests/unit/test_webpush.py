"""Web push: RFC 8291's own test vector through the library the sender uses, per-store VAPID keys,
subscription validation, the profile's bounded and idempotent subscriptions, response classification."""

from __future__ import annotations

import base64
import json
from typing import Any
from unittest import mock

import http_ece
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from shared.adapters.channels.email import PermanentSendError, TransientSendError
from shared.adapters.channels.webpush import (
    MaybeSent,
    RetryLater,
    WebPushResult,
    outcome,
    retry_after_seconds,
    send_webpush,
)
from shared.domain import webpush as wp
from shared.domain.api_calls import normalise
from shared.domain.event_routing import fold_profile_rules
from shared.domain.events import CanonicalEvent
from shared.domain.profiles import Profile
from shared.platform.vapid import VapidKeys, b64url, b64url_decode, derive


def _b(text: str) -> bytes:
    return b64url_decode(text)


# RFC 8291 Section 5 (the example: "When I grow up, I want to be a watermelon")
RFC_PLAINTEXT = b"When I grow up, I want to be a watermelon"
RFC_AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
RFC_AS_PUBLIC = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
RFC_UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
RFC_UA_PUBLIC = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
RFC_SALT = "DGv6ra1nlYgDCS1FRnbzlw"
RFC_AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
RFC_MESSAGE = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml"
    "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT"
    "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)


def _private(text: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(_b(text), "big"), ec.SECP256R1())


def test_rfc8291_vector_encrypts_to_the_rfcs_message_through_pywebpush() -> None:
    # Given the RFC's application server key pair and salt in place of the random ones
    from pywebpush import WebPusher

    sub = {"endpoint": "https://push.example.net/x", "keys": {"p256dh": RFC_UA_PUBLIC, "auth": RFC_AUTH}}
    with (
        mock.patch("pywebpush.ec.generate_private_key", return_value=_private(RFC_AS_PRIVATE)),
        mock.patch("http_ece.os.urandom", return_value=_b(RFC_SALT)),
    ):
        body = WebPusher(sub).encode(RFC_PLAINTEXT, "aes128gcm")["body"]
    # Then the body is byte for byte the RFC's message
    assert body == _b(RFC_MESSAGE)


def test_rfc8291_message_decrypts_with_the_user_agents_keys() -> None:
    plain = http_ece.decrypt(
        _b(RFC_MESSAGE), private_key=_private(RFC_UA_PRIVATE), auth_secret=_b(RFC_AUTH), version="aes128gcm"
    )
    assert plain == RFC_PLAINTEXT


def test_vapid_keys_are_per_store_stable_and_p256() -> None:
    root = b"r" * 48
    a1, a2, b = derive(root, "shop-a"), derive(root, "shop-a"), derive(root, "shop-b")
    assert a1.public_key == a2.public_key != b.public_key
    assert len(a1.public_bytes) == 65 and a1.public_bytes[0] == 4
    with pytest.raises(ValueError, match="at least 32"):
        derive(b"short", "shop-a")


def test_vapid_keys_read_the_secret_once_within_the_ttl() -> None:
    sm = mock.Mock()
    sm.get_secret_value.return_value = {"SecretString": "x" * 64}
    now = [0.0]
    keys = VapidKeys(sm, "arn:secret", ttl_seconds=60, clock=lambda: now[0])
    first = keys.for_store("s1").public_key
    keys.for_store("s1"), keys.for_store("s2")
    assert sm.get_secret_value.call_count == 1
    now[0] = 61
    assert keys.for_store("s1").public_key == first and sm.get_secret_value.call_count == 2


# --- subscriptions ---------------------------------------------------------------------------------


def browser_keys() -> tuple[ec.EllipticCurvePrivateKey, bytes, dict[str, str]]:
    from cryptography.hazmat.primitives import serialization

    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    auth = bytes(range(16))
    return private, auth, {"p256dh": b64url(public), "auth": b64url(auth)}


def subscribed(endpoint: str = "https://push.example.net/wpush/v2/abc", **extra: Any) -> dict[str, Any]:
    return {"endpoint": endpoint, "keys": browser_keys()[2], **extra}


def _problems(props: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as err:
        wp.WebPushSubscribedProperties.model_validate(props)
    return str(err.value)


def test_subscription_is_validated_with_clear_errors() -> None:
    assert "https://" in _problems(subscribed("http://push.example.net/x"))
    assert "at most 2048" in _problems(subscribed("https://push.example.net/" + "a" * 2100))
    assert "user name" in _problems(subscribed("https://u:p@push.example.net/x"))
    good = browser_keys()[2]
    assert "65 bytes" in _problems(
        {"endpoint": "https://p.example/x", "keys": {**good, "p256dh": b64url(b"\x04" * 33)}}
    )
    assert "16 bytes" in _problems(
        {"endpoint": "https://p.example/x", "keys": {**good, "auth": b64url(b"a" * 8)}}
    )
    assert "base64url" in _problems({"endpoint": "https://p.example/x", "keys": {**good, "auth": "a+b/"}})
    assert "0x04" in _problems(
        {"endpoint": "https://p.example/x", "keys": {**good, "p256dh": b64url(b"\x02" + b"a" * 64)}}
    )
    wp.WebPushSubscribedProperties.model_validate(subscribed())


def test_the_event_api_refuses_a_bad_subscription_naming_the_field() -> None:
    call = {
        "type": "track",
        "event": "Web Push Subscribed",
        "anonymousId": "v1",
        "messageId": "m1",
        "properties": subscribed("ftp://push.example.net/x"),
    }
    accepted, errors = normalise([call], "shop", 1000.0)
    assert not accepted
    assert [e.field for e in errors] == ["properties.endpoint"]
    assert "https://" in errors[0].message
    ok, none = normalise([{**call, "properties": subscribed()}], "shop", 1000.0)
    assert len(ok) == 1 and not none


def _event(name: str, props: dict[str, Any], at: float, mid: str) -> CanonicalEvent:
    return CanonicalEvent(
        message_id=mid,
        store_id="shop",
        type="track",
        event=name,
        anonymous_id="v1",
        properties=props,
        received_at=at,
    )


def _fold(profile: Profile, name: str, props: dict[str, Any], at: float, mid: str) -> list[str]:
    model = wp.WebPushSubscribedProperties if "Subscribed" in name else wp.WebPushUnsubscribedProperties
    clean = model.model_validate(props).model_dump(exclude_none=True)
    return fold_profile_rules(profile, _event(name, clean, at, mid), False)


def test_subscribe_stores_the_browser_with_consent_proof_idempotently() -> None:
    profile = Profile(store_id="shop", customer_id="a:v1")
    ua = "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0"
    props = subscribed(user_agent=ua, consent_text="Get a note when your cart's items drop in price")
    _fold(profile, "Web Push Subscribed", props, 100.0, "m1")
    _fold(profile, "Web Push Subscribed", props, 100.0, "m1")  # a redelivery
    assert len(profile.webpush) == 1
    held = next(iter(profile.webpush.values()))
    assert held.browser == "Firefox on Android" and held.endpoint == props["endpoint"]
    consent = profile.consent["webpush"]
    assert consent.status == "subscribed" and consent.message_id == "m1" and consent.at == 100.0
    assert consent.text == "Get a note when your cart's items drop in price"
    assert consent.source == wp.WEBPUSH_CONSENT_SOURCE
    assert len([c for c in profile.consent_history if c.channel == "webpush"]) == 1


def test_at_most_ten_browsers_oldest_dropped() -> None:
    profile = Profile(store_id="shop", customer_id="a:v1")
    for i in range(wp.MAX_BROWSERS + 2):
        _fold(profile, "Web Push Subscribed", subscribed(f"https://push.example.net/{i}"), 100.0 + i, f"m{i}")
    endpoints = sorted(s.endpoint for s in profile.webpush.values())
    assert len(endpoints) == wp.MAX_BROWSERS
    assert "https://push.example.net/0" not in endpoints and "https://push.example.net/1" not in endpoints


def test_unsubscribe_removes_and_a_late_subscribe_does_not_return() -> None:
    profile = Profile(store_id="shop", customer_id="a:v1")
    props = subscribed()
    _fold(profile, "Web Push Subscribed", props, 100.0, "m1")
    _fold(profile, "Web Push Unsubscribed", {"endpoint": props["endpoint"], "reason": "410"}, 200.0, "m2")
    assert profile.webpush == {}
    _fold(profile, "Web Push Subscribed", props, 150.0, "m1-late")  # delivered out of order
    assert profile.webpush == {}
    _fold(profile, "Web Push Subscribed", props, 300.0, "m3")  # subscribed again later: back
    assert len(profile.webpush) == 1


def test_notification_payload_is_bounded() -> None:
    raw = wp.notification_payload("Hi", "Body", "https://s.example/c", None, None, {"journey": "j"})
    assert json.loads(raw) == {
        "title": "Hi",
        "body": "Body",
        "url": "https://s.example/c",
        "data": {"journey": "j"},
    }
    with pytest.raises(ValueError, match="at most 3993"):
        wp.notification_payload("Hi", "x" * 4000, None, None, None, {})


# --- classification ---------------------------------------------------------------------------------


class _Response:
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status_code, self.headers, self.reason, self.text = status, headers or {}, "", ""


class _Session:
    """Answers each POST with the next status; keeps what was posted."""

    def __init__(self, *answers: _Response | Exception) -> None:
        self.answers, self.posts = list(answers), []

    def post(self, url: str, **kw: Any) -> _Response:
        self.posts.append((url, kw))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _send(session: _Session, n: int = 1) -> tuple[WebPushResult, list[ec.EllipticCurvePrivateKey]]:
    subs, privates = [], []
    for i in range(n):
        private, auth, keys = browser_keys()
        privates.append(private)
        subs.append(
            wp.BrowserSubscription(
                endpoint=f"https://push.example.net/{i}",
                p256dh=keys["p256dh"],
                auth=keys["auth"],
                browser="x",
                at=1.0,
            )
        )
    result = send_webpush(
        session,
        subscriptions=subs,
        payload=b'{"title":"t"}',
        vapid=derive(b"k" * 32, "shop"),
        subject="mailto:ops@shop.example",
        ttl=3600,
        urgency="normal",
    )
    return result, privates


def test_201_is_delivered_and_what_was_posted_decrypts_with_ttl_urgency_and_vapid() -> None:
    session = _Session(_Response(201, {"Location": "https://push.example.net/m/1"}))
    result, privates = _send(session)
    assert outcome(result) == "https://push.example.net/m/1"
    url, kw = session.posts[0]
    headers = {k.lower(): v for k, v in kw["headers"].items()}
    assert headers["ttl"] == "3600" and headers["urgency"] == "normal"
    assert headers["content-encoding"] == "aes128gcm"
    assert (
        headers["authorization"].startswith("vapid t=")
        and f"k={derive(b'k' * 32, 'shop').public_key}" in headers["authorization"]
    )
    plain = http_ece.decrypt(
        kw["data"], private_key=privates[0], auth_secret=bytes(range(16)), version="aes128gcm"
    )
    assert plain == b'{"title":"t"}'


@pytest.mark.parametrize("status", [404, 410])
def test_gone_subscriptions_are_reported_for_removal(status: int) -> None:
    result, _ = _send(_Session(_Response(status)))
    assert list(result.gone) == ["https://push.example.net/0"]
    with pytest.raises(PermanentSendError):
        outcome(result)


def test_429_honours_retry_after() -> None:
    result, _ = _send(_Session(_Response(429, {"Retry-After": "120"})))
    with pytest.raises(RetryLater) as err:
        outcome(result)
    assert err.value.retry_after == 120
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 - 30) == 30
    assert retry_after_seconds(None, 0) == 60


@pytest.mark.parametrize("status", [400, 413, 403])
def test_client_errors_are_permanent(status: int) -> None:
    result, _ = _send(_Session(_Response(status)))
    assert result.rejected
    with pytest.raises(PermanentSendError):
        outcome(result)


def test_5xx_and_unreachable_are_transient_and_a_read_timeout_is_maybe_sent() -> None:
    import requests

    result, _ = _send(_Session(_Response(503), requests.exceptions.ConnectionError("refused")), n=2)
    assert len(result.transient) == 2
    with pytest.raises(TransientSendError):
        outcome(result)
    result, _ = _send(_Session(requests.exceptions.ReadTimeout("slow")))
    with pytest.raises(MaybeSent):
        outcome(result)


def test_one_browser_taking_it_is_a_send_even_if_another_is_gone() -> None:
    result, _ = _send(_Session(_Response(410), _Response(201)), n=2)
    assert outcome(result).startswith("webpush-") and len(result.gone) == 1


def test_base64url_helpers_round_trip() -> None:
    assert b64url_decode(b64url(b"\x00\xff" * 5)) == b"\x00\xff" * 5
    assert base64.urlsafe_b64encode(b"\xfb").decode().rstrip("=") == b64url(b"\xfb")


def test_the_report_counts_web_push_sends_and_credits_their_conversions() -> None:
    from shared.domain import metrics as m

    sends = [
        m.SentRec("c1", "cart-abandonment", 0.0, "reminder-2", channel="webpush", kind="marketing"),
        m.SentRec("c2", "cart-abandonment", 0.0, "reminder-2", channel="sms", kind="marketing"),
    ]
    orders = [m.OrderRec("o1", "c1", 3600.0, 50)]
    [cart] = m.journey_results(orders, sends, [], window_days=5)
    assert cart.total.channels == {"sms": 1, "webpush": 1}
    assert (cart.total.conversions, cart.total.revenue) == (1, 50)


def test_the_preferences_page_offers_browser_notifications() -> None:
    from shared.services.consent.preferences import CHANNELS

    assert CHANNELS["webpush"] == "Browser notifications"


def test_site_scripts_carry_the_stores_public_key_and_unknown_names_or_stores_are_404() -> None:
    from shared.services.webpush import SCRIPTS, site_asset

    stores = mock.Mock()
    stores.get.side_effect = lambda store_id: object() if store_id == "shop" else None
    sm = mock.Mock()
    sm.get_secret_value.return_value = {"SecretString": "v" * 64}
    vapid = VapidKeys(sm, "arn:vapid")
    key = vapid.for_store("shop").public_key
    for name in SCRIPTS:
        found = site_asset(name, "shop", stores, vapid)
        assert found.status == 200 and found.content_type.startswith("text/javascript")
        assert json.dumps(key) in found.body and "__BOOMERANG" not in found.body
        assert "http://" not in found.body.replace("https://", "")  # nothing fetched from elsewhere
    config = site_asset("config", "shop", stores, vapid)
    assert json.loads(config.body)["publicKey"] == key
    assert site_asset("evil.js", "shop", stores, vapid).status == 404
    assert site_asset("config", "other", stores, vapid).status == 404
    assert site_asset("config", "../x", stores, vapid).status == 404
    assert site_asset("config", "shop", stores, None).status == 404
