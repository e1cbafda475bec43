"""Journey files: the shipped ones parse and say what they should; broken ones give precise, line-numbered
problems; and the pure semantics (matching, entry, experiments, due times, decisions) hand-checked."""

from __future__ import annotations

import hashlib
import math
import textwrap
from datetime import datetime
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shared.adapters.journey_catalog import MAX_FILE_BYTES, JourneyFileError, Problem, parse, problems
from shared.domain.journey_decisions import (
    Decision,
    Situation,
    bucket,
    decide,
    due_at,
    entry_problem,
    in_holdout,
    matches,
)
from shared.domain.journeys import Entry, Journey, OncePer, Step, Trigger, Variant
from shared.domain.profiles import Consent, Profile

ROOT = Path(__file__).resolve().parents[2]
JOURNEYS = ROOT / "infra" / "journeys"
SHIPPED = sorted(JOURNEYS.glob("*.yaml"))
MINUTE, HOUR, DAY = 60, 3600, 86400
UTC_TZ = ZoneInfo("UTC")
WARSAW = ZoneInfo("Europe/Warsaw")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


def shipped(name: str) -> Journey:
    return parse((JOURNEYS / f"{name}.yaml").read_bytes(), f"{name}.yaml", expected_id=name)


def file_problems(text: str, expected_id: str | None = "welcome") -> list[Problem]:
    with pytest.raises(JourneyFileError) as caught:
        parse(textwrap.dedent(text), "test.yaml", expected_id=expected_id)
    return caught.value.problems


def ts(*args: int, tz: ZoneInfo = UTC_TZ) -> float:
    return datetime(*args, tzinfo=tz).timestamp()  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# The shipped files


def test_ten_journey_files_are_shipped() -> None:
    assert [p.stem for p in SHIPPED] == [
        "back-in-stock",
        "birthday",
        "browse-abandonment",
        "cart-abandonment",
        "checkout-abandonment",
        "loyalty-tier",
        "order-anniversary",
        "post-purchase",
        "shipping-updates",
        "welcome",
        "win-back",
    ]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_file_parses_with_its_file_name_as_id(path: Path) -> None:
    journey = parse(path.read_bytes(), str(path), expected_id=path.stem)
    assert journey.id == path.stem
    assert journey.enabled is True
    assert journey.name  # every shipped journey has a human name for the dashboard
    assert len({s.id for s in journey.steps}) == len(journey.steps)


def test_welcome_runs_once_ends_on_an_order_and_steps_at_0_2d_5d() -> None:
    welcome = shipped("welcome")
    assert welcome.trigger.event == "Signed Up"
    assert welcome.re_entry == "once"
    assert welcome.exit_on == ["Order Completed"]
    assert [(s.id, s.after) for s in welcome.steps] == [
        ("welcome", 0),
        ("brand-story", 2 * DAY),
        ("best-sellers", 5 * DAY),
    ]
    assert welcome.entry.has_ordered is False
    assert welcome.entry.consent == ["email"]
    assert welcome.steps[0].offer is not None and welcome.steps[0].offer.code == "WELCOME10"


def test_browse_abandonment_is_once_per_7_days_two_hours_after_the_last_view() -> None:
    browse = shipped("browse-abandonment")
    assert browse.trigger.event == "Product Viewed"
    assert browse.re_entry == OncePer(once_per_days=7)
    assert browse.exit_on == ["Product Added", "Checkout Started", "Order Completed"]
    [step] = browse.steps
    assert (step.id, step.after, step.from_, step.channels) == (
        "viewed",
        2 * HOUR,
        "activity",
        ["email", "push", "webpush"],
    )


def test_post_purchase_opens_with_a_transactional_step_in_a_marketing_journey() -> None:
    post = shipped("post-purchase")
    assert (post.kind, post.per, post.trigger.event) == ("marketing", "order", "Order Completed")
    assert [(s.id, s.after, post.step_kind(s)) for s in post.steps] == [
        ("confirmation", 0, "transactional"),
        ("review", 7 * DAY, "marketing"),
        ("referral", 14 * DAY, "marketing"),
        ("complementary", 30 * DAY, "marketing"),
    ]


def test_win_back_is_a_daily_at_risk_run_sending_at_10_local() -> None:
    win_back = shipped("win-back")
    assert win_back.trigger.schedule == "at-risk" and win_back.trigger.event is None
    assert [(s.id, s.after, s.at) for s in win_back.steps] == [
        ("reactivate", 0, dtime(10, 0)),
        ("stronger-offer", 14 * DAY, dtime(10, 0)),
    ]
    assert win_back.exit_on == ["Order Completed"]


def test_birthday_and_anniversary_are_scheduled_at_10_local() -> None:
    birthday, anniversary = shipped("birthday"), shipped("order-anniversary")
    assert (birthday.trigger.schedule, birthday.steps[0].at) == ("birthday", dtime(10, 0))
    assert (anniversary.trigger.schedule, anniversary.steps[0].at) == ("anniversary", dtime(10, 0))
    assert anniversary.entry.has_ordered is True


def test_back_in_stock_fans_out_per_product_as_a_requested_message() -> None:
    bis = shipped("back-in-stock")
    assert (bis.per, bis.kind) == ("product", "transactional")
    assert (bis.trigger.event, bis.trigger.fan_out) == ("Back In Stock", "back-in-stock-subscribers")
    assert bis.steps[0].channels == ["push", "webpush", "email", "sms"]


def test_cart_abandonment_yields_to_checkout_abandonment_on_the_same_cart() -> None:
    cart, checkout = shipped("cart-abandonment"), shipped("checkout-abandonment")
    assert (cart.per, checkout.per) == ("cart", "cart")
    assert cart.yields_to == ["checkout-abandonment"] and checkout.yields_to == []
    assert [s.after for s in checkout.steps] == [30 * MINUTE, 24 * HOUR]


def test_the_upload_validator_accepts_the_shipped_welcome_file() -> None:
    assert problems((JOURNEYS / "welcome.yaml").read_text()) == []


# ---------------------------------------------------------------------------------------------
# Broken files: every problem named, with its line


def test_a_typo_in_a_field_name_is_an_unknown_field_on_its_line() -> None:
    assert file_problems(
        """\
        # welcome
        trigger:
          event: Signed Up
        steps:
          - id: welcome
            chanels: [email]
            template: welcome
        """
    ) == [
        (
            6,
            "steps[0].chanels: unknown field (check the spelling; see the README for the journey file format)",
        )
    ]


def test_an_unknown_trigger_event_suggests_the_closest_known_one() -> None:
    [(line, message)] = file_problems(
        """\
        trigger:
          event: Order Complete
        steps:
          - id: a
            template: t
        """
    )
    assert line == 2
    assert message.startswith(
        "trigger.event: unknown event 'Order Complete'; did you mean 'Order Completed'? "
    )
    assert "known events: Back In Stock, " in message


def test_an_unknown_exit_event_is_reported_on_the_exit_on_line() -> None:
    [(line, message)] = file_problems(
        """\
        trigger:
          event: Signed Up
        exit_on: [Order Complet]
        steps:
          - id: a
            template: t
        """
    )
    assert line == 3
    assert message.startswith("exit_on: unknown event 'Order Complet'; did you mean 'Order Completed'?")


def test_a_bad_duration_names_the_step_and_the_accepted_forms() -> None:
    assert file_problems(
        """\
        trigger:
          event: Signed Up
        steps:
          - id: a
            template: t
          - id: b
            after: 2 days
            template: t
        """
    ) == [(7, "steps[1].after: '2 days' is not a duration: use e.g. 30m, 2h, 14d, 1w or seconds")]


def test_a_step_id_that_is_not_a_slug() -> None:
    assert file_problems(
        """\
        trigger:
          event: Signed Up
        steps:
          - id: a
            template: t
          - id: Email_2
            template: t
        """
    ) == [(6, "steps[1].id: use lowercase letters, digits and dashes (e.g. email-1)")]


def test_duplicate_step_ids_are_a_file_level_problem_at_the_first_key() -> None:
    # the check is on the whole journey, so it points at the top of the mapping (after the comment)
    assert file_problems(
        """\
        # two steps with one id
        trigger:
          event: Signed Up
        steps:
          - id: a
            template: t
          - id: a
            after: 1d
            template: t
        """
    ) == [(2, "file: step ids must be distinct (they key the exactly-once send records)")]


@pytest.mark.parametrize(
    ("value", "extra"),
    [
        ("twice", []),
        ("{once_per_days: 0}", ["re_entry.once_per_days: Input should be greater than or equal to 1"]),
        (
            "{once_per_day: 7}",
            [
                "re_entry.once_per_day: unknown field (check the spelling; see the README for the journey file format)",
                "re_entry.once_per_days: Field required",
            ],
        ),
    ],
)
def test_re_entry_must_be_once_every_time_or_once_per_days(value: str, extra: list[str]) -> None:
    found = file_problems(
        f"""\
        trigger:
          event: Signed Up
        re_entry: {value}
        steps:
          - id: a
            template: t
        """
    )
    assert sorted(found) == sorted(
        (3, m) for m in [*extra, "re_entry: use once, every-time, or once_per_days: N"]
    )


def test_a_trigger_with_both_an_event_and_a_schedule() -> None:
    assert file_problems(
        """\
        trigger:
          event: Signed Up
          schedule: birthday
        steps:
          - id: a
            template: t
        """
    ) == [
        (
            2,
            "trigger: give exactly one of trigger.event, trigger.schedule or trigger.broadcast (got event and schedule)",
        )
    ]  # the trigger's body


def test_a_broadcast_names_a_segment_and_a_day() -> None:
    journey = parse(
        textwrap.dedent(
            """\
            name: Black Friday
            trigger:
              broadcast: {segment: champions, day: 2026-11-27}
            steps:
              - id: announce
                at: "10:00"
                template: flash-sale
            """
        ),
        "black-friday.yaml",
    )
    assert journey.trigger.broadcast is not None
    assert (journey.trigger.broadcast.segment, journey.trigger.broadcast.day.isoformat()) == (
        "champions",
        "2026-11-27",
    )
    assert journey.trigger.on_a_day and journey.trigger.event is None
    assert journey.trigger.describe() == "broadcast to segment champions on 2026-11-27"


@pytest.mark.parametrize(
    ("broadcast", "extra", "message"),
    [
        (
            "{segment: champions, day: 27.11.2026}",
            "",
            "trigger.broadcast.day: '27.11.2026' is not a date: use YYYY-MM-DD, e.g. 2026-11-27",
        ),
        (
            "{segment: Champions!, day: 2026-11-27}",
            "",
            "trigger.broadcast.segment: use lowercase letters, digits and dashes",
        ),
        ("{segment: champions}", "", "trigger.broadcast.day: field required"),
        ("{segment: champions, on: 2026-11-27}", "", "trigger.broadcast"),
        (
            "{segment: champions, day: 2026-11-27}",
            "per: cart\n",
            "a broadcast goes to customers: use per: customer",
        ),
        (
            "{segment: champions, day: 2026-11-27}",
            "re_entry: once\n",
            "or broadcast journey runs once per occasion",
        ),
    ],
)
def test_a_broadcast_with_a_mistake_says_what_is_allowed(broadcast: str, extra: str, message: str) -> None:
    found = file_problems(f"{extra}trigger:\n  broadcast: {broadcast}\nsteps:\n  - id: a\n    template: t\n")
    assert any(message.lower() in m.lower() for _, m in found), found


def test_per_cart_with_a_schedule() -> None:
    assert file_problems(
        """\
        per: cart
        trigger:
          schedule: at-risk
        steps:
          - id: a
            template: t
        """
    ) == [(1, "file: per: cart needs an event trigger carrying a cart (e.g. Product Added)")]


def test_a_transactional_journey_cannot_have_a_holdout() -> None:
    assert file_problems(
        """\
        kind: transactional
        holdout: 0.1
        trigger:
          event: Order Completed
        steps:
          - id: a
            template: t
        """
    ) == [(1, "file: transactional messages are owed to the customer: no holdout or variants")]


def test_invalid_yaml_a_tab_used_for_indentation() -> None:
    assert file_problems("trigger:\n\tevent: Signed Up\nsteps:\n  - id: a\n    template: t\n") == [
        (2, "not valid YAML: found character '\\t' that cannot start any token")
    ]


def test_invalid_yaml_a_colon_inside_an_unquoted_value() -> None:
    assert file_problems(
        """\
        trigger:
          event: Signed Up
        steps:
          - id: a
            template: Hi: there
        """
    ) == [(5, "not valid YAML: mapping values are not allowed here")]


def test_an_id_that_does_not_match_the_file_name() -> None:
    assert file_problems(
        """\
        # my welcome
        id: welcom
        trigger:
          event: Signed Up
        steps:
          - id: a
            template: t
        """
    ) == [(2, "id is 'welcom' but the file is named welcome.yaml")]


def test_every_problem_in_a_file_is_reported_sorted_by_line() -> None:
    assert file_problems(
        """\
        trigger:
          event: Signed Up
          where:
            price: {between: 1}
        holdout: 0.9
        steps: []
        """
    ) == [
        (4, "trigger.where: price: unknown operator between (allowed: eq, ne, gt, gte, lt, lte, in, exists)"),
        (5, "holdout: Input should be less than or equal to 0.5"),
        (6, "steps: List should have at least 1 item after validation, not 0"),
    ]


def test_a_file_that_is_not_a_mapping_or_not_text() -> None:
    assert file_problems("- id: a\n") == [(1, "a journey file is a mapping (id:, trigger:, steps: ...)")]
    with pytest.raises(JourneyFileError) as caught:
        parse(b"\xff\xfe", expected_id="welcome")
    assert caught.value.problems == [(None, "not UTF-8 text")]
    with pytest.raises(JourneyFileError) as caught:
        parse(b"#" * (MAX_FILE_BYTES + 1), expected_id="welcome")
    assert caught.value.problems == [(None, f"larger than {MAX_FILE_BYTES} bytes")]


def test_the_error_message_lists_each_problem_with_its_line() -> None:
    with pytest.raises(
        JourneyFileError, match=r"^test\.yaml: line 2: id is 'x' but the file is named y\.yaml$"
    ):
        parse("trigger: {event: Signed Up}\nid: x\n", "test.yaml", expected_id="y")


def test_enabled_false_needs_nothing_else() -> None:
    off = parse("enabled: false\n", expected_id="welcome")
    assert (off.id, off.enabled) == ("welcome", False)


def test_enabled_false_in_a_badly_named_file_is_a_journey_file_error() -> None:
    with pytest.raises(JourneyFileError):
        parse("enabled: false\n", expected_id="My_Journey")


def test_an_unquoted_time_of_day_is_not_silently_misread() -> None:
    text = "trigger:\n  schedule: birthday\nsteps:\n  - id: a\n    template: t\n    at: 10:00\n"
    try:
        journey = parse(text, expected_id="birthday")
    except JourneyFileError:
        return
    assert journey.steps[0].at == dtime(10, 0)


# ---------------------------------------------------------------------------------------------
# matches(): the trigger's event and `where`


def trigger(**where: object) -> Trigger:
    return Trigger(event="Order Completed", where=dict(where))


def test_matches_the_event_name_only() -> None:
    t = trigger()
    assert matches(t, "Order Completed", {})
    assert not matches(t, "Order Cancelled", {})
    assert not matches(t, None, {})
    assert not matches(Trigger(schedule="birthday"), "Order Completed", {})


def test_the_trigger_event_is_stored_canonical() -> None:
    assert Trigger(event="order_completed").event == "Order Completed"


def test_where_equality_is_case_insensitive_and_trimmed_for_text() -> None:
    t = trigger(currency="EUR")
    assert matches(t, "Order Completed", {"currency": "eur "})
    assert not matches(t, "Order Completed", {"currency": "USD"})
    assert not matches(t, "Order Completed", {})


def test_where_a_plain_list_is_any_of() -> None:
    t = trigger(currency=["EUR", "PLN"])
    assert matches(t, "Order Completed", {"currency": "pln"})
    assert not matches(t, "Order Completed", {"currency": "USD"})


@pytest.mark.parametrize(
    ("test", "total", "expected"),
    [
        ({"gt": 50}, 50, False),
        ({"gt": 50}, 50.01, True),
        ({"gte": 50}, 50, True),
        ({"gte": 50}, 49.99, False),
        ({"lt": 50}, 49.99, True),
        ({"lt": 50}, 50, False),
        ({"lte": 50}, 50, True),
        ({"lte": 50}, 50.01, False),
        ({"gte": 50, "lt": 100}, 75, True),  # every operator must hold
        ({"gte": 50, "lt": 100}, 100, False),
        ({"gte": 50}, "60", True),  # numeric text compares as a number
        ({"gte": 50}, "sixty", False),
        ({"gte": 50}, None, False),
        ({"eq": 50}, 50, True),
        ({"ne": 50}, 51, True),
        ({"ne": 50}, 50, False),
    ],
)
def test_where_numeric_operators(test: dict[str, object], total: object, expected: bool) -> None:
    assert matches(trigger(total=test), "Order Completed", {"total": total}) is expected


def test_where_in_and_ne_on_text() -> None:
    t = trigger(category={"in": ["Shoes", "Socks"]}, brand={"ne": "acme"})
    assert matches(t, "Order Completed", {"category": "shoes", "brand": "Zeta"})
    assert not matches(t, "Order Completed", {"category": "hats", "brand": "Zeta"})
    assert not matches(t, "Order Completed", {"category": "socks", "brand": "ACME"})


def test_where_exists() -> None:
    t = trigger(coupon={"exists": True})
    assert matches(t, "Order Completed", {"coupon": "SAVE10"})
    assert not matches(t, "Order Completed", {})
    assert not matches(t, "Order Completed", {"coupon": None})
    absent = trigger(coupon={"exists": False})
    assert matches(absent, "Order Completed", {})
    assert not matches(absent, "Order Completed", {"coupon": "SAVE10"})


def test_where_nested_paths() -> None:
    t = trigger(**{"shipping.country": "PL", "customer.address.city": {"in": ["Warsaw"]}})
    props = {"shipping": {"country": "pl"}, "customer": {"address": {"city": "WARSAW"}}}
    assert matches(t, "Order Completed", props)
    assert not matches(t, "Order Completed", {"shipping": {"country": "DE"}, "customer": props["customer"]})
    assert not matches(t, "Order Completed", {"shipping": "PL", "customer": props["customer"]})


def test_where_a_list_property_matches_when_any_element_does() -> None:
    t = trigger(tags="sale")
    assert matches(t, "Order Completed", {"tags": ["new", "SALE"]})
    assert not matches(t, "Order Completed", {"tags": ["new"]})


def test_where_rejects_unknown_operators_and_an_in_without_a_list() -> None:
    with pytest.raises(ValueError, match="unknown operator between"):
        trigger(total={"between": [1, 2]})
    with pytest.raises(ValueError, match="'in' takes a list"):
        trigger(total={"in": 5})


# ---------------------------------------------------------------------------------------------
# entry_problem(): who may enter


def profile(orders: int = 0, **fields: object) -> Profile:
    p = Profile(store_id="shop-1", customer_id="u:ada", **fields)  # type: ignore[arg-type]
    p.orders.count = orders
    return p


def test_has_ordered() -> None:
    assert entry_problem(Entry(has_ordered=False), profile(0)) is None
    assert entry_problem(Entry(has_ordered=False), None) is None
    assert entry_problem(Entry(has_ordered=False), profile(1)) == "has ordered before"
    assert entry_problem(Entry(has_ordered=True), profile(0)) == "has not ordered yet"
    assert entry_problem(Entry(has_ordered=True), profile(3)) is None


def test_min_and_max_orders_are_inclusive() -> None:
    entry = Entry(min_orders=2, max_orders=4)
    assert entry_problem(entry, profile(1)) == "1 orders, needs at least 2"
    assert entry_problem(entry, profile(2)) is None
    assert entry_problem(entry, profile(4)) is None
    assert entry_problem(entry, profile(5)) == "5 orders, allows at most 4"
    assert entry_problem(entry, None) == "0 orders, needs at least 2"


def test_consent_is_any_of_the_listed_channels_subscribed() -> None:
    entry = Entry(consent=["email", "sms"])
    yes, no = Consent(status="subscribed", at=1.0), Consent(status="unsubscribed", at=1.0)
    pending = Consent(status="pending", at=1.0)
    assert entry_problem(entry, profile(consent={"sms": yes})) is None
    assert entry_problem(entry, profile(consent={"email": no, "sms": yes})) is None
    assert entry_problem(entry, profile(consent={"email": pending})) == "no email or sms consent"
    assert entry_problem(entry, profile(consent={"push": yes})) == "no email or sms consent"
    assert entry_problem(entry, None) == "no email or sms consent"


def test_traits_with_values_lists_and_operators() -> None:
    entry = Entry(traits={"country": ["PL", "DE"], "age": {"gte": 18}, "vip": True})
    ok = {"country": "pl", "age": 30, "vip": True}
    assert entry_problem(entry, profile(traits=ok)) is None
    assert entry_problem(entry, profile(traits={**ok, "country": "FR"})) == "trait country does not match"
    assert entry_problem(entry, profile(traits={**ok, "age": 17})) == "trait age does not match"
    assert entry_problem(entry, profile(traits={**ok, "vip": False})) == "trait vip does not match"
    assert entry_problem(entry, profile(traits={"country": "PL", "vip": True})) == "trait age does not match"
    assert entry_problem(Entry(traits={"newsletter": {"exists": False}}), None) is None


def test_interests_any_is_case_insensitive_and_accepts_a_single_text_trait() -> None:
    entry = Entry(interests_any=["Running", "Yoga"])
    assert entry_problem(entry, profile(traits={"interests": ["cycling", "running"]})) is None
    assert entry_problem(entry, profile(traits={"interests": "YOGA"})) is None
    assert entry_problem(entry, profile(traits={"interests": ["cycling"]})) == "no matching interest"
    assert entry_problem(entry, profile()) == "no matching interest"


def test_loyalty_tiers() -> None:
    entry = Entry(loyalty_tiers=["silver", "gold"])
    gold = profile()
    gold.loyalty.tier = "gold"
    bronze = profile()
    bronze.loyalty.tier = "bronze"
    assert entry_problem(entry, gold) is None
    assert entry_problem(entry, bronze) == "loyalty tier bronze not in silver, gold"
    assert entry_problem(entry, profile()) == "loyalty tier none not in silver, gold"
    assert entry_problem(entry, None) == "loyalty tier none not in silver, gold"


def test_entry_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="extra"):
        Entry.model_validate({"min_order": 1})


# ---------------------------------------------------------------------------------------------
# Experiments: variants by weight, stable buckets, holdout


def step_with(*weights: float) -> Step:
    return Step(
        id="s",
        template="t",
        variants=[Variant(id=f"v{i}", weight=w) for i, w in enumerate(weights)],
    )


def test_a_step_without_variants_has_no_arm() -> None:
    assert Step(id="s", template="t").variant(0.3) is None


@pytest.mark.parametrize(
    ("b", "arm"),
    [(0.0, "v0"), (0.2499, "v0"), (0.25, "v1"), (0.4999, "v1"), (0.5, "v2"), (0.9999, "v2")],
)
def test_variant_by_weight_boundaries(b: float, arm: str) -> None:
    # weights 1:1:2 -> [0, .25) [.25, .5) [.5, 1)
    chosen = step_with(1, 1, 2).variant(b)
    assert chosen is not None and chosen.id == arm


def test_variant_weights_need_not_sum_to_one() -> None:
    s = step_with(30, 70)
    assert [s.variant(b).id for b in (0.29, 0.3, 0.99)] == ["v0", "v1", "v1"]  # type: ignore[union-attr]


def test_variant_ids_must_be_distinct_and_weights_positive() -> None:
    with pytest.raises(ValueError, match="variant ids must be distinct"):
        Step(id="s", template="t", variants=[Variant(id="a", weight=1), Variant(id="a", weight=1)])
    with pytest.raises(ValueError, match="greater than 0"):
        Variant(id="a", weight=0)


def test_bucket_is_the_documented_hash_stable_and_in_0_1() -> None:
    expected = int(hashlib.sha256(b"variant|welcome|u:ada").hexdigest()[:13], 16) / 16**13
    assert bucket("welcome", "u:ada") == expected
    assert bucket("welcome", "u:ada") == bucket("welcome", "u:ada")
    values = [bucket("welcome", f"u:{i}") for i in range(2000)]
    assert all(0 <= v < 1 for v in values)


CUSTOMERS = [f"u:customer-{i}" for i in range(10_000)]


def test_a_50_50_split_over_10000_customers_is_within_2_points() -> None:
    s = step_with(1, 1)
    share = sum(s.variant(bucket("welcome", c)).id == "v0" for c in CUSTOMERS) / len(CUSTOMERS)  # type: ignore[union-attr]
    assert abs(share - 0.5) <= 0.02


def test_a_10_percent_holdout_over_10000_customers_is_within_2_points() -> None:
    journey = shipped("welcome").model_copy(update={"holdout": 0.1})
    share = sum(in_holdout(journey, c) for c in CUSTOMERS) / len(CUSTOMERS)
    assert abs(share - 0.1) <= 0.02


def test_no_holdout_means_nobody_is_held_out() -> None:
    journey = shipped("welcome")
    assert journey.holdout == 0
    assert not any(in_holdout(journey, c) for c in CUSTOMERS[:1000])


def test_different_journeys_give_independent_buckets() -> None:
    a = [bucket("welcome", c) < 0.5 for c in CUSTOMERS]
    b = [bucket("browse-abandonment", c) < 0.5 for c in CUSTOMERS]
    both = sum(x and y for x, y in zip(a, b, strict=True)) / len(CUSTOMERS)
    assert abs(both - 0.25) <= 0.02  # independent halves overlap on a quarter
    assert a != b


def test_the_holdout_is_independent_of_the_variant_bucket() -> None:
    journey = shipped("welcome").model_copy(update={"holdout": 0.5})
    held = [in_holdout(journey, c) for c in CUSTOMERS]
    first_half = [bucket("welcome", c) < 0.5 for c in CUSTOMERS]
    both = sum(x and y for x, y in zip(held, first_half, strict=True)) / len(CUSTOMERS)
    assert abs(both - 0.25) <= 0.02


# ---------------------------------------------------------------------------------------------
# due_at(): when a step is due


def situation(started_at: float, tz: ZoneInfo = UTC_TZ, **fields: object) -> Situation:
    return Situation(now=started_at, started_at=started_at, tz=tz, **fields)  # type: ignore[arg-type]


def test_due_from_the_trigger() -> None:
    step = Step(id="s", template="t", after="2d")
    assert due_at(step, situation(1_000.0)) == 1_000.0 + 2 * DAY


def test_due_from_the_last_activity_when_known() -> None:
    step = shipped("browse-abandonment").steps[0]
    started = 1_790_000_000.0
    assert due_at(step, situation(started, activity_at=started + 900)) == started + 900 + 2 * HOUR
    assert due_at(step, situation(started)) == started + 2 * HOUR  # no activity known: the trigger


def test_from_activity_is_ignored_for_a_step_timed_from_the_trigger() -> None:
    step = Step(id="s", template="t", after="1h")
    assert due_at(step, situation(5_000.0, activity_at=9_000.0)) == 5_000.0 + HOUR


def test_the_after_override_of_a_variant() -> None:
    step = Step(id="s", template="t", after="1d")
    assert due_at(step, situation(0.0), after=3 * HOUR) == 3 * HOUR


def at_10(after: str | int = 0) -> Step:
    return Step.model_validate({"id": "s", "template": "t", "after": after, "at": "10:00"})


def test_at_10_in_warsaw_in_winter_is_09_utc_the_same_day_when_still_ahead() -> None:
    started = ts(2026, 1, 15, 6, 0)  # 07:00 CET
    assert due_at(at_10(), situation(started, WARSAW)) == ts(2026, 1, 15, 9, 0)
    assert ts(2026, 1, 15, 9, 0) == ts(2026, 1, 15, 10, 0, tz=WARSAW)


def test_at_10_already_past_today_is_tomorrow() -> None:
    started = ts(2026, 1, 15, 12, 0)  # 13:00 CET
    assert due_at(at_10(), situation(started, WARSAW)) == ts(2026, 1, 16, 9, 0)


def test_exactly_10_local_is_due_now() -> None:
    started = ts(2026, 1, 15, 9, 0)  # 10:00 CET
    assert due_at(at_10(), situation(started, WARSAW)) == started


def test_at_10_in_warsaw_across_the_spring_dst_change() -> None:
    # Saturday 2026-03-28 is CET (UTC+1); on Sunday 2026-03-29 02:00 clocks go to CEST (UTC+2)
    saturday_noon = ts(2026, 3, 28, 11, 0)  # 12:00 CET, past 10:00: Sunday 10:00 CEST
    assert due_at(at_10(), situation(saturday_noon, WARSAW)) == ts(2026, 3, 29, 8, 0)
    assert ts(2026, 3, 29, 8, 0) == ts(2026, 3, 29, 10, 0, tz=WARSAW)
    saturday_early = ts(2026, 3, 28, 5, 0)  # 06:00 CET: Saturday 10:00 CET
    assert due_at(at_10(), situation(saturday_early, WARSAW)) == ts(2026, 3, 28, 9, 0)


def test_at_10_after_days_across_the_spring_dst_change() -> None:
    # from local midnight (the occasion's start), 14 days later at 10:00: CEST by then
    midnight = ts(2026, 3, 20, 0, 0, tz=WARSAW)
    assert midnight == ts(2026, 3, 19, 23, 0)
    stronger = shipped("win-back").steps[1]
    assert due_at(stronger, situation(midnight, WARSAW)) == ts(2026, 4, 3, 8, 0)
    assert due_at(shipped("win-back").steps[0], situation(midnight, WARSAW)) == ts(2026, 3, 20, 9, 0)


def test_at_10_in_warsaw_across_the_autumn_dst_change() -> None:
    # on Sunday 2026-10-25 03:00 CEST clocks go back to 02:00 CET (UTC+1)
    saturday_noon = ts(2026, 10, 24, 10, 0)  # 12:00 CEST
    assert due_at(at_10(), situation(saturday_noon, WARSAW)) == ts(2026, 10, 25, 9, 0)
    midnight = ts(2026, 10, 18, 0, 0, tz=WARSAW)  # CEST: 2026-10-17 22:00 UTC
    assert midnight == ts(2026, 10, 17, 22, 0)
    # + 7 days of seconds is 00:00 CEST on the 25th; 10:00 that day is already CET
    assert due_at(at_10("7d"), situation(midnight, WARSAW)) == ts(2026, 10, 25, 9, 0)


def test_at_10_in_los_angeles_across_its_dst_change() -> None:
    # PST (UTC-8) until Sunday 2026-03-08 02:00, then PDT (UTC-7)
    saturday_night = ts(2026, 3, 7, 20, 0, tz=LOS_ANGELES)
    assert saturday_night == ts(2026, 3, 8, 4, 0)
    assert due_at(at_10(), situation(saturday_night, LOS_ANGELES)) == ts(2026, 3, 8, 17, 0)
    friday_night = ts(2026, 3, 7, 4, 0)  # Friday 20:00 PST
    assert due_at(at_10(), situation(friday_night, LOS_ANGELES)) == ts(2026, 3, 7, 18, 0)


def test_a_wall_time_skipped_by_dst_resolves_forwards() -> None:
    step = Step.model_validate({"id": "s", "template": "t", "at": "02:30"})
    saturday = ts(2026, 3, 28, 12, 0)
    # 02:30 does not exist in Warsaw on 2026-03-29: read with the CET offset, it is 03:30 CEST
    assert due_at(step, situation(saturday, WARSAW)) == ts(2026, 3, 29, 1, 30)
    assert datetime.fromtimestamp(ts(2026, 3, 29, 1, 30), tz=WARSAW).hour == 3


def test_an_ambiguous_wall_time_is_its_first_occurrence() -> None:
    step = Step.model_validate({"id": "s", "template": "t", "at": "02:30"})
    saturday = ts(2026, 10, 24, 12, 0)
    assert due_at(step, situation(saturday, WARSAW)) == ts(2026, 10, 25, 0, 30)  # 02:30 CEST


# ---------------------------------------------------------------------------------------------
# decide(): exit, wait or send


T0 = ts(2026, 5, 4, 12, 0)


def welcome_situation(now: float, **fields: object) -> Situation:
    return Situation(now=now, started_at=T0, tz=WARSAW, profile=profile(), **fields)  # type: ignore[arg-type]


def test_yielding_to_another_journey_exits_first() -> None:
    s = welcome_situation(T0 + 10 * DAY, yielded_to="checkout-abandonment")
    assert decide(shipped("welcome"), 0, s) == Decision("exit", "checkout-abandonment took over")


def test_a_cancelled_order_ends_a_per_order_journey() -> None:
    post = shipped("post-purchase")
    assert decide(post, 1, welcome_situation(T0 + 8 * DAY, order_status="cancelled")) == Decision(
        "exit", "order cancelled"
    )
    assert decide(post, 1, welcome_situation(T0 + 8 * DAY, order_status="completed")) == Decision(
        "send", "review due"
    )


def test_a_cancelled_status_means_nothing_to_a_per_customer_journey() -> None:
    s = welcome_situation(T0, order_status="cancelled")
    assert decide(shipped("welcome"), 0, s) == Decision("send", "welcome due")


def test_an_exit_event_after_the_start_ends_the_journey() -> None:
    p = profile(last_event_at={"Order Completed": T0 + 1})
    s = Situation(now=T0 + 3 * DAY, started_at=T0, tz=WARSAW, profile=p)
    assert decide(shipped("welcome"), 1, s) == Decision("exit", "Order Completed after the journey started")


@pytest.mark.parametrize("seen_at", [T0, T0 - 1, T0 - 30 * DAY])
def test_an_exit_event_at_or_before_the_start_does_not(seen_at: float) -> None:
    p = profile(last_event_at={"Order Completed": seen_at})
    s = Situation(now=T0 + 3 * DAY, started_at=T0, tz=WARSAW, profile=p)
    assert decide(shipped("welcome"), 1, s) == Decision("send", "brand-story due")


def test_an_event_not_listed_in_exit_on_does_not_end_it() -> None:
    p = profile(last_event_at={"Product Added": T0 + 1})
    s = Situation(now=T0 + 3 * DAY, started_at=T0, tz=WARSAW, profile=p)
    assert decide(shipped("welcome"), 1, s).action == "send"


@pytest.mark.parametrize(("early", "wait"), [(0.2, 1), (1.0, 1), (100.5, 101), (2 * DAY, 2 * DAY)])
def test_waiting_rounds_up_to_whole_seconds(early: float, wait: int) -> None:
    due = T0 + 2 * DAY
    decision = decide(shipped("welcome"), 1, welcome_situation(due - early))
    assert decision == Decision("wait", "waiting for brand-story", wait)
    assert decision.wait_seconds == max(1, math.ceil(early))


@pytest.mark.parametrize("late", [0, 1, 10 * DAY])
def test_sends_once_due(late: float) -> None:
    assert decide(shipped("welcome"), 2, welcome_situation(T0 + 5 * DAY + late)) == Decision(
        "send", "best-sellers due"
    )


def test_a_variant_delay_moves_the_due_time() -> None:
    s = welcome_situation(T0 + 2 * DAY, variant_after=3 * DAY)
    assert decide(shipped("welcome"), 1, s) == Decision("wait", "waiting for brand-story", DAY)


def test_after_the_last_step_the_journey_is_done() -> None:
    assert decide(shipped("welcome"), 3, welcome_situation(T0 + 30 * DAY)) == Decision(
        "exit", "all steps done"
    )


def test_waiting_from_activity_restarts_with_newer_activity() -> None:
    browse = shipped("browse-abandonment")
    s = Situation(now=T0 + 2 * HOUR, started_at=T0, tz=WARSAW, profile=profile(), activity_at=T0 + HOUR)
    assert decide(browse, 0, s) == Decision("wait", "waiting for viewed", HOUR)
