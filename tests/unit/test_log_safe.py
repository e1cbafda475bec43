"""Exceptions are logged by class, place and structure, never with the customer values they quote."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import phonenumbers
import pytest
from pydantic import BaseModel

from shared.platform import log_safe
from shared.services import wiring

EMAIL, PHONE, NAME = "yolanda.pii@example.com", "+15550100999", "Yolanda"


class Customer(BaseModel):
    email: str
    age: int
    traits: dict[str, int]


def raised(fn: Callable[[], object]) -> BaseException:
    try:
        fn()
    except Exception as exc:
        return exc
    raise AssertionError("did not raise")


def validation_error() -> None:
    Customer.model_validate({"email": [EMAIL], "age": NAME, "traits": {EMAIL: NAME + PHONE}})


def customer_errors() -> list[BaseException]:
    return [
        raised(validation_error),
        raised(lambda: dict[str, str]()[EMAIL]),
        raised(lambda: json.loads('{"email": "' + EMAIL + '", ' + NAME)),
        raised(lambda: phonenumbers.parse(NAME, None)),
        raised(lambda: int(NAME)),
        raised(lambda: float(PHONE + "x")),
    ]


@pytest.mark.parametrize("exc", customer_errors(), ids=lambda e: type(e).__name__)
def test_a_summary_never_carries_the_values_in_the_message(exc: BaseException) -> None:
    # (the raw messages do carry them: that is the bug this guards against)
    text = log_safe.summary_text(exc)
    for value in (EMAIL, PHONE, NAME, "yolanda"):
        assert value not in text
    assert json.loads(text)["error"] == type(exc).__name__


def test_a_validation_summary_names_fields_and_error_types() -> None:
    summary = log_safe.error_summary(raised(validation_error))
    assert {"loc": "age", "type": "int_parsing"} in summary["fields"]
    assert {"loc": "traits.<value>", "type": "int_parsing"} in summary["fields"]  # an email as a key
    assert summary["where"].startswith("main.py") or ":" in summary["where"]


def test_scrubbed_keeps_the_class_name_step_functions_matches_on() -> None:
    class TransientSendError(Exception):
        pass

    safe = log_safe.scrubbed(TransientSendError(f"SES refused {EMAIL}"))
    assert type(safe).__name__ == "TransientSendError" and EMAIL not in str(safe)
    assert isinstance(safe, TransientSendError)  # callers' except clauses still match
    assert log_safe.scrubbed(safe) is safe
    # a builtin that cannot be combined keeps at least its name
    odd = log_safe.scrubbed(UnicodeEncodeError("ascii", EMAIL, 0, 1, "no"))
    assert type(odd).__name__ == "UnicodeEncodeError" and EMAIL not in str(odd)


def test_a_failing_sqs_record_is_logged_without_its_values(caplog: pytest.LogCaptureFixture) -> None:
    def record_handler(record: object) -> None:
        validation_error()

    event = {
        "Records": [
            {
                "messageId": "m-1",
                "receiptHandle": "r",
                "body": "{}",
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                "awsRegion": "us-east-1",
            },
            {
                "messageId": "m-2",
                "receiptHandle": "r",
                "body": "{}",
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                "awsRegion": "us-east-1",
            },
        ]
    }
    caplog.set_level(logging.DEBUG)
    with pytest.raises(Exception) as all_failed:  # every record failed: the runtime logs this message
        wiring.process_sqs_batch(event, None, record_handler)  # type: ignore[arg-type]
    logged = caplog.text + str(all_failed.value)
    assert "ValidationError" in logged
    for value in (EMAIL, PHONE, NAME):
        assert value not in logged


def test_an_unhandled_handler_error_leaves_scrubbed() -> None:
    @log_safe.scrub_errors
    def handler() -> None:
        raise KeyError(EMAIL)

    with pytest.raises(log_safe.ScrubbedError) as info:
        handler()
    assert type(info.value).__name__ == "KeyError" and EMAIL not in str(info.value)
    assert info.value.__suppress_context__
