"""Contacts: phone numbers, SMS segments and device platforms, as pure functions (no AWS).

The ingest validators, the delivery policy, the template checks and the channels all need these;
keeping them here (not in the SNS or Pinpoint adapters) lets the lower layers use them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import phonenumbers
from phonenumbers import timezone as phone_timezone

# --- numbers --------------------------------------------------------------------------------------


def normalise_phone(raw: str, default_region: str | None = None) -> str:
    """``raw`` as E.164 (``+48601234567``); ValueError if it is not a valid number.

    ``default_region`` (ISO 3166 alpha-2, e.g. "PL") lets a national number without a country code
    through; without it only international numbers parse.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("phone number is empty")
    try:
        parsed = phonenumbers.parse(raw, default_region.upper() if default_region else None)
    except phonenumbers.NumberParseException as exc:
        # The library's message never quotes the input, so it is safe to pass on.
        hint = "" if default_region else "; give a country code or a default region"
        reason = str(exc).split(") ", 1)[-1].rstrip(".")  # drop the library's "(1) " error number
        raise ValueError(f"phone number cannot be parsed: {reason}{hint}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("phone number is not a valid number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone_region(e164: str) -> str | None:
    """The ISO country code of an E.164 number (None if unknown or unparseable)."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164)) or None
    except phonenumbers.NumberParseException:
        return None


def timezone_for_phone(e164: str) -> str | None:
    """The IANA zone when the number pins down exactly one, else None (the caller uses the store's).

    Mobile numbers in multi-zone countries (US mobiles are per area code, but RU, AU, BR... are
    not) give several zones; guessing one would send marketing SMS at night.
    """
    try:
        zones = phone_timezone.time_zones_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        return None
    real = [z for z in zones if z and z != "Etc/Unknown"]
    return real[0] if len(real) == 1 else None


# --- segments -------------------------------------------------------------------------------------

# GSM 03.38 default alphabet. ESC (0x1B) is left out: it only introduces extension characters.
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: ESC + one septet each, so they cost two.
_GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM_SINGLE, GSM_PART = 160, 153  # a concatenated part loses 7 septets to its UDH
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True)
class SmsSegments:
    """How a body is billed. ``characters`` is in the encoding's units: GSM-7 septets (extension
    characters count two) or UTF-16 code units for UCS-2 (an emoji counts two)."""

    encoding: Literal["GSM-7", "UCS-2"]
    characters: int
    segments: int


def _pack(units: list[int], single: int, part: int) -> int:
    """Segments needed for characters of the given widths.

    A character is never split across parts (an escape sequence or a surrogate pair stays whole,
    as handsets and SMSCs do), so a part may hold fewer than ``part`` units.
    """
    total = sum(units)
    if total == 0:
        return 0
    if total <= single:
        return 1
    count, used = 1, 0
    for width in units:
        if used + width > part:
            count, used = count + 1, 0
        used += width
    return count


def segments(body: str) -> SmsSegments:
    """The encoding SNS will use for ``body`` and how many SMS parts it becomes."""
    if all(c in _GSM_BASIC or c in _GSM_EXTENSION for c in body):
        septets = [2 if c in _GSM_EXTENSION else 1 for c in body]
        return SmsSegments("GSM-7", sum(septets), _pack(septets, GSM_SINGLE, GSM_PART))
    # One character outside GSM-7 turns the whole message into UCS-2 (UTF-16 on the wire).
    code_units = [2 if ord(c) > 0xFFFF else 1 for c in body]
    return SmsSegments("UCS-2", sum(code_units), _pack(code_units, UCS2_SINGLE, UCS2_PART))


# SNS alphanumeric sender ids: 1-11 letters and digits, at least one letter.
_SENDER_ID = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9]{1,11}$")


def valid_sender_id(sender_id: str) -> bool:
    return bool(_SENDER_ID.match(sender_id))


# --- device platforms ---------------------------------------------------------------------------

Platform = Literal["APNS", "APNS_SANDBOX", "GCM"]

_PLATFORMS: dict[str, Platform] = {
    "apns": "APNS",
    "ios": "APNS",
    "apns_sandbox": "APNS_SANDBOX",  # development builds talk to Apple's sandbox gateway
    "gcm": "GCM",  # Pinpoint still calls Firebase Cloud Messaging "GCM"
    "fcm": "GCM",
    "android": "GCM",
}


def normalise_platform(value: str) -> Platform:
    """Our platform name for what a storefront or SDK reports ("ios", "fcm", "APNS"...)."""
    platform = _PLATFORMS.get(str(value).strip().lower())
    if platform is None:
        raise ValueError(f"unknown push platform {value!r}; expected one of {sorted(_PLATFORMS)}")
    return platform
