"""Folds one canonical event into DynamoDB, exactly once.

Read the items the event touches, let the domain decide what changes (shared/domain/event_routing.py),
then write everything in one transaction together with a marker for the event's messageId. The
marker makes a replay a no-op; the version conditions make concurrent writers retry instead of
overwriting each other. An event that changes the profile item alone (a view, an identify without a
new alias, an order already counted) needs no transaction: a consistent read of its marker, the
profile's conditional write, then the marker; nothing at all when it changes nothing held
(ProfileStore._apply_profile_only).

The profile item carries the sparse lifecycle index attributes (bday, anniv, risk; see
retention.index_attributes) in that same write, so an index never disagrees with its profile; a
profile merged into another carries none. Back-in-stock subscriptions are items of their own,
pk=customer_pk / sk="BIS#<sku or product_id>" with `bis` (the by-sku index) while waiting; ending
one removes `bis` and keeps the item as history (notified_at). When a visitor is merged into a
known customer their waiting subscriptions move to the customer (up to MAX_MOVED_SUBSCRIPTIONS in
the merge's transaction; the rest keep working through the visitor's merged_into).

Segments (shared/domain/segments.py, rfm.py): every fold rescores RFM against the store's latest
quintile edges (store item `STORE#s` / `RFM`), restages the lifecycle and re-evaluates the store's segment files;
membership items pk=customer_pk / sk="SEG#<segment>" (with `seg`, the by-segment index) are put or
deleted in the fold's one transaction, next to the profile that lists them (Profile.segments).
`refresh_segments` does the same outside a fold, for the daily run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.adapters.privacy_store import TombstoneRegister
from shared.adapters.store_directory import StoreDirectory
from shared.domain import event_routing as route
from shared.domain.carts import Cart, is_cart_event
from shared.domain.events import BACK_IN_STOCK_SUBSCRIBED, ORDER_COMPLETED, CanonicalEvent
from shared.domain.fold import touch
from shared.domain.loyalty import LoyaltyPolicy, TierReached, tier_reached_event
from shared.domain.orders import Order, is_order_event
from shared.domain.privacy import DataRetention
from shared.domain.profiles import Profile
from shared.domain.retention import RetentionPolicy, index_attributes
from shared.domain.rfm import RfmEdges
from shared.domain.segments import restate
from shared.domain.stores import Store
from shared.platform import clock, indexes, keys
from shared.platform.aws import from_item, key, to_item
from shared.platform.lru import Lru

# processed-event markers live DataRetention.event_marker_days (35 by default): longer than the bus
# archive's replay window
MAX_ATTEMPTS = 6
# Back-in-stock subscriptions moved from a visitor to the customer in one merge (the transaction's
# 100-item limit); any beyond stay on the visitor's id and still resolve through merged_into.
MAX_MOVED_SUBSCRIPTIONS = 20
BIS_SK_PREFIX = "BIS#"
SEGMENT_SK_PREFIX = "SEG#"
CONSENT_SK_PREFIX = "CONSENT#"  # consent proof: one item per change (ProfileStore._consent_proof_writes)
RFM_SK = "RFM"  # under the store's pk: the store's RFM quintile edges
EDGES_TTL_S = 60.0
# profile fields that record the write, not the customer: a fold that changes only these changes nothing
_BOOKKEEPING = {"version", "last_message_id"}


def segment_sk(segment_id: str) -> str:
    return f"{SEGMENT_SK_PREFIX}{segment_id}"


def consent_sk(at: float, version: int, n: int) -> str:
    """A consent change's item: ordered by time, then by the profile write that noted it (its
    version) and its place among that write's changes, so choices received at the same time keep
    the order they were folded in. (Consent events keep their exactly-once marker: a replay writes
    nothing.)"""
    return f"{CONSENT_SK_PREFIX}{at:017.6f}#{version:010d}#{n:03d}"


def subscription_sk(sku: str) -> str:
    return f"{BIS_SK_PREFIX}{sku}"


def _value(v: Any) -> dict[str, Any]:
    """One attribute value in DynamoDB's wire format."""
    return to_item({"v": v})["v"]


_SUBSCRIPTION_FIELDS = ("product_id", "sku", "name", "url", "image_url", "price", "currency")


class ConcurrentUpdate(Exception):
    """Another writer kept winning; the message goes back to the queue and is retried."""


@dataclass
class Outcome:
    # applied | duplicate | unchanged (changes nothing held: not written) | ignored (a store-level event:
    # no customer to fold into) | erased |
    # resolved (a Back In Stock naming only an inventory item, announced again with its sku)
    status: str
    customer_id: str
    changes: list[str] = field(default_factory=list)
    tier_reached: TierReached | None = None  # announced (before the commit) as Loyalty Tier Reached


@dataclass
class _Loaded:
    profile: Profile
    profile_exists: bool
    anon_profile: Profile | None = None
    cart: Cart | None = None
    cart_exists: bool = False
    order: Order | None = None
    alias_target: str | None = None
    subscription: dict[str, Any] | None = None  # Back In Stock Subscribed: the item held for the SKU
    anon_subscriptions: list[dict[str, Any]] = field(default_factory=list)  # active, to move on merge
    own_subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)  # the customer's, by sk


class ProfileStore:
    """`segments` (a SegmentCatalog) lets the fold keep segment memberships; without it memberships
    are left as they are (RFM scores and the lifecycle stage are kept either way)."""

    def __init__(self, ddb: Any, table: str, segments: Any = None) -> None:
        self.ddb = ddb
        self.table = table
        self.segments = segments
        self._stores: StoreDirectory | None = None
        self._edges: Lru[str, tuple[float, RfmEdges | None]] = Lru(256)  # stores

    def _settings(self, store_id: str) -> Store | None:
        if self._stores is None:
            self._stores = StoreDirectory(self.ddb, self.table)
        return self._stores.get(store_id)

    def _double_opt_in(self, store_id: str) -> bool:
        store = self._settings(store_id)
        return bool(store and store.double_opt_in_email)

    def _data_retention(self, store_id: str) -> DataRetention:
        store = self._settings(store_id)
        return store.data_retention if store else DataRetention()

    def _policies(self, store_id: str) -> tuple[LoyaltyPolicy, RetentionPolicy]:
        store = self._settings(store_id)
        return (store.loyalty, store.retention) if store else (LoyaltyPolicy(), RetentionPolicy())

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
            if loaded.anon_profile is not None and loaded.anon_profile.merged_into is None:
                anon = self._subscriptions(store, loaded.anon_profile.customer_id)
                loaded.anon_subscriptions = [i for i in anon if route.is_waiting(i)]
                if loaded.anon_subscriptions:
                    loaded.own_subscriptions = {i["sk"]: i for i in self._subscriptions(store, customer_id)}
        if event.type == "track" and event.event == BACK_IN_STOCK_SUBSCRIBED:
            loaded.subscription = self._get(
                keys.customer_pk(store, customer_id), subscription_sk(route.product_key(event.properties))
            )
        if is_cart_event(event):
            loaded.cart = self.load_cart(store, event.cart_id)
            loaded.cart_exists = loaded.cart is not None
        if is_order_event(event):
            item = self._get(keys.order_pk(store, str(event.properties["order_id"])), keys.ORDER_SK)
            loaded.order = Order.model_validate(item) if item else None
            cart_id = event.properties.get("cart_id") or loaded.profile.open_cart_id
            if event.event == ORDER_COMPLETED and cart_id:
                loaded.cart = self.load_cart(store, str(cart_id))
                loaded.cart_exists = loaded.cart is not None
        return loaded

    def _subscriptions(self, store: str, customer_id: str) -> list[dict[str, Any]]:
        """A customer's back-in-stock subscription items (active and ended)."""
        found: list[dict[str, Any]] = []
        args: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :bis)",
            "ExpressionAttributeValues": {
                ":pk": {"S": keys.customer_pk(store, customer_id)},
                ":bis": {"S": BIS_SK_PREFIX},
            },
            "ConsistentRead": True,
        }
        while True:
            resp = self.ddb.query(**args)
            found += [from_item(i) for i in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                return found
            args["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    # -- back in stock -----------------------------------------------------------------------------
    def back_in_stock_subscribers(
        self, store: str, sku: str, limit: int = 100, start_key: dict[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of the customers waiting for `sku` (from the sparse `by-sku` index): dicts with
        customer_id and subscribed_at, and the key to pass back for the next page (None at the end).

        customer_id may be an anonymous visitor's ("a:...") whose profile has since been merged:
        follow Profile.merged_into. The index is eventually consistent, so a page can still list a
        subscription that just ended; end_back_in_stock() is the exactly-once gate.
        """
        args: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": indexes.BY_SKU.name,
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": indexes.BY_SKU.partition},
            "ExpressionAttributeValues": {":p": {"S": indexes.back_in_stock_key(store, sku)}},
            "Limit": limit,
        }
        if start_key:
            args["ExclusiveStartKey"] = start_key
        resp = self.ddb.query(**args)
        items = [from_item(i) for i in resp.get("Items", [])]
        found = [{"customer_id": i["customer_id"], "subscribed_at": i.get("subscribed_at")} for i in items]
        return found, resp.get("LastEvaluatedKey")

    def end_back_in_stock(self, store: str, customer_id: str, sku: str, at: float | None = None) -> bool:
        """Take a subscription out of the `by-sku` index, once: True only for the caller that did.

        The item stays, with notified_at, as the customer's history.
        """
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=key(keys.customer_pk(store, customer_id), subscription_sk(sku)),
                UpdateExpression="REMOVE #bis SET notified_at = :at",
                ConditionExpression="attribute_exists(#bis)",
                ExpressionAttributeNames={"#bis": indexes.BY_SKU.partition},
                ExpressionAttributeValues={":at": _value(clock.now_ts() if at is None else at)},
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # -- inventory items (Shopify names only the item in inventory_levels/update) ---------------------
    def inventory_item_sku(self, store: str, inventory_item_id: str) -> str | None:
        item = self._get(keys.inventory_item_pk(store, inventory_item_id), keys.INVENTORY_ITEM_SK)
        return str(item["sku"]) if item and item.get("sku") else None

    def remember_inventory_items(self, store: str, items: dict[str, str]) -> None:
        """Record item -> sku; a read first, so the usual unchanged mapping costs no write."""
        for item_id, sku in items.items():
            if self.inventory_item_sku(store, item_id) == sku:
                continue
            self.ddb.put_item(
                TableName=self.table,
                Item=to_item(
                    {
                        "pk": keys.inventory_item_pk(store, item_id),
                        "sk": keys.INVENTORY_ITEM_SK,
                        "sku": sku,
                        "updated_at": clock.now_ts(),
                    }
                ),
            )

    def _store_level(
        self, event: CanonicalEvent, announce: Callable[[CanonicalEvent], None] | None
    ) -> Outcome:
        """No profile to fold; a Back In Stock naming only an inventory item is announced again
        with the item's sku, the one the subscriptions (and the back-in-stock journey) wait on."""
        item = route.unresolved_inventory_item(event)
        if item is None:
            return Outcome("ignored", "", ["store-level event"])
        sku = self.inventory_item_sku(event.store_id, item)
        if sku is None:
            # not an error: a retry would not know more; the next products/update teaches the item
            return Outcome(
                "ignored", "", [f"inventory item {item} has no known sku (no product event named it yet)"]
            )
        if announce is not None:
            announce(route.resolved_back_in_stock(event, sku))
        return Outcome("resolved", "", [f"inventory item {item} is sku {sku}"])

    # -- the fold --------------------------------------------------------------------------------
    def apply(
        self, event: CanonicalEvent, announce: Callable[[CanonicalEvent], None] | None = None
    ) -> Outcome:
        """Fold one event, exactly once.

        `announce` gets the events the fold concludes (Loyalty Tier Reached) BEFORE the transaction
        commits: if it raises, nothing is committed and the message is retried, so a crash between
        the two can repeat an announcement (same messageId) but never lose one.
        """
        taught = route.inventory_items(event)
        if taught:
            self.remember_inventory_items(event.store_id, taught)
        if route.is_store_level(event):
            return self._store_level(event, announce)
        if TombstoneRegister(self.ddb, self.table).drops(event):
            # received before its customer was erased (in flight, or replayed from the archive)
            return Outcome("erased", "", ["customer erased"])
        for attempt in range(MAX_ATTEMPTS):
            loaded = self._load(event)
            customer_id = loaded.profile.customer_id
            if loaded.profile_exists and loaded.profile.last_message_id == event.message_id:
                # the profile's latest write was this very event: a redelivery, or the retry of a fold
                # that stopped between its profile write and its marker (_apply_profile_only)
                self._ensure_marker(self._marker_put(event, customer_id))
                return Outcome("duplicate", customer_id)
            held = loaded.profile.model_dump(exclude=_BOOKKEEPING) if loaded.profile_exists else None
            writes, changes, reached = self._plan(event, loaded)
            if reached is not None and announce is not None:
                announce(tier_reached_event(event.store_id, customer_id, reached))
            if len(writes) == 2 and reached is None:
                # only the profile changes (writes are [marker, profile]): no transaction
                outcome = self._apply_profile_only(loaded, held, writes[0]["Put"], writes[1]["Put"], changes)
                if outcome is not None:
                    return outcome
                time.sleep(min(0.05 * 2**attempt, 1.0))  # lost a race: re-read and re-apply
                continue
            try:
                self.ddb.transact_write_items(TransactItems=writes)
                return Outcome("applied", loaded.profile.customer_id, changes, reached)
            except self.ddb.exceptions.TransactionCanceledException as exc:
                reasons = exc.response.get("CancellationReasons", [])
                if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                    return Outcome("duplicate", loaded.profile.customer_id)
                time.sleep(min(0.05 * 2**attempt, 1.0))  # lost a race: re-read and re-apply
        raise ConcurrentUpdate(f"gave up after {MAX_ATTEMPTS} attempts on message {event.message_id}")

    def _apply_profile_only(
        self,
        loaded: _Loaded,
        held: dict[str, Any] | None,
        marker: dict[str, Any],
        put: dict[str, Any],
        changes: list[str],
    ) -> Outcome | None:
        """An event that changes the profile item alone needs no transaction. Nothing is written when
        the fold changes nothing held (a repeat view, a late event older than what is held). Otherwise:
        a consistent read of the processed-event marker (a replay, even one received later whose
        latest-wins fold would move the profile's times, is a duplicate), then the profile's
        conditional write (version: a concurrent writer makes this one re-read), then the marker, the
        same item the transactional path writes, so each path recognises the other's events. A crash
        between the two writes is retried: the profile then names the event (last_message_id), so the
        retry writes the marker and folds nothing twice. None: lost a race, re-read and re-apply."""
        customer_id = loaded.profile.customer_id
        if held is not None and loaded.profile.model_dump(exclude=_BOOKKEEPING) == held:
            return Outcome("unchanged", customer_id, ["nothing a journey, segment or report reads changed"])
        if self._has_marker(marker):
            return Outcome("duplicate", customer_id)
        try:
            self.ddb.put_item(**put)
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return None
        self._put_marker(marker)
        return Outcome("applied", customer_id, changes)

    def _marker_put(self, event: CanonicalEvent, customer_id: str) -> dict[str, Any]:
        """The processed-event marker's conditional Put: a replay of the messageId fails it."""
        at = event.received_at
        marker = {
            "pk": keys.event_pk(event.store_id, event.message_id),
            "sk": keys.EVENT_SK,
            "customer_id": customer_id,
            "received_at": at,
            "expires_at": int(at) + self._data_retention(event.store_id).event_marker_days * 86400,
        }
        return {
            "TableName": self.table,
            "Item": to_item(marker),
            "ConditionExpression": "attribute_not_exists(pk)",
        }

    def _has_marker(self, marker: dict[str, Any]) -> bool:
        item = marker["Item"]
        resp = self.ddb.get_item(
            TableName=self.table,
            Key={"pk": item["pk"], "sk": item["sk"]},
            ConsistentRead=True,  # a replay right after the first fold must see its marker
            ProjectionExpression="pk",
        )
        return "Item" in resp

    def _put_marker(self, marker: dict[str, Any]) -> None:
        try:
            self.ddb.put_item(**marker)
        except self.ddb.exceptions.ConditionalCheckFailedException:
            pass  # a concurrent duplicate wrote it first

    def _ensure_marker(self, marker: dict[str, Any]) -> None:
        if not self._has_marker(marker):
            self._put_marker(marker)

    def _plan(
        self, event: CanonicalEvent, s: _Loaded
    ) -> tuple[list[dict[str, Any]], list[str], TierReached | None]:
        """The transaction for one event: the rules are the domain's (shared/domain/event_routing.py),
        the items and conditions that make it exactly-once are this store's."""
        store, at = event.store_id, event.received_at
        profile = s.profile
        changes: list[str] = []
        loyalty, retention = self._policies(store)
        # The marker goes first: a cancelled transaction's first reason tells a replay apart.
        writes: list[dict[str, Any]] = [{"Put": self._marker_put(event, profile.customer_id)}]
        touch(profile, event)
        if s.anon_profile is not None and s.anon_profile.merged_into is None:
            # the visitor's item leaves every index (index_attributes is empty once merged) and
            # every segment
            left = route.merge_visitor(profile, s.anon_profile, loyalty, retention, at)
            writes += self._membership_writes(s.anon_profile, [], left, at)
            writes.append(
                self._put_versioned(
                    keys.customer_pk(store, s.anon_profile.customer_id), keys.PROFILE_SK, s.anon_profile, True
                )
            )
            changes.append("merged anonymous profile")
            self._plan_moved_subscriptions(store, s, at, writes, changes)
        if event.user_id and event.anonymous_id and s.alias_target != profile.customer_id:
            alias = {
                "pk": keys.alias_pk(store, "anon", event.anonymous_id),
                "sk": keys.ALIAS_SK,
                "customer_id": profile.customer_id,
                "at": at,
            }
            writes.append({"Put": {"TableName": self.table, "Item": to_item(alias)}})
            changes.append("linked anonymous id")

        changes += route.fold_profile_rules(profile, event, self._double_opt_in(store))
        if event.type == "track" and event.event == BACK_IN_STOCK_SUBSCRIBED:
            self._plan_subscription(event, s, writes, changes)

        if is_cart_event(event):
            cart, change = route.fold_cart(profile, s.cart, event)
            writes.append(
                self._put_versioned(keys.cart_pk(store, cart.cart_id), keys.CART_SK, cart, s.cart_exists)
            )
            changes.append(change)

        reached: TierReached | None = None
        if is_order_event(event):
            folded = route.fold_order(profile, event, s.order, s.cart, loyalty, retention)
            order = folded.order
            if order is not None and folded.new:
                writes.append(self._put_new(keys.order_pk(store, order.order_id), keys.ORDER_SK, order))
            elif order is not None:
                writes.append(
                    self._put_versioned(keys.order_pk(store, order.order_id), keys.ORDER_SK, order, True)
                )
            if folded.cart is not None:
                writes.append(
                    self._put_versioned(
                        keys.cart_pk(store, folded.cart.cart_id), keys.CART_SK, folded.cart, s.cart_exists
                    )
                )
            changes += folded.changes
            reached = folded.reached

        # scores, stage and memberships, and the lifecycle index attributes, go in the same write as
        # the profile they describe
        changes += self._plan_segments(profile, clock.now_ts(), writes)
        writes += self._consent_proof_writes(profile)
        profile.last_message_id = event.message_id
        writes.append(
            self._put_versioned(
                keys.customer_pk(store, profile.customer_id), keys.PROFILE_SK, profile, s.profile_exists
            )
        )
        return writes, changes, reached

    def _plan_subscription(
        self, event: CanonicalEvent, s: _Loaded, writes: list[dict[str, Any]], changes: list[str]
    ) -> None:
        store, at, p = event.store_id, event.received_at, event.properties
        sku, held = route.product_key(p), s.subscription
        moving = any(
            sub["sk"] == subscription_sk(sku) for sub in s.anon_subscriptions[:MAX_MOVED_SUBSCRIPTIONS]
        )
        refused = route.subscription_refused(held, moving, at)
        if refused:
            changes.append(refused)
            return
        item = {
            "pk": keys.customer_pk(store, s.profile.customer_id),
            "sk": subscription_sk(sku),
            indexes.BY_SKU.partition: indexes.back_in_stock_key(store, sku),
            "store_id": store,
            "customer_id": s.profile.customer_id,
            "subscribed_at": at,
            "message_id": event.message_id,
            **{f: p[f] for f in _SUBSCRIPTION_FIELDS if p.get(f) is not None},
        }
        put: dict[str, Any] = {
            "TableName": self.table,
            "Item": to_item(item),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        if held is not None:  # again after an ended one, provided nobody re-subscribed meanwhile
            put["ConditionExpression"] = "attribute_not_exists(#bis)"
            put["ExpressionAttributeNames"] = {"#bis": indexes.BY_SKU.partition}
        writes.append({"Put": put})
        changes.append("subscribed to back in stock")

    def _plan_moved_subscriptions(
        self, store: str, s: _Loaded, at: float, writes: list[dict[str, Any]], changes: list[str]
    ) -> None:
        """The visitor's waiting back-in-stock subscriptions follow them to the customer."""
        names = {"#bis": indexes.BY_SKU.partition}
        target = s.profile.customer_id
        moved = 0
        for sub in s.anon_subscriptions[:MAX_MOVED_SUBSCRIPTIONS]:
            own = s.own_subscriptions.get(sub["sk"])
            move = route.subscription_move(sub, own)
            if move == "keep-earlier" and own is not None:
                writes.append(
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": key(own["pk"], own["sk"]),
                            "UpdateExpression": "SET subscribed_at = :s",
                            "ConditionExpression": "attribute_exists(#bis)",
                            "ExpressionAttributeNames": names,
                            "ExpressionAttributeValues": {":s": _value(sub["subscribed_at"])},
                        }
                    }
                )
            elif move == "copy":
                fresh = {**sub, "pk": keys.customer_pk(store, target), "customer_id": target}
                fresh.pop("notified_at", None)
                writes.append(
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": to_item(fresh),
                            "ConditionExpression": "attribute_not_exists(#bis)",
                            "ExpressionAttributeNames": names,
                        }
                    }
                )
            # the visitor's item leaves the index (history: where it went); fails if notified meanwhile
            writes.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": key(sub["pk"], sub["sk"]),
                        "UpdateExpression": "REMOVE #bis SET moved_to = :to, moved_at = :at",
                        "ConditionExpression": "attribute_exists(#bis)",
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": to_item({":to": target, ":at": at}),
                    }
                }
            )
            moved += 1
        if moved:
            changes.append(f"moved {moved} back-in-stock subscription(s)")

    # -- segments --------------------------------------------------------------------------------
    def rfm_edges(self, store: str) -> RfmEdges | None:
        """The store's latest quintile edges (cached briefly; None before the first daily run)."""
        now = time.monotonic()
        hit = self._edges.get(store)
        if hit and now - hit[0] < EDGES_TTL_S:
            return hit[1]
        item = self._get(keys.store_pk(store), RFM_SK)
        edges = RfmEdges.model_validate(item) if item else None
        self._edges[store] = (now, edges)
        return edges

    def save_rfm_edges(self, store: str, edges: RfmEdges) -> None:
        item = {"pk": keys.store_pk(store), "sk": RFM_SK, **edges.model_dump(mode="python")}
        self.ddb.put_item(TableName=self.table, Item=to_item(item))
        self._edges[store] = (time.monotonic(), edges)

    def _plan_segments(self, profile: Profile, now: float, writes: list[dict[str, Any]]) -> list[str]:
        """Restate the profile in place (shared/domain/segments.py); membership changes are appended
        to `writes`. Returns what changed (empty: nothing, and the profile is as it was)."""
        if profile.merged_into is not None:
            return []
        _, retention = self._policies(profile.store_id)
        edges = self.rfm_edges(profile.store_id)
        definitions = self.segments.segments(profile.store_id) if self.segments is not None else None
        restated = restate(profile, edges, definitions, retention, now)
        writes += self._membership_writes(profile, restated.joined, restated.left, now)
        return restated.changes

    def _membership_writes(
        self, profile: Profile, joined: list[str], left: list[str], now: float
    ) -> list[dict[str, Any]]:
        """Put the memberships joined, delete the ones left."""
        store, pk = profile.store_id, keys.customer_pk(profile.store_id, profile.customer_id)
        out: list[dict[str, Any]] = []
        for segment_id in sorted(joined):
            item = {
                "pk": pk,
                "sk": segment_sk(segment_id),
                indexes.BY_SEGMENT.partition: indexes.segment_key(store, segment_id),
                "store_id": store,
                "customer_id": profile.customer_id,
                "segment": segment_id,
                "since": now,
            }
            out.append({"Put": {"TableName": self.table, "Item": to_item(item)}})
        for segment_id in sorted(left):
            out.append({"Delete": {"TableName": self.table, "Key": key(pk, segment_sk(segment_id))}})
        return out

    def refresh_segments(self, store: str, customer_id: str, now: float | None = None) -> str:
        """Rescore and re-evaluate one profile outside a fold (the daily run): changed | unchanged |
        missing. Idempotent: a second run finds nothing to change."""
        for attempt in range(MAX_ATTEMPTS):
            at = clock.now_ts() if now is None else now
            profile = self.load_profile(store, customer_id)
            if profile is None or profile.merged_into is not None:
                return "missing"
            writes: list[dict[str, Any]] = []
            if not self._plan_segments(profile, at, writes):
                return "unchanged"
            writes.append(
                self._put_versioned(keys.customer_pk(store, customer_id), keys.PROFILE_SK, profile, True)
            )
            try:
                self.ddb.transact_write_items(TransactItems=writes)
                return "changed"
            except self.ddb.exceptions.TransactionCanceledException:
                time.sleep(min(0.05 * 2**attempt, 1.0))  # a fold won the race: re-read and re-apply
        raise ConcurrentUpdate(f"gave up refreshing segments of {customer_id} after {MAX_ATTEMPTS} attempts")

    # -- consent proof ---------------------------------------------------------------------------
    def _consent_proof_writes(self, profile: Profile) -> list[dict[str, Any]]:
        """The consent changes the fold noted (fold.note_consent_change), each put as its own item
        under the customer (sk CONSENT#<at>#<version>#<n>), and taken off the profile item: the proof
        grows with every choice, the profile item every event rewrites does not. A profile written
        before this still holds a list: it moves out on its next write (and the export reads both)."""
        out = []
        pk = keys.customer_pk(profile.store_id, profile.customer_id)
        for n, change in enumerate(profile.consent_history):
            proof = change.model_dump(mode="python")
            item = {
                "pk": pk,
                "sk": consent_sk(change.at, profile.version + 1, n),
                "store_id": profile.store_id,
                "customer_id": profile.customer_id,
                **proof,
            }
            out.append({"Put": {"TableName": self.table, "Item": to_item(item)}})
        profile.consent_history = []
        return out

    # -- write helpers ---------------------------------------------------------------------------
    def _put_versioned(self, pk: str, sk: str, model: Any, exists: bool) -> dict[str, Any]:
        expected = model.version
        data = {**model.model_dump(mode="python"), "version": expected + 1}
        if isinstance(model, Profile):
            data.update(index_attributes(model))  # a Put: an attribute left out leaves its index
            # DynamoDB's TTL removes a profile inactive for the store's limit (the monthly sweep
            # removes what hangs off it: shared/services/privacy/retention.py)
            if model.merged_into is None:  # a merged visitor goes with its customer
                data["expires_at"] = self._data_retention(model.store_id).profile_expires_at(
                    model.last_seen_at, clock.now_ts()
                )
        elif isinstance(model, Cart):
            data["expires_at"] = self._data_retention(model.store_id).cart_expires_at(
                model.last_activity_at or clock.now_ts()
            )
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
