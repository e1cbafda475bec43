"""Folds one canonical event into DynamoDB, exactly once.

Read the items the event touches, apply the pure rules in shared/profiles.py, then write everything
in one transaction together with a marker for the event's messageId. The marker makes a replay a
no-op; the version conditions make concurrent writers retry instead of overwriting each other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from shared import events as ev
from shared import keys
from shared.aws import from_item, key, to_item
from shared.events import CanonicalEvent
from shared.profiles import (
    Cart,
    Order,
    Profile,
    apply_cart_event,
    apply_consent,
    apply_context,
    apply_traits,
    cancel_order,
    convert_cart,
    is_cart_event,
    is_order_event,
    merge_profiles,
    new_cart,
    order_from,
    record_order,
    refund_order,
    register_device,
    touch,
    unregister_device,
)
from shared.stores import StoreDirectory

EVENT_MARKER_TTL_S = 35 * 24 * 3600  # longer than the bus archive's replay window
MAX_ATTEMPTS = 6


class ConcurrentUpdate(Exception):
    """Another writer kept winning; the message goes back to the queue and is retried."""


@dataclass
class Outcome:
    status: str  # applied | duplicate
    customer_id: str
    changes: list[str] = field(default_factory=list)


@dataclass
class _Loaded:
    profile: Profile
    profile_exists: bool
    anon_profile: Profile | None = None
    cart: Cart | None = None
    cart_exists: bool = False
    order: Order | None = None
    alias_target: str | None = None


class ProfileStore:
    def __init__(self, ddb: Any, table: str) -> None:
        self.ddb = ddb
        self.table = table
        self._stores: StoreDirectory | None = None

    def _double_opt_in(self, store_id: str) -> bool:
        if self._stores is None:
            self._stores = StoreDirectory(self.ddb, self.table)
        store = self._stores.get(store_id)
        return bool(store and store.double_opt_in_email)

    # -- reads ---------------------------------------------------------------------------------
    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        resp = self.ddb.get_item(TableName=self.table, Key=key(pk, sk), ConsistentRead=True)
        return from_item(resp["Item"]) if "Item" in resp else None

    def alias_target(self, store: str, anonymous_id: str) -> str | None:
        """The known customer an anonymous id has been linked to, if any."""
        alias = self._get(keys.alias_pk(store, "anon", anonymous_id), keys.ALIAS_SK)
        return alias["customer_id"] if alias else None

    def resolve_customer(self, event: CanonicalEvent) -> tuple[str, str | None]:
        """(customer id, current alias target of the anonymous id if any)."""
        alias_target = self.alias_target(event.store_id, event.anonymous_id) if event.anonymous_id else None
        if event.user_id:
            return keys.user_customer_id(event.user_id), alias_target
        assert event.anonymous_id  # validated at ingest: one of the two is always present
        return alias_target or keys.anon_customer_id(event.anonymous_id), alias_target

    def load_profile(self, store: str, customer_id: str) -> Profile | None:
        item = self._get(keys.customer_pk(store, customer_id), keys.PROFILE_SK)
        return Profile.model_validate(item) if item else None

    def load_cart(self, store: str, cart_id: str) -> Cart | None:
        item = self._get(keys.cart_pk(store, cart_id), keys.CART_SK)
        return Cart.model_validate(item) if item else None

    def _load(self, event: CanonicalEvent) -> _Loaded:
        customer_id, alias_target = self.resolve_customer(event)
        store = event.store_id
        profile = self.load_profile(store, customer_id)
        loaded = _Loaded(
            profile=profile or Profile(store_id=store, customer_id=customer_id),
            profile_exists=profile is not None,
            alias_target=alias_target,
        )
        # A known customer seen with a never-linked anonymous id: fold the visitor's profile in.
        # (An id already linked to someone else is a shared device: relink, never merge two people.)
        if event.user_id and event.anonymous_id and alias_target is None:
            loaded.anon_profile = self.load_profile(store, keys.anon_customer_id(event.anonymous_id))
        if is_cart_event(event):
            loaded.cart = self.load_cart(store, event.cart_id)
            loaded.cart_exists = loaded.cart is not None
        if is_order_event(event):
            item = self._get(keys.order_pk(store, str(event.properties["order_id"])), keys.ORDER_SK)
            loaded.order = Order.model_validate(item) if item else None
            cart_id = event.properties.get("cart_id") or loaded.profile.open_cart_id
            if event.event == ev.ORDER_COMPLETED and cart_id:
                loaded.cart = self.load_cart(store, str(cart_id))
                loaded.cart_exists = loaded.cart is not None
        return loaded

    # -- the fold --------------------------------------------------------------------------------
    def apply(self, event: CanonicalEvent) -> Outcome:
        for attempt in range(MAX_ATTEMPTS):
            loaded = self._load(event)
            writes, changes = self._plan(event, loaded)
            try:
                self.ddb.transact_write_items(TransactItems=writes)
                return Outcome("applied", loaded.profile.customer_id, changes)
            except self.ddb.exceptions.TransactionCanceledException as exc:
                reasons = exc.response.get("CancellationReasons", [])
                if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                    return Outcome("duplicate", loaded.profile.customer_id)
                time.sleep(min(0.05 * 2**attempt, 1.0))  # lost a race: re-read and re-apply
        raise ConcurrentUpdate(f"gave up after {MAX_ATTEMPTS} attempts on message {event.message_id}")

    def _plan(self, event: CanonicalEvent, s: _Loaded) -> tuple[list[dict[str, Any]], list[str]]:
        store, at, p = event.store_id, event.received_at, event.properties
        profile = s.profile
        changes: list[str] = []
        marker = {
            "pk": keys.event_pk(store, event.message_id),
            "sk": keys.EVENT_SK,
            "customer_id": profile.customer_id,
            "received_at": at,
            "expires_at": int(at) + EVENT_MARKER_TTL_S,
        }
        # The marker goes first: a cancelled transaction's first reason tells a replay apart.
        writes: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": to_item(marker),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        touch(profile, event)
        if s.anon_profile is not None and s.anon_profile.merged_into is None:
            merge_profiles(profile, s.anon_profile)
            writes.append(
                self._put_versioned(
                    keys.customer_pk(store, s.anon_profile.customer_id), keys.PROFILE_SK, s.anon_profile, True
                )
            )
            changes.append("merged anonymous profile")
        if event.user_id and event.anonymous_id and s.alias_target != profile.customer_id:
            alias = {
                "pk": keys.alias_pk(store, "anon", event.anonymous_id),
                "sk": keys.ALIAS_SK,
                "customer_id": profile.customer_id,
                "at": at,
            }
            writes.append({"Put": {"TableName": self.table, "Item": to_item(alias)}})
            changes.append("linked anonymous id")

        if event.type == "identify":
            apply_traits(profile, event.traits, at)
            apply_consent(profile, event.traits, at, event.message_id, self._double_opt_in(store))
            changes.append("traits")
            if event.traits.get("consent"):
                changes.append("consent")
        apply_context(profile, event.context, at)
        if event.type == "track" and event.event == ev.CONSENT_UPDATED:
            apply_consent(profile, p, at, event.message_id, self._double_opt_in(store))
            changes.append("consent")
        if event.type == "identify" and event.traits.get("device_token"):
            register_device(profile, event.traits["device_token"], event.traits["device_platform"], at)
            changes.append("device registered")
        if event.type == "track" and event.event == ev.DEVICE_REGISTERED:
            register_device(profile, p["token"], p["platform"], at)
            changes.append("device registered")
        if event.type == "track" and event.event == ev.DEVICE_UNREGISTERED:
            unregister_device(profile, p["token"], at)
            changes.append("device removed")

        if is_cart_event(event):
            cart = s.cart or new_cart(event, event.cart_id)
            apply_cart_event(cart, event)
            writes.append(
                self._put_versioned(keys.cart_pk(store, cart.cart_id), keys.CART_SK, cart, s.cart_exists)
            )
            if cart.status == "open" and at >= (profile.updated.get("open_cart_id") or 0):
                profile.open_cart_id = cart.cart_id
                profile.updated["open_cart_id"] = at
            changes.append(f"cart {len(cart.items)} item(s), value {cart.value}")

        if is_order_event(event):
            self._plan_order(event, s, writes, changes)

        writes.append(
            self._put_versioned(
                keys.customer_pk(store, profile.customer_id), keys.PROFILE_SK, profile, s.profile_exists
            )
        )
        return writes, changes

    def _plan_order(
        self, event: CanonicalEvent, s: _Loaded, writes: list[dict[str, Any]], changes: list[str]
    ) -> None:
        store, at, p = event.store_id, event.received_at, event.properties
        profile = s.profile
        existing = s.order
        if event.event == ev.ORDER_COMPLETED:
            if existing is not None:
                changes.append("order already counted")  # same order, new messageId: count once
                return
            order = order_from(event, profile.customer_id)
            record_order(profile, order)
            writes.append(self._put_new(keys.order_pk(store, order.order_id), keys.ORDER_SK, order))
            changes.append(f"order {order.total} {order.currency or ''}".strip())
            if s.cart is not None:
                convert_cart(s.cart, order.order_id, at)
                writes.append(
                    self._put_versioned(
                        keys.cart_pk(store, s.cart.cart_id), keys.CART_SK, s.cart, s.cart_exists
                    )
                )
                if s.cart.status == "converted" and profile.open_cart_id == s.cart.cart_id:
                    profile.open_cart_id = None
                    profile.updated["open_cart_id"] = at
                changes.append("cart converted")
            return
        if existing is None:
            changes.append("unknown order ignored")
            return
        if event.event == ev.ORDER_CANCELLED and existing.status != "cancelled":
            cancel_order(profile, existing)
            existing.status = "cancelled"
            changes.append("order cancelled")
        elif event.event == ev.ORDER_REFUNDED:
            amount = Decimal(str(p.get("total", p.get("revenue", existing.total))))
            amount = min(amount, existing.total - existing.refunded)
            if amount > 0:
                refund_order(profile, amount)
                existing.refunded += amount
                changes.append(f"refund {amount}")
        existing.message_ids = [*existing.message_ids, event.message_id][-20:]
        writes.append(
            self._put_versioned(keys.order_pk(store, existing.order_id), keys.ORDER_SK, existing, True)
        )

    # -- write helpers ---------------------------------------------------------------------------
    def _put_versioned(self, pk: str, sk: str, model: Any, exists: bool) -> dict[str, Any]:
        expected = model.version
        data = {**model.model_dump(mode="python"), "version": expected + 1}
        item = {"pk": pk, "sk": sk, **data}
        if not exists:
            return {
                "Put": {
                    "TableName": self.table,
                    "Item": to_item(item),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        return {
            "Put": {
                "TableName": self.table,
                "Item": to_item(item),
                "ConditionExpression": "#v = :v",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": {":v": {"N": str(expected)}},
            }
        }

    def _put_new(self, pk: str, sk: str, model: Any) -> dict[str, Any]:
        item = {"pk": pk, "sk": sk, **model.model_dump(mode="python")}
        return {
            "Put": {
                "TableName": self.table,
                "Item": to_item(item),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
