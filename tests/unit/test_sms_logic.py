"""SMS arithmetic and phone numbers: segment counts as carriers bill them, E.164, time zones."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from shared.adapters.channels.email import PermanentSendError, TransientSendError
from shared.adapters.channels.sms import OptedOut, classify_sns
from shared.domain.contacts import SmsSegments, normalise_phone, phone_region, segments, timezone_for_phone

# --- segments: GSM-7 --------------------------------------------------------------------------------


def test_empty_body_is_no_segment() -> None:
    assert segments("") == SmsSegments("GSM-7", 0, 0)


@pytest.mark.parametrize(
    ("length", "expected"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm_single_message_is_160_and_parts_153(length: int, expected: int) -> None:
    assert segments("a" * length) == SmsSegments("GSM-7", length, expected)


def test_gsm_basic_set_includes_accents_greek_and_line_breaks() -> None:
    body = "Grüße à Müller, Ørsted, Ñoño, café: ΔΦΓ £5 ¿?\n\r@_§"
    assert segments(body).encoding == "GSM-7"


@pytest.mark.parametrize("char", ["ç", "á", "ú", "ł", "’", "“"])
def test_common_lookalikes_are_not_gsm(char: str) -> None:
    # Only upper-case Ç, and é/è/ù/ì/ò/à of the accented vowels, are in GSM 03.38; a typographic
    # apostrophe from a template editor silently halves the characters per segment.
    assert segments("Hello " + char).encoding == "UCS-2"


@pytest.mark.parametrize("char", list("^{}\\[~]|€\f"))
def test_extension_characters_count_twice(char: str) -> None:
    assert segments(char) == SmsSegments("GSM-7", 2, 1)
    # 158 + 2 fits in one message; 159 + 2 does not.
    assert segments("a" * 158 + char).segments == 1
    assert segments("a" * 159 + char) == SmsSegments("GSM-7", 161, 2)


def test_escape_sequence_is_not_split_across_parts() -> None:
    # 152 + 2 + 152 = 306 septets would fit two 153-septet parts, but the € cannot straddle them.
    body = "a" * 152 + "€" + "a" * 152
    assert segments(body) == SmsSegments("GSM-7", 306, 3)


# --- segments: UCS-2 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "expected"),
    [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_single_message_is_70_and_parts_67(length: int, expected: int) -> None:
    body = "ą" * length  # Polish ą is not in GSM-7
    assert segments(body) == SmsSegments("UCS-2", length, expected)


def test_one_non_gsm_character_turns_the_whole_body_ucs2() -> None:
    assert segments("a" * 69 + "ł") == SmsSegments("UCS-2", 70, 1)
    assert segments("a" * 70 + "ł") == SmsSegments("UCS-2", 71, 2)


def test_emoji_counts_two_utf16_units() -> None:
    assert segments("😀") == SmsSegments("UCS-2", 2, 1)
    assert segments("😀" * 35) == SmsSegments("UCS-2", 70, 1)
    assert segments("a" + "😀" * 35) == SmsSegments("UCS-2", 71, 2)


def test_surrogate_pair_is_not_split_across_parts() -> None:
    # 66 + 2 + 66 = 134 units: two full parts by arithmetic, three when the emoji moves whole.
    assert segments("ą" * 66 + "😀" + "ą" * 66) == SmsSegments("UCS-2", 134, 3)


def test_literal_escape_character_is_not_gsm() -> None:
    assert segments("\x1b").encoding == "UCS-2"


# --- phone numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+48 601 234 567", None, "+48601234567"),
        ("+48-601-234-567", None, "+48601234567"),
        ("(212) 555-1234", "US", "+12125551234"),
        ("601 234 567", "pl", "+48601234567"),
        ("0048 601 234 567", "PL", "+48601234567"),
        ("+1 212 555 1234", "PL", "+12125551234"),  # an explicit country code wins
    ],
)
def test_normalise_phone_gives_e164(raw: str, region: str | None, expected: str) -> None:
    assert normalise_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("601 234 567", None),  # national number, no region to read it in
        ("+48 601 23", None),  # too short
        ("+1 555 555 0199", None),  # 555 numbers are reserved, not valid
        ("hello", "PL"),
        ("", "PL"),
        ("   ", None),
    ],
)
def test_normalise_phone_rejects_invalid(raw: str, region: str | None) -> None:
    with pytest.raises(ValueError, match="phone number"):
        normalise_phone(raw, region)


def test_error_message_does_not_echo_the_number() -> None:
    with pytest.raises(ValueError) as info:
        normalise_phone("+48 601 23", None)
    assert "601" not in str(info.value)


def test_phone_region() -> None:
    assert phone_region("+48601234567") == "PL"
    assert phone_region("+12125551234") == "US"
    assert phone_region("not a number") is None


def test_timezone_for_a_single_zone_country() -> None:
    assert timezone_for_phone("+48601234567") == "Europe/Warsaw"


def test_timezone_for_a_us_area_code() -> None:
    assert timezone_for_phone("+12125551234") == "America/New_York"


@pytest.mark.parametrize(
    "number",
    [
        "+79161234567",  # Russian mobile: eleven zones
        "+61412345678",  # Australian mobile: the whole continent
    ],
)
def test_timezone_is_none_when_ambiguous(number: str) -> None:
    assert timezone_for_phone(number) is None


def test_timezone_is_none_when_unknown() -> None:
    assert timezone_for_phone("+15555550199") is None  # phonenumbers answers Etc/Unknown
    assert timezone_for_phone("garbage") is None


# --- SNS error mapping --------------------------------------------------------------------------------


def _client_error(code: str, status: int, message: str = "boom") -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "Publish")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "status"),
    [("Throttled", 429), ("Throttling", 400), ("KMSThrottling", 400), ("InternalError", 500), ("Odd", 503)],
)
def test_sns_transient_errors(code: str, status: int) -> None:
    error = classify_sns(_client_error(code, status))
    assert isinstance(error, TransientSendError)
    assert error.code == code


@pytest.mark.parametrize(
    ("code", "status"),
    [("InvalidParameter", 400), ("KMSDisabled", 400), ("AuthorizationError", 403), ("Odd", 400)],
)
def test_sns_permanent_errors(code: str, status: int) -> None:
    error = classify_sns(_client_error(code, status))
    assert isinstance(error, PermanentSendError) and not isinstance(error, OptedOut)


def test_sns_opted_out_error_is_the_opted_out_class() -> None:
    assert isinstance(classify_sns(_client_error("OptedOut", 400)), OptedOut)


def test_sns_error_message_hides_the_number() -> None:
    error = classify_sns(_client_error("InvalidParameter", 400, "Invalid parameter: +48601234567 is bad"))
    assert "601234567" not in str(error)


def test_unreachable_sns_is_transient() -> None:
    error = classify_sns(EndpointConnectionError(endpoint_url="https://sns.us-east-1.amazonaws.com"))
    assert isinstance(error, TransientSendError)
