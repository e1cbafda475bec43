from __future__ import annotations

import email
import email.policy
import logging
from email.message import EmailMessage
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from shared.adapters.channels.email import (
    PermanentSendError,
    SendingParked,
    TransientSendError,
    build_mime,
    classify,
    send_raw,
)

TOKEN_URL = "https://api.example.com/v1/unsubscribe?t=v1." + "A" * 140 + "." + "B" * 43


def build(**overrides: Any) -> bytes:
    args: dict[str, Any] = {
        "sender": "Lovelace & Co <shop@mail.example.com>",
        "to": "ada@example.org",
        "subject": "You left something in your cart",
        "html": "<p>Hello <b>Ada</b></p>",
        "text": "Hello Ada",
        "unsubscribe_url": TOKEN_URL,
        "unsubscribe_mailto": "mailto:unsubscribe@mail.example.com?subject=unsubscribe",
        "headers": {"X-Boomerang-Journey": "cart-abandoned"},
    }
    args.update(overrides)
    return build_mime(**args)


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_message_is_multipart_alternative_with_text_then_html() -> None:
    message = parse(build())

    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert parts[0].get_content().strip() == "Hello Ada"
    assert parts[1].get_content().strip() == "<p>Hello <b>Ada</b></p>"


def test_headers_include_one_click_unsubscribe() -> None:
    message = parse(build())

    assert (
        message["List-Unsubscribe"]
        == f"<{TOKEN_URL}>, <mailto:unsubscribe@mail.example.com?subject=unsubscribe>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["X-Boomerang-Journey"] == "cart-abandoned"
    assert message["Message-ID"].endswith("@mail.example.com>")
    assert message["Date"]
    assert message["To"] == "ada@example.org"
    assert message["From"].addresses[0].addr_spec == "shop@mail.example.com"


def test_long_unsubscribe_url_is_not_encoded_word() -> None:
    # The stock SMTP policy would turn the long token into =?utf-8?q?...?=, unreadable to Gmail.
    raw = build()
    assert b"=?" not in raw.split(b"List-Unsubscribe:", 1)[1].split(b"\r\nList-Unsubscribe-Post", 1)[0]
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


def test_mailto_is_optional() -> None:
    message = parse(build(unsubscribe_mailto=None))
    assert message["List-Unsubscribe"] == f"<{TOKEN_URL}>"


def test_non_ascii_subject_round_trips() -> None:
    subject = "Zażółć gęślą jaźń — ostatnia szansa, twój koszyk wkrótce wygaśnie 🛒"
    raw = build(subject=subject, text="Cześć Łucja", html="<p>Cześć Łucja</p>")

    assert raw.isascii()  # RFC 2047 in headers, quoted-printable in bodies
    assert b"=?utf-8?" in raw
    message = parse(raw)
    assert message["Subject"] == subject
    assert list(message.iter_parts())[0].get_content().strip() == "Cześć Łucja"


@pytest.mark.parametrize(
    "overrides",
    [
        {"subject": "Hi\r\nBcc: victim@example.net"},
        {"subject": "Hi\nBcc: victim@example.net"},
        {"to": "ada@example.org\r\nBcc: victim@example.net"},
        {"sender": "shop@mail.example.com\rBcc: victim@example.net"},
        {"headers": {"X-Boomerang-Journey": "a\r\nBcc: victim@example.net"}},
        {"unsubscribe_url": "https://api.example.com/u\r\nBcc: victim@example.net"},
        {"unsubscribe_mailto": "mailto:u@example.com\nBcc: victim@example.net"},
    ],
)
def test_header_injection_is_rejected(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        build(**overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        {"headers": {"Bcc": "victim@example.net"}},  # reserved header
        {"headers": {"List-Unsubscribe": "<https://evil.example>"}},
        {"headers": {"Bad Name": "x"}},
        {"unsubscribe_url": "http://api.example.com/u"},  # RFC 8058 needs https
        {"unsubscribe_url": "javascript:alert(1)"},
        {"unsubscribe_mailto": "https://not-a-mailto.example"},
    ],
)
def test_invalid_headers_are_rejected(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        build(**overrides)


def test_plain_http_unsubscribe_allowed_on_localhost_for_the_emulator() -> None:
    message = parse(
        build(unsubscribe_url="http://127.0.0.1:3000/v1/unsubscribe?t=x", unsubscribe_mailto=None)
    )
    assert message["List-Unsubscribe"] == "<http://127.0.0.1:3000/v1/unsubscribe?t=x>"


def test_long_html_lines_stay_within_smtp_limits() -> None:
    raw = build(html="<table>" + "<td>x</td>" * 1000 + "</table>")
    assert all(len(line) <= 78 for line in raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n"))


# --- send_raw with a fake client (the moto round trip lives in the integration tests) -------------


class FakeSes:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.error = error

    def send_email(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.error:
            raise self.error
        return {"MessageId": "0100-abc"}


def client_error(code: str, status: int, message: str = "nope") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "SendEmail",
    )


def test_send_raw_builds_the_request() -> None:
    ses = FakeSes()
    message_id = send_raw(
        ses,
        sender="shop@mail.example.com",
        to="ada@example.org",
        raw=b"raw",
        configuration_set="boomerang",
        tags={"journey": "cart-abandoned", "store": "shop.example"},
    )

    assert message_id == "0100-abc"
    assert ses.calls == [
        {
            "FromEmailAddress": "shop@mail.example.com",
            "Destination": {"ToAddresses": ["ada@example.org"]},
            "Content": {"Raw": {"Data": b"raw"}},
            "EmailTags": [
                {"Name": "journey", "Value": "cart-abandoned"},
                {"Name": "store", "Value": "shop_example"},  # SES allows [A-Za-z0-9_-] only
            ],
            "ConfigurationSetName": "boomerang",
        }
    ]


def test_send_raw_omits_configuration_set_when_not_given() -> None:
    ses = FakeSes()
    send_raw(ses, sender="s@example.com", to="t@example.com", raw=b"r", configuration_set=None, tags={})
    assert "ConfigurationSetName" not in ses.calls[0]


def test_send_raw_rejects_invalid_tag_names() -> None:
    with pytest.raises(ValueError):
        send_raw(
            FakeSes(),
            sender="s@example.com",
            to="t@example.com",
            raw=b"r",
            configuration_set=None,
            tags={"a b": "x"},
        )


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (client_error("MessageRejected", 400), PermanentSendError),
        (client_error("MailFromDomainNotVerifiedException", 400), PermanentSendError),
        (client_error("AccountSuspendedException", 400), PermanentSendError),
        (client_error("SendingPausedException", 400), SendingParked),
        (client_error("NotFoundException", 404), PermanentSendError),
        (client_error("SomethingNew", 400), PermanentSendError),
        (client_error("TooManyRequestsException", 429), TransientSendError),
        (client_error("LimitExceededException", 400), TransientSendError),
        (client_error("InternalFailure", 500), TransientSendError),
        (client_error("SomethingNew", 503), TransientSendError),
        (EndpointConnectionError(endpoint_url="https://email.us-east-1.amazonaws.com"), TransientSendError),
        (ReadTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com"), TransientSendError),
    ],
)
def test_errors_are_classified(error: Exception, kind: type[Exception]) -> None:
    assert isinstance(classify(error), kind)
    with pytest.raises(kind):
        send_raw(
            FakeSes(error),
            sender="s@example.com",
            to="t@example.com",
            raw=b"r",
            configuration_set=None,
            tags={},
        )


def test_errors_and_logs_never_carry_the_recipient(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    error = client_error(
        "MessageRejected",
        400,
        "Email address is not verified. The following identities failed the check: ada@example.org",
    )
    with pytest.raises(PermanentSendError) as info:
        send_raw(
            FakeSes(error),
            sender="s@example.com",
            to="ada@example.org",
            raw=b"r",
            configuration_set=None,
            tags={},
        )

    assert "ada@example.org" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert info.value.code == "MessageRejected"
    assert "ada@example.org" not in caplog.text
    for record in caplog.records:
        assert "ada@example.org" not in str(record.__dict__)


def test_daily_quota_parks_and_rate_limit_retries() -> None:
    # SES answers both with ThrottlingException; only the message tells them apart
    quota = classify(client_error("ThrottlingException", 400, "Daily message quota exceeded."))
    rate = classify(client_error("ThrottlingException", 400, "Maximum sending rate exceeded."))
    assert isinstance(quota, SendingParked) and quota.park_s >= 600
    assert isinstance(rate, TransientSendError) and not isinstance(rate, SendingParked)
