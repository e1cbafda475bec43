"""Journeys started by a store event fanned out to an audience (back in stock) or by the daily run
(birthday, win-back), end to end on `boomerang local` with time compressed.

The emulator fires the daily schedule at 12:00 UTC Boomerang time. Two emulators of our own run
side by side (started together, module-scoped):
- `daily` at x3600 from 02:00 UTC on Monday 23 November 2026, for back in stock and the birthday;
- `months` at x86400 (a day per real second) for win-back: a customer in Honolulu orders when the
  module starts, and her at-risk day (last order + 90 days) comes about a minute and a half later.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared import clock
from tests.e2e.conftest import stop_local
from tests.e2e.test_journeys_lifecycle import DAY, HOUR, Emulator, at, identify, order, track, who
from tests.e2e.test_journeys_lifecycle import _start as _start_at

pytestmark = pytest.mark.e2e

DAILY_SPEED = 3600
MONTHS_SPEED = 86400
DAILY_START = "2026-11-23T02:00:00Z"
MONTHS_START = "2026-01-12T06:00:00Z"


HONOLULU, BEA = who("hana"), who("bea")
BIRTHDAY: dict[str, Any] = {}


def _daily() -> Emulator:
    daily = _start_at(DAILY_SPEED, DAILY_START)
    try:
        # Given a consenting customer in Warsaw whose birthday is tomorrow (Boomerang time), known at
        # once (not after the other emulator has started): before today's daily run at 12:00 UTC
        today = datetime.fromtimestamp(daily.now(), tz=UTC).date()
        tomorrow = today + timedelta(days=1)
        daily.known(identify(BEA, timezone="Europe/Warsaw", birthday=f"1990-{tomorrow:%m-%d}"))
        BIRTHDAY["day"] = tomorrow
        run = datetime.combine(today, time(12), tzinfo=UTC).timestamp()
        BIRTHDAY["known_before_the_run"] = daily.now() < run
    except BaseException:
        stop_local(daily.proc)
        raise
    return daily


@pytest.fixture(scope="module")
def emulators() -> Iterator[dict[str, Emulator]]:
    with ThreadPoolExecutor(2) as pool:
        futures = {
            "daily": pool.submit(_daily),
            "months": pool.submit(_start_at, MONTHS_SPEED, MONTHS_START),
        }
        started, errors = {}, []
        for name, future in futures.items():
            try:
                started[name] = future.result()
            except Exception as exc:
                errors.append(exc)
    try:
        if errors:
            raise errors[0]
        yield started
    finally:
        for emulator in started.values():
            stop_local(emulator.proc)


@pytest.fixture(scope="module")
def daily(emulators: dict[str, Emulator]) -> Emulator:
    return emulators["daily"]


@pytest.fixture(scope="module")
def months(emulators: dict[str, Emulator]) -> Emulator:
    return emulators["months"]


# ---------------------------------------------------------------------------------------------
# win-back: the order placed when the module starts, so its 90 days pass while the other tests run


@pytest.fixture(scope="module", autouse=True)
def last_order(months: Emulator) -> float:
    # Given a consenting customer in Honolulu who bought once
    months.known(identify(HONOLULU, timezone="Pacific/Honolulu"))
    months.post(order(HONOLULU, f"o-{HONOLULU}", 40))
    return months.event_at(HONOLULU, "Order Completed")


# ---------------------------------------------------------------------------------------------
# back in stock

SKU = f"LAMP-{who('x')}"
PRODUCT = {"sku": SKU, "product_id": "p-lamp", "name": "Desk Lamp", "price": 49, "currency": "EUR"}
RESTOCK = {"type": "track", "event": "Back In Stock", "anonymousId": "inventory", "properties": PRODUCT}
KIM, LEE = who("kim"), who("lee")


@pytest.fixture(scope="module")
def restocked(daily: Emulator) -> float:
    # Given two customers who asked to hear when a lamp is back
    daily.known(identify(KIM), identify(LEE))
    daily.post(
        track(KIM, "Back In Stock Subscribed", "bis", **PRODUCT),
        track(LEE, "Back In Stock Subscribed", "bis", **PRODUCT),
    )
    for customer in (KIM, LEE):
        daily.event_at(customer, "Back In Stock Subscribed")
    # When the store says it is back
    daily.post({**RESTOCK, "messageId": f"restock-1-{SKU}"})
    for customer in (KIM, LEE):
        daily.wait_for(
            lambda c=customer: daily.sent(c, "back-in-stock"), 30, f"{customer}'s message", customer
        )
    return daily.now()


def test_back_in_stock_notifies_each_subscriber(daily: Emulator, restocked: float) -> None:
    # Then each of them gets exactly one back-in-stock message naming it
    for customer in (KIM, LEE):
        [mail] = daily.sent(customer, "back-in-stock")
        assert mail["step"] == "notify" and mail["channel"] == "email" and "Desk Lamp" in mail["subject"]
        assert mail["to"] == f"{customer}@example.com"
        assert mail["instance"] == f"u:{customer}|{SKU}"


def test_back_in_stock_again_sends_nothing_more(daily: Emulator, restocked: float) -> None:
    # When the store sends Back In Stock again for the same SKU, a couple of hours later
    daily.wait_until(restocked + 2 * HOUR, "two hours later")
    daily.post({**RESTOCK, "messageId": f"restock-2-{SKU}"})

    # Then nothing more is sent, and nothing starts: the subscriptions were answered
    daily.wait_until(daily.now() + 3 * HOUR, "three more hours")
    for customer in (KIM, LEE):
        sent = daily.sent(customer, "back-in-stock")
        assert len(sent) == 1, [(m["sent_at"], m["instance"]) for m in sent]
        reasons = daily.reasons(customer, "back-in-stock")
        assert reasons == [":entered:", "notify:sent:", ":exited:all steps done"], reasons


# ---------------------------------------------------------------------------------------------
# birthday


def test_birthday_at_ten_local_on_the_day_exactly_once(daily: Emulator) -> None:
    birthday: date = BIRTHDAY["day"]
    assert BIRTHDAY["known_before_the_run"], "the customer was known only after the daily run"

    # Then the birthday message goes out at 10:00 her time on the day, with its offer
    ten = datetime.combine(birthday, time(10), tzinfo=ZoneInfo("Europe/Warsaw")).timestamp()
    [mail] = daily.wait_for(
        lambda: daily.sent(BEA, "birthday"), (ten - daily.now()) / daily.speed + 30, "the birthday email", BEA
    )
    assert mail["step"] == "birthday" and mail["channel"] == "email"
    assert ten <= at(mail) < ten + daily.late, (mail["sent_at"], clock.iso(ten))
    assert "BIRTHDAY15" in mail["text"]

    # And only once: not again when the next daily run (12:00 UTC on the day) has passed
    next_run = datetime.combine(birthday, time(12), tzinfo=UTC).timestamp()
    daily.wait_until(next_run + daily.late, "past the daily run on the day")
    sent = daily.sent(BEA, "birthday")
    assert len(sent) == 1, [(m["sent_at"], m["instance"]) for m in sent]


def test_birthday_journey_enters_once_per_occasion(daily: Emulator) -> None:
    birthday: date = BIRTHDAY["day"]
    next_run = datetime.combine(birthday, time(12), tzinfo=UTC).timestamp()
    daily.wait_until(next_run + daily.late, "past the daily run on the day")
    entered = [
        # (a run's records carry its trigger's hash after "~")
        h["instance"].split("~")[0]
        for h in daily.history(BEA)
        if h["journey"] == "birthday" and h["type"] == "entered"
    ]
    assert entered == [f"u:{BEA}@{birthday.isoformat()}"], entered


# ---------------------------------------------------------------------------------------------
# win-back


def test_win_back_at_ten_local_on_the_at_risk_day(months: Emulator, last_order: float) -> None:
    # Given the Honolulu customer's only order, and the store's at-risk minimum of 90 days
    day = datetime.fromtimestamp(last_order + 90 * DAY, tz=UTC).date()
    assert months.profile(HONOLULU)["at_risk_on"] == day.isoformat()

    # Then the win-back email goes out at 10:00 her time on the at-risk day (found by the 12:00 UTC
    # run: 02:00 in Honolulu, so 10:00 is still ahead whatever the emulator's latency)
    honolulu = ZoneInfo("Pacific/Honolulu")
    ten = datetime.combine(day, time(10), tzinfo=honolulu).timestamp()
    midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=honolulu).timestamp()
    months.wait_until(midnight, "the end of the at-risk day in Honolulu")
    sent = months.sent(HONOLULU, "win-back")
    assert [m["step"] for m in sent] == ["reactivate"], [(m["step"], m["sent_at"]) for m in sent]
    [mail] = sent
    # x86400 makes a step's own work hours of Boomerang time: late within the day, never early
    assert ten <= at(mail) < midnight, (mail["sent_at"], clock.iso(ten))
    assert mail["channel"] == "email" and mail["to"] == f"{HONOLULU}@example.com"
