"""Journeys started by a store event fanned out to an audience (back in stock) or by the daily run
(birthday, win-back), end to end on `boomerang local` with time compressed.

The emulator fires the daily schedule at 12:00 UTC Boomerang time. One emulator of our own runs at
x3600 from 02:00 UTC on Monday 23 November 2026, for a store whose at-risk minimum is 2 days
(`boomerang local --store FILE`), so win-back's at-risk day comes within the module's run, at a
speed where the emulator's latency is minutes of Boomerang time, not hours.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.platform import clock
from tests.e2e.conftest import ROOT, stop_local
from tests.e2e.test_journeys_lifecycle import DAY, HOUR, Emulator, at, identify, order, track, who
from tests.e2e.test_journeys_lifecycle import _start as _start_at

pytestmark = pytest.mark.e2e

DAILY_SPEED = 3600
DAILY_START = "2026-11-23T02:00:00Z"
AT_RISK_DAYS = 2  # the store's at-risk minimum (90 by default)


HONOLULU, BEA = who("hana"), who("bea")
BIRTHDAY: dict[str, Any] = {}


@pytest.fixture(scope="module")
def daily() -> Iterator[Emulator]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Path(tmp) / "store.json"
        settings.write_text(json.dumps({"retention": {"at_risk_min_days": AT_RISK_DAYS}}))
        emulator = _start_at(DAILY_SPEED, DAILY_START, "--store", str(settings))
    try:
        # Given a consenting customer in Warsaw whose birthday is tomorrow (Boomerang time), known
        # before today's daily run at 12:00 UTC
        today = datetime.fromtimestamp(emulator.now(), tz=UTC).date()
        tomorrow = today + timedelta(days=1)
        emulator.known(identify(BEA, timezone="Europe/Warsaw", birthday=f"1990-{tomorrow:%m-%d}"))
        BIRTHDAY["day"] = tomorrow
        run = datetime.combine(today, time(12), tzinfo=UTC).timestamp()
        BIRTHDAY["known_before_the_run"] = emulator.now() < run
        yield emulator
    finally:
        stop_local(emulator.proc)


# ---------------------------------------------------------------------------------------------
# win-back: the order placed when the module starts, so its at-risk day comes while the others run


@pytest.fixture(scope="module", autouse=True)
def last_order(daily: Emulator) -> float:
    # Given a consenting customer in Honolulu who bought once
    daily.known(identify(HONOLULU, timezone="Pacific/Honolulu"))
    daily.post(order(HONOLULU, f"o-{HONOLULU}", 40))
    return daily.event_at(HONOLULU, "Order Completed")


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


def test_win_back_at_ten_local_on_the_at_risk_day(daily: Emulator, last_order: float) -> None:
    # Given the Honolulu customer's only order, and the store's at-risk minimum of 2 days
    day = datetime.fromtimestamp(last_order + AT_RISK_DAYS * DAY, tz=UTC).date()
    assert daily.profile(HONOLULU)["at_risk_on"] == day.isoformat()

    # Then the win-back email goes out at 10:00 her time on the at-risk day (found by the 12:00 UTC
    # run: 02:00 in Honolulu, so 10:00 is still ahead whatever the emulator's latency)
    honolulu = ZoneInfo("Pacific/Honolulu")
    ten = datetime.combine(day, time(10), tzinfo=honolulu).timestamp()
    midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=honolulu).timestamp()
    daily.wait_until(midnight, "the end of the at-risk day in Honolulu")
    sent = daily.sent(HONOLULU, "win-back")
    assert [m["step"] for m in sent] == ["reactivate"], [(m["step"], m["sent_at"]) for m in sent]
    [mail] = sent
    # late within the day (the emulator's latency), never early
    assert ten <= at(mail) < midnight, (mail["sent_at"], clock.iso(ten))
    assert mail["channel"] == "email" and mail["to"] == f"{HONOLULU}@example.com"


# ---------------------------------------------------------------------------------------------
# broadcast: a marketer pushes a flash sale for a segment, for the day after tomorrow

FAY, GUS = who("fay"), who("gus")


@pytest.fixture(scope="module", autouse=True)
def flash_sale(daily: Emulator, tmp_path_factory: pytest.TempPathFactory) -> date:
    # Given a window shopper (known, viewed a product, never ordered) and a buyer who also viewed
    daily.known(identify(FAY, timezone="Europe/Warsaw"), identify(GUS, timezone="Europe/Warsaw"))
    daily.post(order(GUS, f"o-{GUS}", 25))
    daily.event_at(GUS, "Order Completed")
    daily.post(
        track(FAY, "Product Viewed", "view", sku="LAMP-1"), track(GUS, "Product Viewed", "view", sku="LAMP-1")
    )
    for customer in (FAY, GUS):
        daily.event_at(customer, "Product Viewed")
    # When the marketer pushes a broadcast to the window shoppers with the real CLI
    # (its day: the daily run the day before, at 12:00 UTC on the 24th, starts it)
    day = datetime.fromtimestamp(clock.parse_iso(DAILY_START), tz=UTC).date() + timedelta(days=2)
    path = tmp_path_factory.mktemp("journeys") / "flash-sale-e2e.yaml"
    path.write_text(
        "name: Flash sale for window shoppers\n"
        "kind: marketing\n"
        "category: offers\n"
        f"trigger:\n  broadcast: {{segment: window-shoppers, day: {day.isoformat()}}}\n"
        "steps:\n"
        "  - id: announce\n"
        '    at: "10:00"\n'
        "    template: flash-sale\n"
        "    offer: {code: FLASH30, description: 30% off today}\n"
    )
    pushed = subprocess.run(
        [
            sys.executable,
            "-m",
            "infra.local",
            "journeys",
            "push",
            str(path),
            "--store",
            "demo",
            "--local",
            daily.local.url,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert "journeys/demo/flash-sale-e2e.yaml: checked" in pushed.stdout, pushed.stdout
    return day


def test_a_broadcast_reaches_the_segment_at_ten_local_on_its_day(daily: Emulator, flash_sale: date) -> None:
    warsaw = ZoneInfo("Europe/Warsaw")
    ten = datetime.combine(flash_sale, time(10), tzinfo=warsaw).timestamp()
    midnight = datetime.combine(flash_sale + timedelta(days=1), time(0), tzinfo=warsaw).timestamp()
    daily.wait_until(midnight, "the end of the broadcast day in Warsaw")

    # Then the window shopper gets it once, at 10:00 her time on the day, with the code
    [mail] = daily.sent(FAY, "flash-sale-e2e")
    assert mail["step"] == "announce" and mail["channel"] == "email"
    assert ten <= at(mail) < ten + daily.late, (mail["sent_at"], clock.iso(ten))
    assert "FLASH30" in mail["text"] and "30% off today" in mail["subject"]
    assert daily.reasons(FAY, "flash-sale-e2e") == [":entered:", "announce:sent:", ":exited:all steps done"]
    # and the buyer, who is not in the segment, gets nothing: his run never started
    assert daily.sent(GUS, "flash-sale-e2e") == []
    assert daily.reasons(GUS, "flash-sale-e2e") == []
