"""Journey instance records: the send records that make each step exactly-once, and the log."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from shared.adapters.store_directory import StoreDirectory
from shared.platform import clock, keys
from shared.platform.aws import from_item, key, to_item

LOG_TTL_S = 400 * 24 * 3600  # message history without store settings (DataRetention's default)


CAP_SK = "CAP"
UNSENT = ("skipped", "failed")  # a send record's outcomes that hold no cap place


class CapConflict(Exception):
    """Another send to the same customer changed the cap ledger first; re-read and decide again."""


class JourneyStore:
    def __init__(self, ddb: Any, table: str) -> None:
        self.ddb = ddb
        self.table = table
        self._stores: StoreDirectory | None = None

    def _history_ttl_s(self, store: str) -> int:
        """How long the store keeps message history (Store.data_retention; cached settings)."""
        if self._stores is None:
            self._stores = StoreDirectory(self.ddb, self.table)
        settings = self._stores.get(store)
        return settings.data_retention.message_history_days * 86400 if settings else LOG_TTL_S

    def _history_expiry(self, store: str, at: float) -> int:
        """The TTL (`expires_at`) of message history written at `at`: history lines, send records and
        an ended journey's state all go after the store's message_history_days."""
        return int(at) + self._history_ttl_s(store)

    def claim_send(
        self,
        store: str,
        journey: str,
        instance: str,
        step_id: str,
        record: dict[str, Any],
        cap: tuple[str, list[dict[str, Any]], int] | None = None,
        token: str | None = None,
        replaces: str | None = None,
        send_id: str | None = None,
    ) -> str | None:
        """Write the send record before calling a provider. Returns a claim token, or None if the step
        was already handled (sent, skipped or in flight): the caller then never sends again.

        With `cap` = (customer id, new ledger entries, version read), the customer's frequency-cap
        ledger is written first, conditional on the version read, so two journeys cannot both take
        the last place (the later one gets CapConflict, re-reads and decides again); then the record.
        Two conditional puts of one item each are that guarantee at half a transaction's WRU. A λ
        that dies between them leaves a place under this step's `send_id` and no record: its retry
        finds no record, and takes the same place again (claim.py filters it by send id).
        With `replaces` (the token of a claim whose lease ran out before it reached a provider), that
        claim is taken over instead, only if it is still that claim and still unsent.
        """
        token = token or uuid.uuid4().hex
        item = {
            "pk": keys.journey_pk(store, journey, instance),
            "sk": keys.send_sk(step_id),
            "status": "claimed",
            "claim": token,
            **record,
            # message history (Store.data_retention): a step never runs again that late (its execution
            # moved on, and its name stays taken 90 days after it closed), so the guard can go too
            "expires_at": self._history_expiry(store, clock.now_ts()),
        }
        put: dict[str, Any] = {
            "TableName": self.table,
            "Item": to_item(item),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        if replaces is not None:
            put["ConditionExpression"] = "#claim = :old AND #status = :claimed"
            put["ExpressionAttributeNames"] = {"#claim": "claim", "#status": "status"}
            put["ExpressionAttributeValues"] = {":old": {"S": replaces}, ":claimed": {"S": "claimed"}}
        if cap is not None:
            try:
                self.ddb.put_item(**self._cap_put(store, *cap)["Put"])
            except self.ddb.exceptions.ConditionalCheckFailedException as exc:
                raise CapConflict() from exc
        try:
            self.ddb.put_item(**put)
        except self.ddb.exceptions.ConditionalCheckFailedException:
            if cap is not None and send_id is not None:
                # another attempt of this step holds the record; the place just written is its place
                # (same send id), unless that attempt ended without a send and gave it back meanwhile
                found = self.get_send(store, journey, instance, step_id)
                if found is not None and found.get("status") in UNSENT:
                    self.release_cap(store, cap[0], send_id)
            return None
        return token

    def cap_ledger(self, store: str, customer_id: str) -> tuple[list[dict[str, Any]], int]:
        resp = self.ddb.get_item(
            TableName=self.table, Key=key(keys.customer_pk(store, customer_id), CAP_SK), ConsistentRead=True
        )
        item = from_item(resp["Item"]) if "Item" in resp else {}
        return list(item.get("entries", [])), int(item.get("version", 0))

    def _cap_put(
        self, store: str, customer_id: str, entries: list[dict[str, Any]], version: int
    ) -> dict[str, Any]:
        item = {
            "pk": keys.customer_pk(store, customer_id),
            "sk": CAP_SK,
            "entries": entries,
            "version": version + 1,
        }
        put: dict[str, Any] = {"TableName": self.table, "Item": to_item(item)}
        if version == 0:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "#v = :v"
            put["ExpressionAttributeNames"] = {"#v": "version"}
            put["ExpressionAttributeValues"] = {":v": {"N": str(version)}}
        return {"Put": put}

    def confirm_cap(
        self,
        store: str,
        customer_id: str,
        send_id: str,
        sent_at: float,
        channel: str,
        known: tuple[list[dict[str, Any]], int] | None = None,
    ) -> None:
        """Date the cap place by when, and mark it with the channel on which, the message actually
        left (the claim may be a moment older, and a fallback channel may have sent it). `known`: the
        ledger as this attempt's claim wrote it (entries, version), so it is not read again."""
        self._edit_cap(
            store,
            customer_id,
            lambda es: [
                {**e, "at": sent_at, "channel": channel} if e.get("send_id") == send_id else e for e in es
            ],
            known,
        )

    def release_cap(self, store: str, customer_id: str, send_id: str) -> None:
        """Give back a cap place taken for a message that never went out."""
        self._edit_cap(store, customer_id, lambda es: [e for e in es if e.get("send_id") != send_id])

    def _edit_cap(
        self,
        store: str,
        customer_id: str,
        edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
        known: tuple[list[dict[str, Any]], int] | None = None,
    ) -> None:
        for _ in range(5):  # optimistic: re-read when another send changed the ledger meanwhile
            entries, version = known if known is not None else self.cap_ledger(store, customer_id)
            known = None
            updated = edit(entries)
            if updated == entries:
                return
            # one item: a conditional put on its version is the transaction's guarantee at half the WRU
            try:
                self.ddb.put_item(**self._cap_put(store, customer_id, updated, version)["Put"])
                return
            except self.ddb.exceptions.ConditionalCheckFailedException:
                time.sleep(random.uniform(0, 0.05))
                continue
        raise CapConflict(f"cap ledger of {customer_id} kept changing")

    def finish_send(
        self, store: str, journey: str, instance: str, step_id: str, token: str, fields: dict[str, Any]
    ) -> None:
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        values = {f":v{i}": v for i, v in enumerate(fields.values())}
        sets = ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
        self.ddb.update_item(
            TableName=self.table,
            Key=key(keys.journey_pk(store, journey, instance), keys.send_sk(step_id)),
            UpdateExpression=f"SET {sets}",
            ConditionExpression="#claim = :claim",
            ExpressionAttributeNames={**names, "#claim": "claim"},
            ExpressionAttributeValues={**to_item(values), ":claim": {"S": token}},
        )

    def release_send(self, store: str, journey: str, instance: str, step_id: str, token: str) -> None:
        """The provider refused before accepting the message (e.g. throttled): let a retry send it."""
        self.ddb.delete_item(
            TableName=self.table,
            Key=key(keys.journey_pk(store, journey, instance), keys.send_sk(step_id)),
            ConditionExpression="#claim = :claim",
            ExpressionAttributeNames={"#claim": "claim"},
            ExpressionAttributeValues={":claim": {"S": token}},
        )

    def get_send(self, store: str, journey: str, instance: str, step_id: str) -> dict[str, Any] | None:
        resp = self.ddb.get_item(
            TableName=self.table,
            Key=key(keys.journey_pk(store, journey, instance), keys.send_sk(step_id)),
            ConsistentRead=True,
        )
        return from_item(resp["Item"]) if "Item" in resp else None

    def log(self, store: str, journey: str, instance: str, entry: dict[str, Any]) -> None:
        """Append to the instance's history (entered, waited, sent/skipped and why, exited and why)."""
        now = clock.now_ts()
        item = {
            "pk": keys.journey_pk(store, journey, instance),
            "sk": keys.log_sk(clock.iso(now), uuid.uuid4().hex[:8]),
            "at": now,
            "expires_at": self._history_expiry(store, now),
            **entry,
        }
        self.ddb.put_item(TableName=self.table, Item=to_item(item))

    def history(self, store: str, journey: str, instance: str) -> list[dict[str, Any]]:
        resp = self.ddb.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :log)",
            ExpressionAttributeValues={
                ":pk": {"S": keys.journey_pk(store, journey, instance)},
                ":log": {"S": "LOG#"},
            },
            ConsistentRead=True,
        )
        return [from_item(i) for i in resp.get("Items", [])]

    # --- instance state, entries and the customer's history ---------------------------------------

    def note_started(self, store: str, journey: str, instance: str, generation: int, at: float) -> None:
        """Written by the trigger as soon as the execution starts, so a journey that yields to this
        one (the cart journey to checkout abandonment) sees it before this one's first step."""
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=key(keys.journey_pk(store, journey, instance), STATE_SK),
                UpdateExpression="SET #s = :s, #g = :g, started_at = :at REMOVE expires_at",
                ConditionExpression="attribute_not_exists(#g) OR #g < :g",
                ExpressionAttributeNames={"#s": "status", "#g": "generation"},
                ExpressionAttributeValues={
                    ":s": {"S": "active"},
                    ":g": {"N": str(generation)},
                    ":at": {"N": repr(at)},
                },
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            pass  # already noted (a repeat), or a later generation runs

    def mark_started(self, store: str, journey: str, instance: str, generation: int, at: float) -> bool:
        """The instance's state record; True only the first time (so "entered" is logged once)."""
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=key(keys.journey_pk(store, journey, instance), STATE_SK),
                UpdateExpression="SET #s = :s, #g = :g, started_at = if_not_exists(started_at, :at), entered = :g"
                " REMOVE expires_at",
                ConditionExpression="(attribute_not_exists(#g) OR #g <= :g) AND (attribute_not_exists(entered) OR entered < :g)",
                ExpressionAttributeNames={"#s": "status", "#g": "generation"},
                ExpressionAttributeValues={
                    ":s": {"S": "active"},
                    ":g": {"N": str(generation)},
                    ":at": {"N": repr(at)},
                },
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def note_sent(self, store: str, journey: str, instance: str) -> None:
        """This run has messaged the customer (a journey yielding to it then stays out of the way)."""
        self.ddb.update_item(
            TableName=self.table,
            Key=key(keys.journey_pk(store, journey, instance), STATE_SK),
            UpdateExpression="SET sent_any = :t",
            ExpressionAttributeValues={":t": {"BOOL": True}},
        )

    def mark_ended(
        self, store: str, journey: str, instance: str, generation: int, reason: str, sent: bool = False
    ) -> None:
        """The run ended; `sent`: it messaged the customer in its last invocation, noted in the same
        write (note_sent's flag), or on its own when a later generation holds the state record. Its
        state is kept as message history from now (a later generation that starts again removes the
        expiry: a running journey's state never expires)."""
        values: dict[str, Any] = {
            ":s": {"S": "ended"},
            ":r": {"S": reason[:300]},
            ":g": {"N": str(generation)},
            ":exp": {"N": str(self._history_expiry(store, clock.now_ts()))},
        }
        if sent:
            values[":t"] = {"BOOL": True}
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=key(keys.journey_pk(store, journey, instance), STATE_SK),
                UpdateExpression="SET #s = :s, ended_reason = :r, expires_at = :exp"
                + (", sent_any = :t" if sent else ""),
                ConditionExpression="#g = :g",
                ExpressionAttributeNames={"#s": "status", "#g": "generation"},
                ExpressionAttributeValues=values,
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            if sent:
                self.note_sent(store, journey, instance)
            raise

    def state(self, store: str, journey: str, instance: str) -> dict[str, Any] | None:
        resp = self.ddb.get_item(
            TableName=self.table,
            Key=key(keys.journey_pk(store, journey, instance), STATE_SK),
            ConsistentRead=True,
        )
        return from_item(resp["Item"]) if "Item" in resp else None

    def claim_entry(
        self, store: str, journey: str, customer_id: str, trigger: str, at: float, min_gap_s: float | None
    ) -> bool:
        """Re-entry policy for one customer: `min_gap_s` None = once ever, else at most once per gap.
        The same trigger may claim again (a retried or duplicated delivery starts the same instance)."""
        names = {"#t": "trigger"}
        values: dict[str, Any] = {":t": {"S": trigger}}
        condition = "attribute_not_exists(pk) OR #t = :t"
        if min_gap_s is not None:
            condition += " OR entered_at <= :cut"
            values[":cut"] = {"N": repr(at - min_gap_s)}
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item=to_item(
                    {
                        "pk": keys.customer_pk(store, customer_id),
                        "sk": f"ENTRY#{journey}",
                        "trigger": trigger,
                        "entered_at": at,
                    }
                ),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release_entry(self, store: str, journey: str, customer_id: str, trigger: str) -> None:
        """A customer stopped at the entry conditions did not really enter: they may enter later."""
        try:
            self.ddb.delete_item(
                TableName=self.table,
                Key=key(keys.customer_pk(store, customer_id), f"ENTRY#{journey}"),
                ConditionExpression="#t = :t",
                ExpressionAttributeNames={"#t": "trigger"},
                ExpressionAttributeValues={":t": {"S": trigger}},
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            pass

    def record(
        self, store: str, journey: str, instance: str, customer_id: str | None, entry: dict[str, Any]
    ) -> None:
        """One line of history, kept under the customer ("why did I get this?") and the instance."""
        now = clock.now_ts()
        # ordered within one Boomerang instant too (a test clock, or the emulator's compressed one)
        seq = f"{time.time_ns():016x}{uuid.uuid4().hex[:4]}"
        base = {
            "at": now,
            "expires_at": self._history_expiry(store, now),
            "journey": journey,
            "instance": instance,
            **entry,
        }
        items = [
            {"pk": keys.journey_pk(store, journey, instance), "sk": keys.log_sk(clock.iso(now), seq), **base}
        ]
        if customer_id:
            items.append(
                {"pk": keys.customer_pk(store, customer_id), "sk": f"HIST#{clock.iso(now)}#{seq}", **base}
            )
        for item in items:
            self.ddb.put_item(TableName=self.table, Item=to_item(item))

    def customer_history(self, store: str, customer_ids: list[str]) -> list[dict[str, Any]]:
        """Everything journeys did for a customer (and the anonymous ids merged into them), oldest first."""
        found: list[dict[str, Any]] = []
        for customer_id in customer_ids:
            args: dict[str, Any] = {
                "TableName": self.table,
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :h)",
                "ExpressionAttributeValues": {
                    ":pk": {"S": keys.customer_pk(store, customer_id)},
                    ":h": {"S": "HIST#"},
                },
            }
            while True:
                resp = self.ddb.query(**args)
                found += [from_item(i) for i in resp.get("Items", [])]
                if "LastEvaluatedKey" not in resp:
                    break
                args["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return sorted(
            ({k: v for k, v in i.items() if k not in ("pk", "sk", "expires_at")} for i in found),
            key=lambda i: float(i["at"]),
        )

    def load_order(self, store: str, order_id: str) -> dict[str, Any] | None:
        resp = self.ddb.get_item(TableName=self.table, Key=key(keys.order_pk(store, order_id), keys.ORDER_SK))
        return from_item(resp["Item"]) if "Item" in resp else None


STATE_SK = "STATE"
