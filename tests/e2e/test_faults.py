"""Faults end to end on `boomerang local` (infra/local/faults.py through POST /_local/faults), one
emulator of our own at x3600:

- a step killed between its claim and the send: exactly one message (the claim's lease);
- SES's daily quota used up in the middle of a burst of sends: the rest go once the rolling day
  has room again, none twice (parked steps, shared/services/journeys/deliver.py);
- 20% of DynamoDB, SES and SNS calls throttled and every batch posted 3 times: every due message
  sent exactly once, every skip recorded once with its reason.

The burst is six cart-abandonment journeys whose first email (1 h after the cart) falls due
together, standing in for a broadcast (same step λ, same send path, no day to wait for).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from shared.platform import clock
from tests.e2e.conftest import Local, start_local, stop_local

pytestmark = pytest.mark.e2e

HOUR = 3600
DAY = 24 * HOUR
SPEED = 3600
RUN = uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def local() -> Iterator[Local]:
    proc, server = start_local("--speed", str(SPEED))
    try:
        yield server
    finally:
        stop_local(proc)


def who(name: str) -> str:
    return f"{name}-{RUN}"


def identify(user: str, consent: bool = True) -> dict[str, Any]:
    traits: dict[str, Any] = {"email": f"{user}@example.com", "first_name": user.split("-")[0].title()}
    if consent:
        traits |= {"consent": {"email": "subscribed"}, "consent_source": "e2e"}
    return {"type": "identify", "userId": user, "messageId": f"id-{user}", "traits": traits}


def cart(user: str) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Product Added",
        "userId": user,
        "messageId": f"add-{user}",
        "properties": {
            "cart_id": f"cart-{user}",
            "product_id": "p-1",
            "name": "Lamp",
            "price": 40,
            "currency": "EUR",
        },
    }


def faults(local: Local, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = local.request("POST", "/_local/faults", body)
    assert status == 200, answer
    return dict(answer["faults"])


def post(local: Local, calls: list[dict[str, Any]], times: int = 1) -> None:
    """Post the batch `times` times, each until accepted (a 503 is safe to send again, as the README says)."""
    for _ in range(times):
        for _attempt in range(40):
            status, body = local.post("/v1/batch", {"batch": calls})
            if status == 200:
                assert body == {"success": True, "accepted": len(calls)}
                break
            assert status in (500, 502, 503), (status, body)
            time.sleep(0.2)
        else:
            raise AssertionError("the batch was never accepted")


def get(local: Local, path: str) -> Any:
    for _ in range(20):  # the emulator's own debug routes read through the throttled DynamoDB too
        status, body = local.request("GET", path)
        if status == 200:
            return body
        time.sleep(0.2)
    raise AssertionError(f"{path} kept failing")


def first_emails(local: Local, users: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each customer's cart-abandonment email-1s."""
    out: dict[str, list[dict[str, Any]]] = {u: [] for u in users}
    for m in get(local, "/_local/outbox")["messages"]:
        user = str(m.get("customer_id") or "").removeprefix("u:")
        if user in out and m["journey"] == "cart-abandonment" and m["step"] == "email-1":
            out[user].append(m)
    return out


def has_cart(local: Local, user: str) -> bool:
    status, profile = local.request("GET", f"/_local/profile?store=demo&customer=u:{user}")
    return status == 200 and profile.get("open_cart_id") == f"cart-{user}"


def history(local: Local, user: str) -> list[dict[str, Any]]:
    return list(get(local, f"/_local/history?store=demo&customer=u:{user}")["history"])


def now(local: Local) -> float:
    return clock.parse_iso(get(local, "/_local/health")["now"])


def settle(local: Local, hours: float) -> None:
    """Let `hours` of Boomerang time pass (a retry or a duplicate would have shown by then)."""
    until = now(local) + hours * HOUR
    local.wait_for(lambda: now(local) >= until, hours * HOUR / SPEED + 30, f"{hours} h to pass")


def test_ses_quota_used_up_mid_burst_sends_the_rest_after_the_rolling_day(local: Local) -> None:
    # Given SES takes 3 more emails in the rolling 24 h
    sent_before = faults(local, {})["ses_quota"]["sent_24h"]
    faults(local, {"ses_quota": {"max_24h": sent_before + 3}})
    users = [who(f"quota{i}") for i in range(6)]
    try:
        # When six carts' first reminders fall due together
        # (the profiles first: until branch emu scales the cart journey's 6 h settle window, a fold
        # slower than 6 real seconds on a loaded machine ends a journey with "cart not found")
        post(local, [identify(u) for u in users])
        for user in users:
            local.wait_for(
                lambda u=user: local.request("GET", f"/_local/profile?store=demo&customer=u:{u}")[0] == 200,
                30,
                user,
            )
        for user in users:
            post(local, [cart(user)])
        try:
            got = local.wait_for(
                lambda: (f := first_emails(local, users)) and all(f.values()) and f,
                3 * DAY / SPEED + 120,
                "every first reminder, the last after SES's day rolled over",
            )
        except AssertionError as exc:  # say what did happen
            counts = {u: len(m) for u, m in first_emails(local, users).items()}
            raise AssertionError(
                f"{exc}: {counts}, {faults(local, {})}, now {clock.iso(now(local))}"
            ) from None
    finally:
        state = faults(local, {"ses_quota": {"max_24h": None}})
    # Then SES refused some, they were parked, and they went once the day had room
    assert state["injected"]["quota"] >= 3
    assert all(len(m) == 1 for m in got.values()), {u: len(m) for u, m in got.items()}
    times = sorted(clock.parse_iso(m[0]["sent_at"]) for m in got.values())
    assert times[3] - times[0] >= DAY - HOUR, [clock.iso(t) for t in times]  # the rest after the reset
    settle(local, 2)
    assert all(len(m) == 1 for m in first_emails(local, users).values())  # and none twice


def test_a_step_killed_between_claim_and_send_sends_exactly_one_message(local: Local) -> None:
    # Given the next journey step dies after claiming its send, before handing it to SES
    faults(local, {"kill_after_claim": 1})
    user = who("killed")
    post(local, [identify(user), cart(user)])
    # When Step Functions retries it, the lease lets the retry take the claim over
    got = local.wait_for(lambda: (f := first_emails(local, [user])) and f[user] and f, 60, "the reminder")
    settle(local, 2)
    assert faults(local, {})["injected"]["killed"] == 1
    # Then exactly one message
    assert len(first_emails(local, [user])[user]) == 1, got


def _throttled_replays(local: Local, tag: str, throttle_first: bool) -> None:
    consenting = [who(f"{tag}{i}") for i in range(6)]
    silent = [who(f"{tag}none{i}") for i in range(2)]  # no consent: their step is skipped, with the reason
    batches = [[identify(u, consent=u in consenting), cart(u)] for u in consenting + silent]
    throttle = {"throttle": {"rate": 0.2, "services": ["dynamodb", "sesv2", "sns"]}}
    if not throttle_first:
        # the first delivery of each batch is stored before the faults start; the replays meet them
        for batch in batches:
            post(local, batch)
        for user in consenting + silent:
            local.wait_for(lambda u=user: has_cart(local, u), 30, f"{user}'s cart")
    faults(local, throttle)
    try:
        for batch in batches:
            post(local, batch, times=3 if throttle_first else 2)
        local.wait_for(
            lambda: (f := first_emails(local, consenting)) and all(f.values()),
            120,
            "every consenting customer's first reminder",
        )
        settle(local, 3)  # room for a duplicate to show up
        throttled = faults(local, {})["injected"]["throttled"]
    finally:
        faults(local, {"throttle": {"rate": 0}})
    assert throttled > 20  # the faults really happened
    # Every due message sent exactly once
    got = first_emails(local, consenting + silent)
    assert {u: len(got[u]) for u in consenting} == dict.fromkeys(consenting, 1)
    assert all(got[u] == [] for u in silent)
    # Every skip once, with its reason; a step is sent or skipped, never both, never twice
    for user in consenting + silent:
        lines = [h for h in history(local, user) if h["journey"] == "cart-abandonment"]
        outcomes = Counter((h.get("step_id"), h["type"]) for h in lines if h["type"] in ("sent", "skipped"))
        assert all(n == 1 for n in outcomes.values()), (user, outcomes)
        assert all(h.get("reason") for h in lines if h["type"] in ("skipped", "exited")), lines
        if user in silent:
            assert not any(t == "sent" for _, t in outcomes), lines
            assert lines, f"{user}: no history at all"


def test_under_20_percent_throttling_replays_3x_send_every_due_message_once(local: Local) -> None:
    # the batches' first delivery is stored, then DynamoDB, SES and SNS throttle 20% of calls while
    # both replays of every batch and all the sends happen
    _throttled_replays(local, "rep", throttle_first=False)


def test_under_20_percent_throttling_from_the_first_delivery_everything_happens_once(local: Local) -> None:
    _throttled_replays(local, "thr", throttle_first=True)
