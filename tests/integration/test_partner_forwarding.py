"""Forwarding to fulfilment partners on moto, with the partner's HTTP answers scripted: 24 hours of
retries then the DLQ, a refusal, a cancel that stops a retrying create, duplicate tasks, a missing
secret, a templated body. (The loopback HTTP side is in tests/e2e/test_partners.py.)"""

from __future__ import annotations

import json
from typing import Any

import boto3

from shared.adapters.fulfilment_store import FulfilmentStore
from shared.adapters.partner_catalog import PartnerCatalog
from shared.adapters.partner_http import Answer, PartnerSecrets
from shared.domain.partners import RETRY_FOR_SECONDS
from shared.services.partners.forwarding import ForwardDeps, handle_message
from tests.aws_fixtures import REGION, FixedClock, World

PARTNER = """match: {sku_prefixes: [ACME-]}
endpoint: {orders: "https://acme.example/orders", cancels: "https://acme.example/orders/{order_id}/cancel"}
auth: {type: api_key}
"""


class Harness:
    def __init__(self, world: World, answers: list[int | None], partner: str = PARTNER) -> None:
        s3 = boto3.client("s3", region_name=REGION)
        s3.put_object(
            Bucket=world.bucket, Key=f"partners/{world.store.store_id}/acme.yaml", Body=partner.encode()
        )
        self.sm = boto3.client("secretsmanager", region_name=REGION)
        self.answers = answers
        self.sent: list[tuple[str, dict[str, str], bytes]] = []
        self.tasks: list[dict[str, Any]] = []
        self.dead: list[dict[str, Any]] = []
        self.store = FulfilmentStore(boto3.client("dynamodb", region_name=REGION), world.table)
        self.deps = ForwardDeps(
            catalog=PartnerCatalog(s3, world.bucket, 0),
            store=self.store,
            secrets=PartnerSecrets(self.sm, ttl_seconds=0),
            post=self.post,
            send_task=lambda task, delay: self.tasks.append(task),
            dead_letter=self.dead.append,
            render=lambda source, variables: __import__("jinja2").Template(source).render(variables),
        )
        self.store_id = world.store.store_id

    def set_secret(self) -> None:
        self.sm.create_secret(
            Name=f"boomerang/partners/{self.store_id}/acme",
            SecretString=json.dumps({"api_key": "k", "signing_secret": "s"}),
        )

    def post(self, url: str, headers: dict[str, str], body: bytes, timeout: float) -> Answer:
        self.sent.append((url, headers, body))
        status = self.answers.pop(0) if self.answers else 200
        return Answer(status, '{"id": "A-1"}' if status == 200 else "busy", None, 5)

    def event(self, name: str, order: str = "o-1") -> dict[str, Any]:
        return {
            "detail": {
                "store_id": self.store_id,
                "event": name,
                "user_id": "ada",
                "received_at": 1_790_000_000.0,
                "properties": {"order_id": order, "products": [{"sku": "ACME-1"}, {"sku": "OWN-1"}]},
            }
        }

    def run_tasks(self, clock: FixedClock) -> None:
        while self.tasks:
            task = self.tasks.pop(0)
            clock.now = max(clock.now, task["not_before"])
            handle_message(task, self.deps)

    def record(self, action: str = "create") -> dict[str, Any]:
        found = self.store.get(self.store_id, "o-1", "acme", action)
        assert found is not None
        return found


def test_a_partner_down_for_24_hours_is_retried_then_dead_lettered(
    world: World, fixed_clock: FixedClock
) -> None:
    h = Harness(world, [503] * 1000)
    h.set_secret()
    start = fixed_clock.now
    handle_message(h.event("Order Completed"), h.deps)
    h.run_tasks(fixed_clock)

    record = h.record()
    assert record["status"] == "failed" and len(h.dead) == 1
    assert len(record["attempts"]) == len(h.sent) > 10
    assert all(a["status_code"] == 503 and a["outcome"] == "retry" for a in record["attempts"])
    assert fixed_clock.now - start <= RETRY_FOR_SECONDS
    assert len({headers["Idempotency-Key"] for _, headers, _ in h.sent}) == 1

    # a refusal (4xx) is not retried: straight to the DLQ
    h2 = Harness(world, [422])
    handle_message(h2.event("Order Completed", "o-2"), h2.deps)
    refused = h2.store.get(h2.store_id, "o-2", "acme", "create")
    assert refused is not None and refused["status"] == "rejected" and h2.tasks == [] and len(h2.dead) == 1


def test_a_replay_and_a_duplicate_task_send_nothing_twice(world: World, fixed_clock: FixedClock) -> None:
    h = Harness(world, [503, 200])
    h.set_secret()
    handle_message(h.event("Order Completed"), h.deps)
    handle_message(h.event("Order Completed"), h.deps)  # the replayed order event
    assert len(h.sent) == 1 and len(h.tasks) == 1
    h.tasks.append(dict(h.tasks[0]))  # SQS delivers the retry task twice
    h.run_tasks(fixed_clock)
    assert len(h.sent) == 2 and h.record()["status"] == "accepted"
    assert h.record()["partner_reference"] == "A-1"
    assert [json.loads(b)["items"] for _, _, b in h.sent][0] == [{"sku": "ACME-1", "quantity": 1}]


def test_a_cancel_stops_a_retrying_create_and_cancels_an_accepted_one(
    world: World, fixed_clock: FixedClock
) -> None:
    h = Harness(world, [503])
    h.set_secret()
    handle_message(h.event("Order Completed"), h.deps)
    handle_message(h.event("Order Cancelled"), h.deps)
    h.run_tasks(fixed_clock)
    assert h.record()["status"] == "cancelled" and len(h.sent) == 1  # never reached: nothing to cancel

    h2 = Harness(world, [200, 200])
    handle_message(h2.event("Order Completed", "o-2"), h2.deps)
    handle_message(h2.event("Order Refunded", "o-2"), h2.deps)
    assert [url for url, _, _ in h2.sent] == [
        "https://acme.example/orders",
        "https://acme.example/orders/o-2/cancel",
    ]
    assert json.loads(h2.sent[1][2])["action"] == "cancel"


def test_a_missing_secret_is_retried_with_the_reason_recorded(world: World, fixed_clock: FixedClock) -> None:
    h = Harness(world, [])
    handle_message(h.event("Order Completed"), h.deps)
    record = h.record()
    assert record["status"] == "retrying" and h.sent == []
    assert "is not set" in record["attempts"][0]["error"]
    h.set_secret()
    h.run_tasks(fixed_clock)
    assert h.record()["status"] == "accepted"


def test_a_templated_body_and_shipping_updates_on_the_record(world: World, fixed_clock: FixedClock) -> None:
    template = (
        PARTNER
        + 'payload: template\ntemplate: |\n  {"ref": {{ order.order_id | tojson }}, "n": {{ order["items"] | length }}}\n'
    )
    h = Harness(world, [200], template)
    h.set_secret()
    handle_message(h.event("Order Completed"), h.deps)
    assert json.loads(h.sent[0][2]) == {"ref": "o-1", "n": 1}
    assert h.sent[0][1]["X-Api-Key"] == "k" and h.sent[0][1]["X-Boomerang-Signature"].startswith("v1=")
    for name in ("Order Shipped", "Order Delivered"):
        update = h.event(name)
        update["detail"]["properties"] |= {
            "partner_id": "acme",
            "carrier": "DHL",
            "tracking_url": "https://t/1",
        }
        handle_message(update, h.deps)
        record = h.record()
        assert record["shipped_at"] and record["carrier"] == "DHL"
        assert bool(record.get("delivered_at")) == (name == "Order Delivered")


def test_a_partner_rate_limit_holds_attempts_over_it_for_the_next_window(
    world: World, fixed_clock: FixedClock
) -> None:
    # Given a partner that takes 2 requests a second, and 5 orders arriving within the same second
    h = Harness(world, [], PARTNER + "rate_limit_per_second: 2\n")
    h.set_secret()
    wall = [1_790_000_000.25]
    h.deps.wall_clock = lambda: wall[0]
    delays: list[int] = []
    h.deps.send_task = lambda task, delay: (h.tasks.append(task), delays.append(delay))  # type: ignore[func-returns-value]
    outcomes = [handle_message(h.event("Order Completed", f"o-{i}"), h.deps)[0]["outcome"] for i in range(5)]
    # Then 2 are sent and 3 wait for the next second, claimed by nobody yet
    assert outcomes == ["accepted", "accepted", "throttled", "throttled", "throttled"]
    assert len(h.sent) == 2 and delays == [1, 1, 1]
    held = h.store.get(h.store_id, "o-2", "acme", "create")
    assert held is not None and held["status"] == "pending" and held["attempt"] == 0
    # a second on: 2 more go, the last waits again; then it goes too, each once
    wall[0] += 1
    tasks, h.tasks = h.tasks, []
    assert [handle_message(t, h.deps)[0]["outcome"] for t in tasks] == ["accepted", "accepted", "throttled"]
    wall[0] += 1
    h.tasks.append(dict(h.tasks[0]))  # the requeued task delivered twice: sent once
    assert [handle_message(t, h.deps)[0]["outcome"] for t in h.tasks] == ["accepted", "skipped"]
    assert len(h.sent) == 5 and len({json.loads(b)["order_id"] for _, _, b in h.sent}) == 5
