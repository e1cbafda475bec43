"""Fulfilment partners, the pure rules: which partner gets which item, signatures, retries, answers,
and partner files (line-numbered problems; secrets refused)."""

from __future__ import annotations

import pytest

from shared.adapters.partner_catalog import parse, problems
from shared.domain.partners import (
    RETRY_FOR_SECONDS,
    Partner,
    classify,
    idempotency_key,
    order_document,
    retry_delay,
    signature,
    split_order,
    verify_signature,
)

ACME = """name: Acme 3PL
match:
  sku_prefixes: [ACME-]
  tags: [bulky]
endpoint:
  orders: https://api.acme.example/orders
auth:
  type: api_key
  header: X-Acme-Key
"""


def partner(pid: str, **match: list[str]) -> Partner:
    return Partner(id=pid, match=match, endpoint={"orders": "https://p.example/orders"})


def test_each_item_goes_to_one_partner_and_the_rest_stays_with_the_store() -> None:
    items = [
        {"sku": "ACME-1"},
        {"sku": "X-2", "vendor": "globex"},
        {"sku": "X-3", "tags": ["Bulky"]},
        {"sku": "OWN-1"},
        {"sku": "ACME-9", "vendor": "Globex"},  # both match: the first partner by id
    ]
    parts = split_order(
        items,
        [partner("globex", vendors=["Globex"]), partner("acme", sku_prefixes=["ACME-"], tags=["bulky"])],
    )
    assert [(p.partner_id, [i["sku"] for i in p.items]) for p in parts] == [
        ("acme", ["ACME-1", "X-3", "ACME-9"]),
        ("globex", ["X-2"]),
    ]


def test_a_signature_verifies_only_for_the_same_secret_body_and_a_fresh_timestamp() -> None:
    body = b'{"order_id":"1"}'
    sig = signature("s3cret", 1_800_000_000, body)
    assert verify_signature("s3cret", "1800000000", sig, body, 1_800_000_100) is None
    assert verify_signature("other", "1800000000", sig, body, 1_800_000_100) == "signature does not match"
    assert (
        verify_signature("s3cret", "1800000000", sig, body + b" ", 1_800_000_100)
        == "signature does not match"
    )
    assert "window" in str(verify_signature("s3cret", "1800000000", sig, body, 1_800_000_000 + 301))
    assert "missing" in str(verify_signature("s3cret", None, sig, body, 1_800_000_000))
    assert "Unix seconds" in str(verify_signature("s3cret", "yesterday", sig, body, 1_800_000_000))


def test_retries_back_off_for_24_hours_then_stop() -> None:
    first = 1_000_000.0
    t, delays = first, []
    n = 1
    while (d := retry_delay(n, first, t)) is not None:
        delays.append(d)
        t += d
        n += 1
    assert delays[:4] == [30, 60, 120, 300] and max(delays) == 7200
    assert t <= first + RETRY_FOR_SECONDS < t + 7200
    assert retry_delay(1, first, first, retry_after=600) == 600  # the partner's Retry-After wins


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "accepted"),
        (201, "accepted"),
        (409, "accepted"),
        (None, "retry"),
        (429, "retry"),
        (503, "retry"),
        (400, "rejected"),
        (401, "rejected"),
        (422, "rejected"),
    ],
)
def test_what_an_answer_means(status: int | None, outcome: str) -> None:
    assert classify(status) == outcome


def test_the_order_document_keeps_what_shipping_needs_and_a_stable_key() -> None:
    doc = order_document(
        action="create", store_id="s", order_id="o-1", partner_id="acme",
        items=[{"sku": "ACME-1", "quantity": 2, "price": 10, "image_url": "x"}],
        properties={"currency": "EUR", "shipping_address": {"city": "Bristol"}}, placed_at="2026-12-01T00:00:00.000Z",
    )  # fmt: skip
    assert doc["items"] == [{"sku": "ACME-1", "quantity": 2, "price": 10}]
    assert doc["shipping_address"] == {"city": "Bristol"}
    assert (
        doc["idempotency_key"]
        == idempotency_key("s", "o-1", "acme", "create")
        != idempotency_key("s", "o-1", "acme", "cancel")
    )


def test_a_good_partner_file_parses() -> None:
    p = parse(ACME, expected_id="acme")
    assert p.auth.header == "X-Acme-Key" and p.secret_keys() == ("api_key", "signing_secret")


def test_a_secret_in_the_file_is_refused_with_its_line_and_where_it_belongs() -> None:
    found = problems(ACME + "  api_key: abc123\n", "partners/demo/acme.yaml")
    assert len(found) == 1 and found[0][0] == 10
    assert "auth.api_key" in found[0][1] and "boomerang partners secret" in found[0][1]


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (("https://api.acme.example/orders", "ftp://api.acme.example/orders"), 6, "https://"),
        (("type: api_key", "type: apikey"), 8, "auth.type"),
        (("  tags: [bulky]\n", "  tags: [bulky]\n  colour: [red]\n"), 5, "unknown field"),
    ],
)
def test_mistakes_are_named_with_their_line(change: tuple[str, str], line: int, words: str) -> None:
    found = problems(ACME.replace(*change), "partners/demo/acme.yaml")
    assert found and found[0][0] == line and words in found[0][1], found


def test_a_template_payload_must_compile() -> None:
    text = ACME + 'payload: template\ntemplate: |\n  {"id": {{ order.order_id | tojson }\n'
    found = problems(text, "partners/demo/acme.yaml")
    assert found and found[0][1].startswith("template:")


def test_rate_windows_never_allow_more_than_the_partner_takes() -> None:
    from shared.domain.partners import rate_window

    assert rate_window(2, 100.25) == (100, 2, 0.75)  # 2 a second, in 1-second windows
    assert rate_window(0.2, 103.0) == (100, 1, 2.0)  # 1 per 5 s
    assert rate_window(0.3, 10.0) == (8, 1, 2.0)  # 1 per 4 s (0.25/s), never 2 per 4 s (0.5/s)
    assert rate_window(1.5, 7.5) == (7, 1, 0.5)  # 1.5/s -> 1 a second, not 2
