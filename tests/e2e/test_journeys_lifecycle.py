"""Lifecycle journeys end to end on `boomerang local`, with time compressed: welcome series, browse
abandonment, post-purchase and loyalty tier, as shipped in infra/journeys/.

Two emulators of our own run side by side (started together, module-scoped):
- `shop` at x43200 (12 Boomerang hours per real second) for the journeys counted in days: the
  30-day post-purchase (its orders are placed when the module starts, so its month runs while the
  other tests do), the welcome series and the loyalty tier;
- `browse` at x7200 for browse abandonment, whose 2-hour window must stay wider than the emulator's
  latency (a few tenths of a real second).
Each is warmed up first (a throwaway customer through every λ), so a cold start does not show up as
a day of lateness. Lateness tolerances are two real seconds (a day on `shop`, 4 hours on `browse`);
a send is never allowed early.
Why a journey stopped, or skipped a step, is read from the customer's journey history
(/_local/history).
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from shared.platform import clock
from tests.e2e.conftest import Local, start_local, stop_local

pytestmark = pytest.mark.e2e

HOUR = 3600
DAY = 24 * HOUR
RUN = uuid.uuid4().hex[:8]
SHOP_SPEED = 43200
BROWSE_SPEED = 7200
START = "2026-03-02T08:00:00Z"  # a Monday; no DST change in the month that follows


# ---------------------------------------------------------------------------------------------
# an emulator of our own


class Emulator:
    def __init__(self, proc: subprocess.Popen[str], local: Local, speed: int) -> None:
        self.proc, self.local, self.speed = proc, local, speed
        # lateness allowed: three real seconds of emulator latency, in Boomerang time (a loaded 2-core
        # CI box took 2.2 s for ingest -> profile fold with segments -> trigger -> step -> SES)
        self.late = speed * 3.0
        if getattr(local, "log", None) is None:  # keep the pipe drained if start_local does not
            threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for _ in self.proc.stdout:
            pass

    def history(self, customer: str) -> list[dict[str, Any]]:
        """What journeys did for a customer, oldest first (/_local/history)."""
        status, body = self.local.request("GET", f"/_local/history?store=demo&customer=u:{customer}")
        assert status == 200, body
        return list(body["history"])

    def reasons(self, customer: str, journey: str, instance: str | None = None) -> list[str]:
        """One journey's history for a customer as "step:type:reason", e.g. ":exited:all steps done"
        (every generation of the instance, or of every instance)."""
        return [
            f"{h.get('step_id') or ''}:{h['type']}:{h.get('reason') or ''}"
            for h in self.history(customer)
            if h["journey"] == journey and (instance is None or h["instance"].split("~")[0] == instance)
        ]

    def wait_for(self, predicate: Any, timeout: float, what: str, about: str = "") -> Any:
        """Local.wait_for, saying on a timeout what journeys did for the customer `about`."""
        try:
            return self.local.wait_for(predicate, timeout, what)
        except AssertionError as exc:
            if not about:
                raise
            said = self.history(about)
            raise AssertionError(f"{exc}; now {clock.iso(self.now())}; history of {about}: {said}") from None

    def now(self) -> float:
        return clock.parse_iso(self.local.request("GET", "/_local/health")[1]["now"])

    def wait_until(self, ts: float, what: str) -> None:
        """Sleep until Boomerang time reaches `ts`."""
        remaining = ts - self.now()
        if remaining > 0:
            self.local.wait_for(lambda: self.now() >= ts, remaining / self.speed + 30, what)

    def post(self, *calls: dict[str, Any]) -> None:
        status, body = self.local.post("/v1/batch", {"batch": list(calls)})
        assert (status, body) == (200, {"success": True, "accepted": len(calls)}), body

    def sent(self, customer: str, journey: str | None = None) -> list[dict[str, Any]]:
        """Messages sent to a customer (whose send has been recorded), oldest first."""
        return [
            m
            for m in self.local.outbox()
            if m["sent_at"]
            and m["customer_id"] == f"u:{customer}"
            and (journey is None or m["journey"] == journey)
        ]

    def profile(self, customer: str) -> dict[str, Any]:
        status, body = self.local.request("GET", f"/_local/profile?store=demo&customer=u:{customer}")
        assert status == 200, body
        return dict(body)

    def event_at(self, customer: str, event: str, after: float = 0, timeout: float = 30) -> float:
        """When the profile recorded the customer's latest `event` (its receive time), once later
        than `after`."""

        def seen() -> float | None:
            at = self.profile_or_none(customer).get("last_event_at", {}).get(event)
            return float(at) if at is not None and float(at) > after else None

        return float(self.local.wait_for(seen, timeout, f"{event} on {customer}'s profile"))

    def known(self, *calls: dict[str, Any]) -> None:
        """Post identify calls and wait until every profile holds its email (and consent). A track
        event sent in the same batch could be folded first, and a journey would decide on a
        profile without them."""
        self.post(*calls)

        def ready(user: str, want: str | None) -> bool:
            p = self.profile_or_none(user)
            return bool(p.get("email")) and (
                want is None or p["consent"].get("email", {}).get("status") == want
            )

        for call in calls:
            user, want = call["userId"], call["traits"].get("consent", {}).get("email")
            self.wait_for(lambda u=user, w=want: ready(u, w), 30, f"{user}'s profile")

    def profile_or_none(self, customer: str) -> dict[str, Any]:
        status, body = self.local.request("GET", f"/_local/profile?store=demo&customer=u:{customer}")
        return dict(body) if status == 200 else {}


def at(message: dict[str, Any]) -> float:
    return clock.parse_iso(message["sent_at"])


def who(name: str) -> str:
    return f"{name}-{RUN}"


def identify(user: str, consent: bool = True, **traits: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"email": f"{user}@example.com", "first_name": user.split("-")[0].title()}
    if consent:
        fields["consent"] = {"email": "subscribed"}
        fields["consent_source"] = "e2e"
    return {"type": "identify", "userId": user, "messageId": f"id-{user}", "traits": {**fields, **traits}}


def track(user: str, event: str, mid: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": event,
        "userId": user,
        "messageId": f"{mid}-{user}",
        "properties": properties,
    }


def order(user: str, order_id: str, total: float, mid: str = "order") -> dict[str, Any]:
    products = [
        {"product_id": "p-kettle", "sku": "KETTLE-1", "name": "Kettle", "price": total - 10, "quantity": 1},
        {"product_id": "p-mug", "sku": "MUG-1", "name": "Mug", "price": 10, "quantity": 1},
    ]
    return track(
        user, "Order Completed", mid, order_id=order_id, total=total, currency="EUR", products=products
    )


def view(user: str, n: int, mid: str | None = None) -> dict[str, Any]:
    return track(
        user,
        "Product Viewed",
        mid or f"view-{n}",
        product_id=f"p-{n}",
        sku=f"SKU-{n}",
        name=f"Product {n}",
        price=10 * n,
        currency="EUR",
    )


def _start(speed: int, start: str = START, *extra: str) -> Emulator:
    proc, local = start_local("--speed", str(speed), "--start", start, *extra)
    emulator = Emulator(proc, local, speed)
    try:
        # warm up every λ on the way (ingest, profile, trigger, step, SES) with a throwaway customer
        warm = who("warm")
        emulator.known(identify(warm))
        emulator.post(track(warm, "Signed Up", "signup"))
        local.wait_for(lambda: emulator.sent(warm, "welcome"), 60, "the warm-up welcome email")
    except BaseException:
        stop_local(proc)
        raise
    return emulator


@pytest.fixture(scope="module")
def emulators() -> Iterator[dict[str, Emulator]]:
    with ThreadPoolExecutor(2) as pool:
        futures = {
            name: pool.submit(_start, speed)
            for name, speed in (("shop", SHOP_SPEED), ("browse", BROWSE_SPEED))
        }
        started = {}
        errors = []
        for name, future in futures.items():
            try:
                started[name] = future.result()
            except Exception as exc:  # stop whatever did start
                errors.append(exc)
    try:
        if errors:
            raise errors[0]
        yield started
    finally:
        for emulator in started.values():
            stop_local(emulator.proc)


@pytest.fixture(scope="module")
def shop(emulators: dict[str, Emulator]) -> Emulator:
    return emulators["shop"]


@pytest.fixture(scope="module")
def browse(emulators: dict[str, Emulator]) -> Emulator:
    return emulators["browse"]


# ---------------------------------------------------------------------------------------------
# post-purchase: started first (autouse), so its month runs while the other tests do

BUYER, NO_CONSENT, CANCELLER = who("pia"), who("nico"), who("cleo")


@pytest.fixture(scope="module", autouse=True)
def purchases(shop: Emulator) -> Iterator[dict[str, Any]]:
    # Given three customers with an email address, two of whom accepted marketing email, each buy
    shop.known(identify(BUYER), identify(NO_CONSENT, consent=False), identify(CANCELLER))
    shop.post(
        order(BUYER, f"o-{BUYER}", 40),
        order(NO_CONSENT, f"o-{NO_CONSENT}", 40),
        order(CANCELLER, f"o-{CANCELLER}", 40),
    )
    ordered = shop.event_at(BUYER, "Order Completed")
    state: dict[str, Any] = {"ordered": ordered}

    def cancel() -> None:
        # And one of them cancels two days later, before the review request is due at +7 d
        try:
            shop.wait_until(ordered + 2 * DAY, "two days after the orders")
            shop.post(track(CANCELLER, "Order Cancelled", "cancel", order_id=f"o-{CANCELLER}"))
            state["cancelled"] = shop.event_at(CANCELLER, "Order Cancelled")
        except Exception as exc:  # reported by the test
            state["cancel_error"] = exc

    canceller = threading.Thread(target=cancel, daemon=True)
    canceller.start()
    state["canceller"] = canceller
    yield state
    canceller.join(timeout=30)


# ---------------------------------------------------------------------------------------------
# welcome series


def test_welcome_series_offer_at_once_brand_story_at_two_days_and_the_first_order_ends_it(
    shop: Emulator,
) -> None:
    ann = who("ann")
    # Given a new subscriber who accepted email
    shop.known(identify(ann))
    shop.post(track(ann, "Signed Up", "signup"))
    signed_up = shop.event_at(ann, "Signed Up")

    # Then the welcome email with the first-order code goes out at once
    [welcome] = shop.wait_for(lambda: shop.sent(ann, "welcome"), 30, "the welcome email", ann)
    assert welcome["step"] == "welcome" and welcome["channel"] == "email"
    assert welcome["to"] == f"{ann}@example.com"
    assert "WELCOME10" in welcome["text"] and "WELCOME10" in welcome["html"]
    assert signed_up <= at(welcome) < signed_up + shop.late, welcome["sent_at"]

    # And the brand story two days later
    story = shop.wait_for(
        lambda: [m for m in shop.sent(ann, "welcome") if m["step"] == "brand-story"],
        2 * DAY / shop.speed + 30,
        "the brand-story email",
        ann,
    )[0]
    assert signed_up + 2 * DAY <= at(story) < signed_up + 2 * DAY + shop.late, story["sent_at"]

    # When she places her first order before the best sellers are due (+5 d)
    shop.post(order(ann, f"o-{ann}", 30))
    ordered = shop.event_at(ann, "Order Completed")
    assert ordered < signed_up + 5 * DAY

    # Then the series ends there: no best-sellers email, and the history says why
    shop.wait_until(signed_up + 5 * DAY + shop.late, "past the best-sellers step")
    assert [m["step"] for m in shop.sent(ann, "welcome")] == ["welcome", "brand-story"]
    reasons = shop.reasons(ann, "welcome")
    assert reasons == [
        ":entered:",
        "welcome:sent:",
        "brand-story:sent:",
        ":exited:Order Completed after the journey started",
    ], reasons

    # When she signs up again later
    shop.post(track(ann, "Signed Up", "signup-again"))
    again_at = shop.event_at(ann, "Signed Up", after=signed_up)

    # Then nothing starts (re-entry: once): no second entry in her history, no more email
    shop.wait_until(again_at + DAY, "a day after the second sign-up")
    assert [m["step"] for m in shop.sent(ann, "welcome")] == ["welcome", "brand-story"]
    assert shop.reasons(ann, "welcome") == reasons


def test_welcome_series_needs_email_consent(shop: Emulator) -> None:
    # Given a subscriber with an email address who did not accept marketing email
    ben = who("ben")
    shop.known(identify(ben, consent=False))
    shop.post(track(ben, "Signed Up", "signup"))
    signed_up = shop.event_at(ben, "Signed Up")

    # Then the journey stops at the door, saying why, and nothing is sent
    shop.wait_for(
        lambda: ":exited:not eligible: no email consent" in shop.reasons(ben, "welcome"),
        30,
        "the welcome journey's not-eligible exit",
        ben,
    )
    shop.wait_until(signed_up + 2 * DAY + shop.late, "past the brand-story step")
    assert shop.sent(ben) == []
    assert shop.reasons(ben, "welcome") == [":entered:", ":exited:not eligible: no email consent"]


# ---------------------------------------------------------------------------------------------
# loyalty tier


def test_an_order_reaching_silver_sends_the_loyalty_tier_email(shop: Emulator) -> None:
    # Given a consenting customer with no points
    lou = who("lou")
    shop.known(identify(lou))

    # When she buys for 600 (1 point per unit: silver starts at 500)
    shop.post(order(lou, f"o-{lou}", 600))

    # Then the profile holds 600 points at silver, and the loyalty-tier email says so
    [mail] = shop.wait_for(lambda: shop.sent(lou, "loyalty-tier"), 30, "the loyalty-tier email", lou)
    loyalty = shop.profile(lou)["loyalty"]
    assert (loyalty["points"], loyalty["tier"]) == (600, "silver")
    assert mail["step"] == "tier-reached" and mail["channel"] == "email"
    assert "silver" in mail["subject"]
    assert "600 points" in mail["text"]
    assert "1,400 points away from gold" in mail["text"]
    time.sleep(1)  # a repeat announcement would show up within a real second
    assert len(shop.sent(lou, "loyalty-tier")) == 1


# ---------------------------------------------------------------------------------------------
# browse abandonment


def test_browse_abandonment_two_hours_after_the_last_view_shows_the_three_newest(browse: Emulator) -> None:
    vic, cat = who("vic"), who("cat")
    browse.known(identify(vic), identify(cat))

    # Given a known, consenting customer who looks at four products, a few minutes apart
    for n in range(1, 5):
        browse.post(view(vic, n))
        time.sleep(0.05)
    # And another who looks at one and adds it to the cart a few minutes later (within 2 h)
    browse.post(view(cat, 1))
    time.sleep(0.05)
    browse.post(
        track(
            cat,
            "Product Added",
            "add",
            cart_id=f"cart-{cat}",
            product_id="p-1",
            sku="SKU-1",
            name="Product 1",
            price=10,
            currency="EUR",
        )
    )

    # Then two hours after her LAST view, one email shows the three most recent, newest first
    [mail] = browse.wait_for(
        lambda: browse.sent(vic, "browse-abandonment"), 3 * HOUR / browse.speed + 30, "the browse email", vic
    )
    profile = browse.profile(vic)
    last_view = profile["last_event_at"]["Product Viewed"]
    assert [v["sku"] for v in profile["viewed"][:4]] == ["SKU-4", "SKU-3", "SKU-2", "SKU-1"]
    assert last_view + 2 * HOUR <= at(mail) < last_view + 2 * HOUR + browse.late, mail["sent_at"]
    assert mail["step"] == "viewed" and mail["channel"] == "email"
    text = mail["text"]
    assert "Product 1" not in text
    assert 0 <= text.index("Product 4") < text.index("Product 3") < text.index("Product 2"), text

    # And the one who added to the cart gets no browse email: the journey ended, saying why
    browse.wait_for(
        lambda: (
            ":exited:Product Added after the journey started" in browse.reasons(cat, "browse-abandonment")
        ),
        30,
        "the browse journey's exit on Product Added",
        cat,
    )
    assert browse.sent(cat, "browse-abandonment") == []

    # When the first customer views a product again three days after the email
    browse.wait_until(at(mail) + 3 * DAY, "three days after the browse email")
    browse.post(view(vic, 5, "view-again"))
    again = browse.event_at(vic, "Product Viewed", after=at(mail))
    assert again >= at(mail) + 3 * DAY

    # Then nothing starts (once per 7 days): no second entry in her history, no second email
    browse.wait_until(again + 2 * HOUR + browse.late, "past two hours after the new view")
    assert len(browse.sent(vic, "browse-abandonment")) == 1
    reasons = browse.reasons(vic, "browse-abandonment")
    assert reasons == [":entered:", "viewed:sent:", ":exited:all steps done"], reasons
    assert browse.sent(cat, "browse-abandonment") == []


# ---------------------------------------------------------------------------------------------
# post-purchase (orders placed by the autouse fixture when the module started)


def test_post_purchase_confirmation_review_referral_and_no_complementary_without_a_catalog(
    shop: Emulator, purchases: dict[str, Any]
) -> None:
    ordered = purchases["ordered"]
    shop.wait_until(ordered + 30 * DAY + shop.late, "a month after the orders")

    # The consenting buyer: confirmation at once, review request at +7 d, referral at +14 d
    steps = {m["step"]: m for m in shop.sent(BUYER, "post-purchase")}
    assert list(steps) == ["confirmation", "review", "referral"], list(steps)
    confirmation, review, referral = steps["confirmation"], steps["review"], steps["referral"]
    assert ordered <= at(confirmation) < ordered + shop.late, confirmation["sent_at"]
    assert f"o-{BUYER}" in confirmation["text"] and "Kettle" in confirmation["text"]
    assert ordered + 7 * DAY <= at(review) < ordered + 7 * DAY + shop.late, review["sent_at"]
    assert ordered + 14 * DAY <= at(referral) < ordered + 14 * DAY + shop.late, referral["sent_at"]
    assert "FRIEND15" in referral["text"]
    # and complementary products at +30 d are skipped: the demo store has no catalog/related.json
    reasons = shop.reasons(BUYER, "post-purchase", f"o-{BUYER}")
    assert reasons == [
        ":entered:",
        "confirmation:sent:",
        "review:sent:",
        "referral:sent:",
        "complementary:skipped:no products to show (complementary is empty)",
        ":exited:all steps done",
    ], reasons

    # The buyer without marketing consent: the (transactional) confirmation only
    [only] = shop.sent(NO_CONSENT, "post-purchase")
    assert only["step"] == "confirmation" and ordered <= at(only) < ordered + shop.late
    reasons = shop.reasons(NO_CONSENT, "post-purchase", f"o-{NO_CONSENT}")
    assert "review:skipped:no email consent" in reasons, reasons
    assert "referral:skipped:no email consent" in reasons, reasons

    # The buyer who cancelled at +2 d: the confirmation only, and the journey ended on the cancellation
    purchases["canceller"].join(timeout=30)
    assert "cancel_error" not in purchases, purchases.get("cancel_error")
    assert purchases["cancelled"] < ordered + 7 * DAY
    assert [m["step"] for m in shop.sent(CANCELLER, "post-purchase")] == ["confirmation"]
    reasons = shop.reasons(CANCELLER, "post-purchase", f"o-{CANCELLER}")
    assert reasons == [":entered:", "confirmation:sent:", ":exited:order cancelled"], reasons
