"""`boomerang stores` on moto: add, list, rotate-key with a grace period, set, remove; keys never move."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from functions.ingest.handler import handler
from infra.stores_cli import main
from shared.adapters.store_directory import KeyInUse, StoreDirectory
from shared.platform import keys
from shared.platform.aws import client
from tests.aws_fixtures import API_KEY, STORE, LambdaContext, World, api_request, basic_auth
from tests.events import load_event

ADD = [
    "stores", "add", "my-shop", "--name", "My Shop", "--url", "https://my-shop.example",
    "--sender-email", "hello@my-shop.example", "--address-line", "1 Main Street", "--city", "Springfield",
    "--address-region", "IL", "--postal-code", "62701", "--country", "US",
]  # fmt: skip


def run(world: World, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([*argv, "--table", world.table], out, err, io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


def key_from(out: str) -> str:
    return out.rsplit(": ", 1)[1].strip().splitlines()[0]


def accepted(ctx: LambdaContext, key: str) -> int:
    result = handler(api_request("POST", "/v1/track", load_event("product_added"), basic_auth(key)), ctx)
    return int(result["statusCode"])


def test_add_prints_the_key_once_stores_only_its_hash_and_the_key_works(
    world: World, ctx: LambdaContext
) -> None:
    code, out, err = run(world, *ADD)
    assert (code, err) == (0, "")
    key = key_from(out)
    assert key.startswith("bk_")
    items = client("dynamodb").scan(TableName=world.table)["Items"]
    assert key not in json.dumps(items)  # only the hash
    assert any(i["pk"]["S"] == keys.api_key_pk(keys.hash_api_key(key)) for i in items)
    assert accepted(ctx, key) == 200
    # the same id again is refused, naming what to do instead
    code, _, err = run(world, *ADD)
    assert code == 1 and "stores set my-shop" in err


def test_add_with_a_bad_field_names_it_and_writes_nothing(world: World) -> None:
    before = client("dynamodb").scan(TableName=world.table)["Count"]
    code, _, err = run(world, *ADD[:-2], "--country", "XX")
    assert code == 1 and "address.country" in err and "ISO 3166-1" in err
    assert client("dynamodb").scan(TableName=world.table)["Count"] == before


def test_list_shows_fingerprints_never_keys_or_secrets(world: World) -> None:
    _, out, _ = run(world, *ADD)
    key = key_from(out)
    run(world, "stores", "set", "my-shop", "--shopify-secret", "-", stdin="shpss_topsecret\n")
    code, out, _ = run(world, "stores", "list", "--json")
    rows = {r["store"]: r for r in json.loads(out)}
    assert code == 0 and set(rows) == {"shop-1", "my-shop"}
    assert rows["my-shop"]["keys"] == keys.hash_api_key(key)[:12]
    assert rows["my-shop"]["webhooks"] == "shopify"
    assert key not in out and "shpss_topsecret" not in out


def test_rotate_key_keeps_the_old_key_for_the_grace_period_only(
    world: World, ctx: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the fixture store's key in use
    assert accepted(ctx, API_KEY) == 200
    # When it is rotated with an hour's grace
    code, out, _ = run(world, "stores", "rotate-key", "shop-1", "--grace", "1h")
    assert code == 0 and "keep working for 1h" in out
    new_key = key_from(out)
    # Then both keys work now
    assert accepted(ctx, new_key) == 200 and accepted(ctx, API_KEY) == 200
    directory = StoreDirectory(client("dynamodb"), world.table, ttl_seconds=0)
    [old, new] = directory.keys_of("shop-1")
    assert old.expires_at is not None and 3590 < old.expires_at - time.time() <= 3600
    assert new.expires_at is None
    # And once the hour is over the old key is refused (the lookup checks, not only DynamoDB's TTL)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3601)
    assert directory.store_id_for_key(API_KEY) is None
    assert directory.store_id_for_key(new_key) == "shop-1"


def test_rotate_with_no_grace_stops_the_old_key_now(world: World) -> None:
    code, out, _ = run(world, "stores", "rotate-key", "shop-1", "--grace", "0s")
    assert code == 0 and "stop working within a minute" in out
    directory = StoreDirectory(client("dynamodb"), world.table, ttl_seconds=0)
    assert directory.store_id_for_key(API_KEY) is None
    assert directory.store_id_for_key(key_from(out)) == "shop-1"


def test_a_key_of_another_store_is_refused_and_nothing_moves(world: World) -> None:
    directory = StoreDirectory(client("dynamodb"), world.table, ttl_seconds=0)
    other = STORE.model_copy(update={"store_id": "shop-2"})
    with pytest.raises(KeyInUse):
        directory.put(other, API_KEY)
    assert directory.store_id_for_key(API_KEY) == "shop-1"
    assert directory.get("shop-2") is None  # the whole write was refused
    directory.put(STORE, API_KEY)  # re-putting a store's own key is fine


def test_set_changes_settings_and_keeps_the_rest(world: World, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "delivery:\n  cap: {max_per_day: 2, max_per_week: 5}\nretention: {at_risk_min_days: 30}\n"
    )
    code, out, err = run(
        world, "stores", "set", "shop-1", "--timezone", "Europe/Warsaw", "--settings", str(policy)
    )
    directory = StoreDirectory(client("dynamodb"), world.table, ttl_seconds=0)
    store = directory.get("shop-1")
    assert code == 0, err
    assert store is not None and store.timezone == "Europe/Warsaw" and store.name == STORE.name
    assert store.retention.at_risk_min_days == 30
    assert directory.store_id_for_key(API_KEY) == "shop-1"  # no new key, the old one still works


def test_set_refuses_bad_input_before_writing_anything(world: World, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("quiet: yes\n")
    code, _, err = run(world, "stores", "set", "shop-1", "--settings", str(bad))
    assert code == 1 and "unknown store setting quiet" in err and "allowed:" in err
    code, _, err = run(
        world, "stores", "set", "shop-1", "--timezone", "Mars/Olympus", "--shopify-secret", "ok-secret"
    )
    assert code == 1 and "timezone" in err
    directory = StoreDirectory(client("dynamodb"), world.table, ttl_seconds=0)
    assert directory.webhook_secret("shop-1", "shopify") is None  # not half-written


def test_set_webhook_secret_prints_the_url_and_no_secret_and_can_remove_it(world: World) -> None:
    code, out, _ = run(world, "stores", "set", "shop-1", "--woocommerce-secret", "wc-s3cret")
    assert code == 0 and "v1/webhooks/woocommerce/shop-1" in out and "wc-s3cret" not in out
    directory = StoreDirectory(client("dynamodb"), world.table, ttl_seconds=0)
    assert directory.webhook_secret("shop-1", "woocommerce") == "wc-s3cret"
    run(world, "stores", "set", "shop-1", "--no-woocommerce-secret")
    assert directory.webhook_secret("shop-1", "woocommerce") is None


def test_remove_needs_yes_and_then_every_key_stops(world: World, ctx: LambdaContext) -> None:
    assert run(world, "stores", "remove", "shop-1")[0] == 1
    run(world, "stores", "set", "shop-1", "--shopify-secret", "x-secret")
    code, out, _ = run(world, "stores", "remove", "shop-1", "--yes")
    assert code == 0 and "removed" in out
    directory = StoreDirectory(client("dynamodb"), world.table, ttl_seconds=0)
    assert directory.get("shop-1") is None and directory.store_id_for_key(API_KEY) is None
    assert directory.webhook_secret("shop-1", "shopify") is None
    assert "shop-1" not in directory.store_ids()


def test_unknown_store_and_no_target_are_clear_errors(world: World) -> None:
    code, _, err = run(world, "stores", "rotate-key", "nope-shop")
    assert code == 1 and "no store 'nope-shop'" in err
    out, err_io = io.StringIO(), io.StringIO()
    assert main(["stores", "list"], out, err_io) == 1
    assert "--local" in err_io.getvalue() and "--table" in err_io.getvalue()
