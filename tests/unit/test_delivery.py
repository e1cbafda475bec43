"""The delivery policy: consent and suppression, quiet hours across DST, frequency caps."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from shared.domain.delivery import (
    DAY,
    Cap,
    CapEntry,
    DeliveryPolicy,
    QuietHours,
    cap_allows,
    customer_timezone,
    eligibility,
    quiet_until,
)
from shared.domain.profiles import Consent, Device, Profile


def ts(*args: int, tz: str = "UTC") -> float:
    return datetime(*args, tzinfo=ZoneInfo(tz)).timestamp()  # type: ignore[misc]


def profile(**changes: object) -> Profile:
    p = Profile(store_id="s", customer_id="u:1", email="a@example.com", phone="+48601234567")
    p.consent = {"email": Consent(status="subscribed", at=1), "sms": Consent(status="subscribed", at=1)}
    return p.model_copy(update=changes)


# -- quiet hours ---------------------------------------------------------------------------------


def test_daytime_send_goes_now() -> None:
    assert (
        quiet_until(ts(2026, 11, 23, 12, 0, tz="Europe/Warsaw"), ZoneInfo("Europe/Warsaw"), QuietHours())
        is None
    )


def test_evening_send_waits_for_eight_next_morning_local() -> None:
    tz = ZoneInfo("America/New_York")
    assert quiet_until(ts(2026, 11, 23, 22, 30, tz=tz.key), tz, QuietHours()) == ts(
        2026, 11, 24, 8, 0, tz=tz.key
    )


def test_early_morning_send_waits_until_eight_the_same_day() -> None:
    tz = ZoneInfo("Asia/Tokyo")
    assert quiet_until(ts(2026, 11, 23, 5, 59, tz=tz.key), tz, QuietHours()) == ts(
        2026, 11, 23, 8, 0, tz=tz.key
    )


def test_quiet_hours_end_at_eight_local_when_clocks_go_back_overnight() -> None:
    # Given Warsaw leaves summer time in the night of 24-25 October 2026 (03:00 CEST -> 02:00 CET)
    tz = ZoneInfo("Europe/Warsaw")
    due = datetime(2026, 10, 24, 22, 30, tzinfo=tz).timestamp()
    # Then the SMS waits until 08:00 CET, which is 07:00 UTC (not the 06:00 UTC a fixed offset gives)
    assert quiet_until(due, tz, QuietHours()) == datetime(2026, 10, 25, 7, 0, tzinfo=UTC).timestamp()


def test_quiet_hours_end_at_eight_local_when_clocks_go_forward_overnight() -> None:
    tz = ZoneInfo("America/New_York")  # 14 March 2027, 02:00 EST -> 03:00 EDT
    due = datetime(2027, 3, 13, 23, 0, tzinfo=tz).timestamp()
    assert quiet_until(due, tz, QuietHours()) == datetime(2027, 3, 14, 12, 0, tzinfo=UTC).timestamp()


def test_no_quiet_hours_for_email_by_default() -> None:
    policy = DeliveryPolicy()
    assert policy.quiet_hours["email"] is None
    assert quiet_until(ts(2026, 11, 23, 23, 0), ZoneInfo("UTC"), policy.quiet_hours["email"]) is None


def test_time_zone_comes_from_traits_then_phone_then_store() -> None:
    assert customer_timezone(profile(traits={"timezone": "Asia/Tokyo"}), "UTC").key == "Asia/Tokyo"
    assert customer_timezone(profile(), "UTC").key == "Europe/Warsaw"  # +48
    assert customer_timezone(profile(phone=None), "America/Chicago").key == "America/Chicago"


# -- consent, suppression, category ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "channel", "kind", "suppressed", "expected"),
    [
        ({}, "email", "marketing", None, (True, "consented")),
        ({"email": None}, "email", "marketing", None, (False, "no email address")),
        ({"consent": {}}, "email", "marketing", None, (False, "no email consent")),
        (
            {"consent": {"email": Consent(status="unsubscribed", at=2)}},
            "email",
            "marketing",
            None,
            (False, "email consent withdrawn"),
        ),
        ({"consent": {}}, "email", "transactional", None, (True, "transactional")),
        ({}, "email", "transactional", "hard", (False, "email address suppressed (bounced)")),
        ({}, "email", "marketing", "marketing", (False, "email address suppressed (complaint)")),
        ({}, "email", "transactional", "marketing", (True, "transactional")),
        ({}, "push", "marketing", None, (False, "no registered device")),
        (
            {"devices": {"k": Device(token="t" * 16, platform="GCM", at=1)}},
            "push",
            "marketing",
            None,
            (False, "no push consent"),
        ),
        (
            {"categories": {"reminders": Consent(status="unsubscribed", at=3)}},
            "sms",
            "marketing",
            None,
            (False, "opted out of reminders"),
        ),
    ],
)
def test_eligibility(changes: dict, channel: str, kind: str, suppressed: str | None, expected: tuple) -> None:
    found = eligibility(profile(**changes), channel, kind, "reminders", suppressed)  # type: ignore[arg-type]
    assert (found.ok, found.reason) == expected


# -- frequency caps --------------------------------------------------------------------------------


NOW = 1_800_000_000.0


def entry(hours_ago: float, channel: str = "email") -> CapEntry:
    return CapEntry(at=NOW - hours_ago * 3600, channel=channel, send_id=f"{channel}-{hours_ago}")


def test_first_message_fits() -> None:
    assert cap_allows([], "email", DeliveryPolicy(), NOW) is None


def test_second_message_within_a_day_waits_until_the_first_is_a_day_old() -> None:
    assert cap_allows([entry(23)], "sms", DeliveryPolicy(), NOW) == NOW - 23 * 3600 + DAY


def test_fourth_message_in_a_week_waits_for_the_oldest_to_age_out() -> None:
    ledger = [entry(6 * 24), entry(4 * 24), entry(2 * 24)]
    assert cap_allows(ledger, "email", DeliveryPolicy(), NOW) == NOW - 6 * 24 * 3600 + 7 * DAY


def test_messages_older_than_a_week_do_not_count() -> None:
    assert cap_allows([entry(8 * 24), entry(9 * 24), entry(10 * 24)], "email", DeliveryPolicy(), NOW) is None


def test_a_channel_cap_can_be_tighter_than_the_overall_cap() -> None:
    policy = DeliveryPolicy(cap=Cap(per_day=5, per_week=10), channel_caps={"sms": Cap(per_day=1, per_week=1)})
    assert cap_allows([entry(30, "sms")], "email", policy, NOW) is None
    assert cap_allows([entry(30, "sms")], "sms", policy, NOW) == NOW - 30 * 3600 + 7 * DAY
