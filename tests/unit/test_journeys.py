"""decide(): what the shipped cart-abandonment journey does next, from fresh state; and execution names."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shared.adapters.journey_catalog import parse
from shared.domain.carts import Cart, CartLine
from shared.domain.journey_decisions import Decision, Situation, decide, execution_name
from shared.domain.journeys import Journey
from shared.domain.profiles import Profile

ROOT = Path(__file__).resolve().parents[2]
CART_ABANDONMENT = parse(
    (ROOT / "infra/journeys/cart-abandonment.yaml").read_text(), expected_id="cart-abandonment"
)
HOUR = 3600
T0 = 1_790_000_000.0  # last cart activity
FIRST, SECOND, THIRD = (s.after for s in CART_ABANDONMENT.steps)


def decide_cart(
    journey: Journey, index: int, c: Cart | None, profile: Profile | None, now: float
) -> Decision:
    activity = c.last_activity_at if c else None
    situation = Situation(
        now=now, started_at=T0, tz=ZoneInfo("UTC"), profile=profile, cart=c, activity_at=activity
    )
    return decide(journey, index, situation)


def cart(last_activity: float = T0, quantity: int = 1, **fields: object) -> Cart:
    c = Cart(store_id="shop-1", cart_id="cart-42", user_id="user-42", last_activity_at=last_activity)
    c.lines["RUN-42"] = CartLine(
        sku="RUN-42", price=Decimal("89.5"), quantity=quantity, updated_at=last_activity
    )
    return c.model_copy(update=fields)


def customer(last_order_at: float | None = None) -> Profile:
    p = Profile(store_id="shop-1", customer_id="u:user-42", email="ada@example.com")
    p.orders.last_order_at = last_order_at
    return p


def test_the_shipped_journey_reminds_at_one_hour_one_day_and_three_days() -> None:
    assert [(s.id, s.after, s.from_, s.channels, s.template) for s in CART_ABANDONMENT.steps] == [
        ("email-1", HOUR, "activity", ["email"], "cart-abandoned"),
        ("reminder-2", 24 * HOUR, "activity", ["push", "webpush", "sms", "email"], "cart-offer"),
        ("last-chance", 72 * HOUR, "activity", ["email"], "cart-last-chance"),
    ]
    assert CART_ABANDONMENT.steps[1].offer is not None  # the day-after text carries the offer
    assert (CART_ABANDONMENT.kind, CART_ABANDONMENT.category, CART_ABANDONMENT.per) == (
        "marketing",
        "reminders",
        "cart",
    )
    assert CART_ABANDONMENT.yields_to == ["checkout-abandonment"]


def test_missing_cart_exits() -> None:
    assert decide_cart(CART_ABANDONMENT, 0, None, customer(), T0 + 2 * HOUR) == Decision(
        "exit", "cart not found"
    )


def test_converted_cart_exits() -> None:
    bought = cart(status="converted", order_id="order-1001", converted_at=T0 + 60)
    assert decide_cart(CART_ABANDONMENT, 0, bought, customer(), T0 + 2 * HOUR) == Decision(
        "exit", "customer bought (order order-1001)"
    )


@pytest.mark.parametrize("ordered_at", [T0, T0 + 1])
def test_order_after_the_last_cart_activity_exits(ordered_at: float) -> None:
    # Given the customer ordered (maybe from another cart) at or after their last cart activity
    decision = decide_cart(CART_ABANDONMENT, 0, cart(), customer(last_order_at=ordered_at), T0 + 2 * HOUR)
    assert decision == Decision("exit", "customer bought after the last cart activity")


def test_order_before_the_last_cart_activity_does_not_stop_the_journey() -> None:
    decision = decide_cart(CART_ABANDONMENT, 0, cart(), customer(last_order_at=T0 - 1), T0 + 2 * HOUR)
    assert decision.action == "send"


def test_emptied_cart_exits() -> None:
    emptied = cart(quantity=0)
    assert decide_cart(CART_ABANDONMENT, 0, emptied, customer(), T0 + 2 * HOUR) == Decision(
        "exit", "cart emptied"
    )


def test_before_due_waits_until_last_activity_plus_delay() -> None:
    decision = decide_cart(CART_ABANDONMENT, 0, cart(), customer(), now=T0 + 20 * 60)
    assert decision == Decision("wait", "waiting for email-1", 40 * 60)


def test_newer_cart_activity_extends_the_wait() -> None:
    # Given the journey woke up on schedule for email-1, but the customer touched the cart 30 min ago
    now = T0 + HOUR
    decision = decide_cart(CART_ABANDONMENT, 0, cart(last_activity=now - 30 * 60), customer(), now)

    # Then it waits another 30 minutes: the clock restarts from the customer's last action
    assert (decision.action, decision.wait_seconds) == ("wait", 30 * 60)


def test_second_step_waits_from_last_activity_not_from_the_first_email() -> None:
    decision = decide_cart(CART_ABANDONMENT, 1, cart(), customer(), now=T0 + HOUR)
    assert decision == Decision("wait", "waiting for reminder-2", SECOND - HOUR)


def test_waits_at_least_one_second_and_rounds_up() -> None:
    decision = decide_cart(CART_ABANDONMENT, 0, cart(), customer(), now=T0 + FIRST - 0.25)
    assert (decision.action, decision.wait_seconds) == ("wait", 1)


@pytest.mark.parametrize("late", [0, 1, 5 * HOUR])
def test_sends_when_due(late: float) -> None:
    decision = decide_cart(CART_ABANDONMENT, 0, cart(), customer(), now=T0 + FIRST + late)
    assert decision == Decision("send", "email-1 due")


def test_customer_unknown_still_decides_on_the_cart() -> None:
    assert decide_cart(CART_ABANDONMENT, 1, cart(), None, now=T0 + SECOND).action == "send"


def test_all_steps_done_exits() -> None:
    decision = decide_cart(CART_ABANDONMENT, len(CART_ABANDONMENT.steps), cart(), customer(), T0 + 99 * HOUR)
    assert decision == Decision("exit", "all steps done")


# --- execution names -------------------------------------------------------------------------------

NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


@pytest.mark.parametrize(
    ("store", "instance"),
    [
        ("shop-1", "cart-42"),
        ("a" * 63, "c" * 200),
        ("shop-1", "cart with spaces/and:colons*?"),
        ("shop-1", "koszyk-żółty-🛒"),
        ("s1", "default-" + "f" * 24),
    ],
)
def test_execution_name_is_valid_for_step_functions(store: str, instance: str) -> None:
    name = execution_name(store, "cart-abandonment", instance)
    assert NAME.match(name), name
    assert len(name) <= 80


def test_execution_name_is_deterministic_and_unique_per_instance() -> None:
    a = execution_name("shop-1", "cart-abandonment", "cart-42")
    assert a == execution_name("shop-1", "cart-abandonment", "cart-42")
    assert a.startswith("shop-1-cart-abandonment-")
    others = {
        execution_name("shop-1", "cart-abandonment", "cart-43"),
        execution_name("shop-2", "cart-abandonment", "cart-42"),
        execution_name("shop-1", "winback", "cart-42"),
        # ids that only differ in characters the readable part replaces must not collide
        execution_name("shop-1", "cart-abandonment", "cart/42"),
    }
    assert a not in others and len(others) == 4


def test_long_store_ids_do_not_collide_after_truncation() -> None:
    long = "s" * 60
    assert execution_name(long + "a", "cart-abandonment", "c") != execution_name(
        long + "b", "cart-abandonment", "c"
    )


def test_re_entry_rules_are_refused_on_scheduled_journeys() -> None:
    from shared.adapters.journey_catalog import JourneyFileError

    text = 'trigger: {schedule: at-risk}\nre_entry: {once_per_days: 365}\nsteps:\n  - id: a\n    at: "10:00"\n    template: t\n'
    with pytest.raises(JourneyFileError) as info:
        parse(text, expected_id="win-back")
    assert "runs once per occasion" in str(info.value)


# --- timed from delivery --------------------------------------------------------------------------

POST_PURCHASE = parse((ROOT / "infra/journeys/post-purchase.yaml").read_text(), expected_id="post-purchase")
DAY = 24 * HOUR


def decide_review(now: float, delivered_at: float | None) -> Decision:
    review = [s.id for s in POST_PURCHASE.steps].index("review")
    situation = Situation(
        now=now, started_at=T0, tz=ZoneInfo("UTC"), order_status="completed", delivered_at=delivered_at
    )
    return decide(POST_PURCHASE, review, situation)


def test_the_review_request_counts_a_week_from_delivery_when_known() -> None:
    review = next(s for s in POST_PURCHASE.steps if s.id == "review")
    assert (review.after, review.from_) == (7 * DAY, "delivery")
    # delivered 4 days after the order: due on day 11, not day 7
    assert decide_review(T0 + 7 * DAY, T0 + 4 * DAY) == Decision("wait", "waiting for review", 4 * DAY)
    assert decide_review(T0 + 11 * DAY, T0 + 4 * DAY).action == "send"


def test_unknown_delivery_falls_back_to_the_order_time() -> None:
    assert decide_review(T0 + 7 * DAY - 1, None) == Decision("wait", "waiting for review", 1)
    assert decide_review(T0 + 7 * DAY, None).action == "send"


def test_delivery_known_later_moves_the_wait_on() -> None:
    # the step woke on day 7 with no delivery known... but by then the parcel had arrived on day 6
    assert decide_review(T0 + 7 * DAY, T0 + 6 * DAY) == Decision("wait", "waiting for review", 6 * DAY)


def test_from_delivery_needs_a_per_order_journey() -> None:
    from shared.adapters.journey_catalog import JourneyFileError

    text = "trigger: {event: Product Viewed}\nsteps:\n  - id: a\n    after: 1d\n    from: delivery\n    template: t\n"
    with pytest.raises(JourneyFileError) as info:
        parse(text, expected_id="nope")
    assert "from: delivery counts from an order's delivery: use per: order" in str(info.value)
