"""Finding one person's items: who they are (resolve), then every item of theirs (collect).

Used by both erasure and export, so what is erased is exactly what an export shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.adapters.privacy_store import PrivacyStore
from shared.domain.privacy import Subject, journey_instance, owns
from shared.platform import keys


class BadRequest(ValueError):
    """A request that names no one, or names them wrongly: `field` says which part."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        super().__init__(f"{field_name}: {message}")


@dataclass(frozen=True)
class Who:
    """How a request names the person: exactly one of a customer id, an email, a phone number."""

    store_id: str
    customer: str | None = None  # u:<userId> or a:<anonymousId>
    email: str | None = None
    phone: str | None = None

    def check(self) -> Who:
        given = [n for n in ("customer", "email", "phone") if getattr(self, n)]
        if len(given) != 1:
            raise BadRequest(
                "customer", "give exactly one of customer (u:<userId> or a:<anonymousId>), email, phone"
            )
        if not self.store_id:
            raise BadRequest("store", "the store id is required")
        if self.customer and not (self.customer.startswith(("u:", "a:")) and len(self.customer) > 2):
            raise BadRequest("customer", "expected u:<userId> or a:<anonymousId>")
        if self.email and "@" not in self.email:
            raise BadRequest("email", "not an email address")
        if self.phone and not self.phone.strip().startswith("+"):
            raise BadRequest("phone", "expected an international number, e.g. +44 20 7946 0018")
        return self

    def named(self) -> tuple[str, str]:
        """The identifier the request names, as a tombstone kind and value."""
        if self.customer:
            return ("user" if self.customer.startswith("u:") else "anon", self.customer[2:])
        return ("email", self.email or "") if self.email else ("phone", self.phone or "")

    @property
    def label(self) -> str:
        """The id an export is filed under (the person's own, never printed or logged)."""
        return self.customer or self.email or self.phone or ""


@dataclass
class Collected:
    subject: Subject
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by owns() kind

    def add(self, kind: str, item: dict[str, Any]) -> None:
        self.items.setdefault(kind, []).append(item)

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in sorted(self.items.items())}


def resolve(store: PrivacyStore, who: Who) -> Subject:
    """Everyone the table knows as this person: their profile and the visitors merged into it."""
    who.check()
    s = Subject(store_id=who.store_id)
    if who.customer:
        s.customer_ids.add(who.customer)
    if who.email:
        s.emails.add(keys.normalise_identifier("email", who.email))
    if who.phone:
        s.phones.add(keys.normalise_identifier("phone", who.phone))
    if who.email or who.phone:  # no index by address (none is kept for one rare request): a Scan
        for item in store.scan_store(who.store_id, only_profiles=True):
            email = keys.normalise_identifier("email", str(item.get("email") or ""))
            phone = keys.normalise_identifier("phone", str(item.get("phone") or ""))
            if (email and email in s.emails) or (phone and phone in s.phones):
                s.learn(item)
    seen: set[str] = set()
    while pending := s.customer_ids - seen:  # follow merges both ways until nothing new
        for cid in sorted(pending):
            seen.add(cid)
            profile = store.get(keys.customer_pk(who.store_id, cid), keys.PROFILE_SK)
            if profile is not None:
                s.learn(profile)
            # the visitor id the request names leads to the customer it was linked to; other visitor
            # ids are not followed (a shared device's id may be linked to someone else since)
            if cid == who.customer and cid.startswith("a:"):
                alias = store.get(keys.alias_pk(who.store_id, "anon", cid[2:]), keys.ALIAS_SK)
                for target in (alias or {}).get("customer_id"), (profile or {}).get("merged_into"):
                    if target:
                        s.customer_ids.add(str(target))
    for cid in sorted(s.customer_ids):
        s.instances.add(cid)
    return s


def collect(store: PrivacyStore, subject: Subject) -> Collected:
    """Every item of the subject's. A journey run or offer code is theirs when its instance is one
    of their carts, orders or ids, which the same pass may only learn later: when it did, and some
    runs were passed over, a second pass picks those up (the table is read at most twice)."""
    out = Collected(subject)
    known_instances = set(subject.instances)
    passed_over = False
    for item in store.scan_store(subject.store_id):
        kind = owns(item, subject)
        if kind is None:
            passed_over = passed_over or _is_run(item, subject.store_id)
            continue
        out.add(kind, item)
        if kind in ("carts", "orders", "history", "journey_entries"):
            subject.note_instances(item)
    if passed_over and subject.instances != known_instances:
        held = {(i["pk"], i["sk"]) for kind in out.items.values() for i in kind}
        for item in store.scan_store(subject.store_id):
            if _is_run(item, subject.store_id) and (item["pk"], item["sk"]) not in held:
                kind = owns(item, subject)
                if kind:
                    out.add(kind, item)
    return out


def _is_run(item: dict[str, Any], store_id: str) -> bool:
    pk = str(item.get("pk", ""))
    return journey_instance(pk) is not None or pk.startswith(f"STORE#{store_id}#POOL#")
