"""Quiet hours across a DST change, on `boomerang local` started just before one.

Warsaw leaves summer time in the night of 24-25 October 2026 (03:00 CEST -> 02:00 CET). A cart
abandoned at 22:00 CEST on the 23rd has its day-after reminder due at 22:00 CEST on the 24th: inside
quiet hours, so the SMS must wait until 08:00 the next morning — 08:00 CET, which is 07:00 UTC.
A fixed offset would send it at 06:00 UTC, an hour early.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from shared.platform import clock
from tests.e2e.conftest import Local, start_local, stop_local

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def before_dst() -> Iterator[Local]:
    proc, server = start_local("--start", "2026-10-23T20:00:00Z")
    try:
        yield server
    finally:
        stop_local(proc)


def test_night_sms_waits_until_eight_local_across_the_dst_change(before_dst: Local) -> None:
    local = before_dst
    # Given a Polish customer who accepted texts only abandons a cart at 22:00 CEST on 23 October
    batch = [
        {
            "type": "identify",
            "userId": "ola",
            "messageId": "id-ola",
            "traits": {"phone": "+48 601 234 567", "consent": {"sms": "subscribed"}},
        },
        {
            "type": "track",
            "event": "Product Added",
            "userId": "ola",
            "messageId": "add-ola",
            "properties": {
                "cart_id": "cart-ola",
                "product_id": "p-1",
                "name": "Kettle",
                "price": 30,
                "currency": "PLN",
            },
        },
    ]
    assert local.post("/v1/batch", {"batch": batch})[0] == 200

    # When the day-after reminder comes due at night, around the clock change
    # (a message shows its journey, step and time once the step that sent it has returned)
    [sms] = local.wait_for(lambda: [m for m in local.outbox() if m["sent_at"]], 90, "the SMS")

    # Then it went out at 08:00 Warsaw time after the change (07:00 UTC), not at 06:00 UTC
    sent = datetime.fromtimestamp(clock.parse_iso(sms["sent_at"]), tz=UTC)
    eight_cet = datetime(2026, 10, 25, 7, 0, tzinfo=UTC)
    assert sms["channel"] == "sms" and sms["step"] == "reminder-2"
    assert eight_cet <= sent < eight_cet.replace(hour=8, minute=30), sent
