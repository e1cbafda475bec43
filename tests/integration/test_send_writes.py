"""A send's DynamoDB writes on moto: only what exactly-once, the cap ledger and the history need, and
each guarantee still held without a transaction (shared/adapters/journey_store.py).

The cap place and the send record are two conditional puts (on the ledger's version, on the record's
absence): two journeys never both take a customer's last place, a duplicate attempt gives back a
place it re-added for a step that ended unsent, and the ledger's later edits (the send's real time
and channel, a place given back) are conditional puts that re-read when another send got there first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import botocore.client
import pytest

from shared.adapters.journey_store import CapConflict, JourneyStore
from shared.services import wiring
from tests.aws_fixtures import FixedClock, LambdaContext, World
from tests.integration.test_delivery_policy import HOUR, customer, emails, step

STORE, CUSTOMER = "shop-1", "u:user-42"


def journeys() -> JourneyStore:
    return wiring.step_deps().journeys


def place(send_id: str, at: float, channel: str = "email") -> dict[str, Any]:
    return {"at": at, "channel": channel, "send_id": send_id}


def claim(
    store: JourneyStore, journey: str, send_id: str, entries: list[dict[str, Any]], version: int
) -> str | None:
    return store.claim_send(
        STORE,
        journey,
        "i-1",
        "email-1",
        {"customer_id": CUSTOMER, "at": 1.0},
        cap=(CUSTOMER, entries, version),
        send_id=send_id,
    )


@pytest.fixture
def calls(world: World) -> Iterator[Counter[str]]:
    """Every DynamoDB operation the code makes, counted."""
    seen: Counter[str] = Counter()
    real = botocore.client.BaseClient._make_api_call

    def counted(client: Any, op: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name == "dynamodb":
            seen[op] += 1
        return real(client, op, params)

    botocore.client.BaseClient._make_api_call = counted  # type: ignore[method-assign]
    yield seen
    botocore.client.BaseClient._make_api_call = real  # type: ignore[method-assign]


def test_two_journeys_never_both_take_the_last_place(world: World) -> None:
    store = journeys()
    # Given two journeys that both read the customer's empty ledger (version 0) for their last place
    entries, version = store.cap_ledger(STORE, CUSTOMER)
    assert (entries, version) == ([], 0)
    # When the first claims with its place
    assert claim(store, "journey-a", "send-a", [place("send-a", 1.0)], version) is not None
    # Then the second, deciding on the same read, is told the ledger changed and writes no record
    with pytest.raises(CapConflict):
        claim(store, "journey-b", "send-b", [place("send-b", 1.0)], version)
    assert store.get_send(STORE, "journey-b", "i-1", "email-1") is None
    assert store.cap_ledger(STORE, CUSTOMER) == ([place("send-a", 1.0)], 1)


def test_a_duplicate_attempt_keeps_the_live_holders_place_and_gives_back_an_unsent_ones(world: World) -> None:
    store = journeys()
    # Given an attempt that holds step email-1 with its place
    assert claim(store, "journey-a", "send-a", [place("send-a", 1.0)], 0) is not None
    # When a duplicate of it claims after re-reading the ledger: its place is the holder's (same send id)
    assert claim(store, "journey-a", "send-a", [place("send-a", 2.0)], 1) is None
    # Then the place stays for the holder, which may still send
    assert [e["send_id"] for e in store.cap_ledger(STORE, CUSTOMER)[0]] == ["send-a"]

    # Given the holder then ended without a send (skipped) and gave its place back
    token = store.get_send(STORE, "journey-a", "i-1", "email-1")["claim"]  # type: ignore[index]
    store.finish_send(STORE, "journey-a", "i-1", "email-1", token, {"status": "skipped"})
    store.release_cap(STORE, CUSTOMER, "send-a")
    entries, version = store.cap_ledger(STORE, CUSTOMER)
    assert entries == []
    # When a late duplicate, having read that ledger, writes the place again before finding the record
    assert claim(store, "journey-a", "send-a", [place("send-a", 3.0)], version) is None
    # Then it gives the place back: a step that never sent holds none
    assert store.cap_ledger(STORE, CUSTOMER)[0] == []


def test_ledger_edits_are_one_conditional_put_and_re_read_when_another_send_got_there_first(
    world: World, calls: Counter[str]
) -> None:
    store = journeys()
    assert claim(store, "journey-a", "send-a", [place("send-a", 1.0)], 0) is not None
    written = ([place("send-a", 1.0)], 1)
    # Given another journey took the next place since (version 2)
    assert claim(store, "journey-b", "send-b", [place("send-a", 1.0), place("send-b", 1.5)], 1) is not None
    calls.clear()
    # When the first confirms its send's real time and channel from the ledger its claim wrote (stale)
    store.confirm_cap(STORE, CUSTOMER, "send-a", 4.0, "sms", written)
    # Then its put is refused, it re-reads once and writes the edit on top of the other place
    assert calls == Counter({"PutItem": 2, "GetItem": 1})
    assert store.cap_ledger(STORE, CUSTOMER) == ([place("send-a", 4.0, "sms"), place("send-b", 1.5)], 3)
    # And with the ledger as it wrote it, nothing is read at all; an edit that changes nothing writes nothing
    calls.clear()
    store.confirm_cap(STORE, CUSTOMER, "send-b", 5.0, "email", store.cap_ledger(STORE, CUSTOMER))
    store.confirm_cap(STORE, CUSTOMER, "send-b", 5.0, "email", store.cap_ledger(STORE, CUSTOMER))
    assert calls == Counter({"GetItem": 2, "PutItem": 1})  # the two reads are the test's own
    assert "TransactWriteItems" not in calls


def test_the_end_of_a_run_that_sent_notes_it_in_the_same_write(world: World, calls: Counter[str]) -> None:
    store = journeys()
    store.mark_started(STORE, "cart-abandonment", "cart-1", 0, 1.0)
    store.mark_started(STORE, "other", "cart-0", 0, 1.0)
    store.mark_ended(STORE, "other", "cart-0", 0, "warm")  # reads the store's retention (cached after)
    calls.clear()
    store.mark_ended(STORE, "cart-abandonment", "cart-1", 0, "all steps done", sent=True)
    assert calls == Counter({"UpdateItem": 1})
    state = store.state(STORE, "cart-abandonment", "cart-1") or {}
    assert (state["status"], state["sent_any"]) == ("ended", True)
    # A later generation holds the state record: the end is not this run's to write, the send still is
    store.mark_started(STORE, "checkout", "cart-2", 1, 1.0)
    with pytest.raises(Exception, match="ConditionalCheckFailed"):
        store.mark_ended(STORE, "checkout", "cart-2", 0, "all steps done", sent=True)
    state = store.state(STORE, "checkout", "cart-2") or {}
    assert (state["status"], state["sent_any"]) == ("active", True)


def test_a_marketing_send_writes_only_what_its_rules_need(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, calls: Counter[str]
) -> None:
    # Given a customer due cart email-1 (marketing: consent, cap ledger, history)
    t0 = fixed_clock.now
    customer(world, t0, channels=("email",))
    fixed_clock.advance(HOUR)
    calls.clear()
    out = step(ctx, t0, 0)
    assert out["events"][0]["type"] == "sent" and len(emails()) == 1
    # Then no transaction; puts: entered x2 (instance, customer), the cap place, the send record,
    # sent x2; updates: state (started), hand-off, outcome, sent_any (the run waits for email-2)
    assert "TransactWriteItems" not in calls
    assert (calls["PutItem"], calls["UpdateItem"]) == (6, 4)
    state = journeys().state(STORE, "cart-abandonment", "cart-42") or {}
    assert state.get("sent_any") is True
