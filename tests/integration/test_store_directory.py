"""Stores are listed from the sparse `stores` index, for the scheduled runs."""

from __future__ import annotations

from shared.adapters.store_directory import StoreDirectory
from shared.platform.aws import client
from tests.aws_fixtures import STORE, World


def test_every_store_is_listed_by_a_query_and_reads_back_unchanged(world: World) -> None:
    directory = StoreDirectory(client("dynamodb"), world.table)
    for n in range(3):
        directory.put(STORE.model_copy(update={"store_id": f"shop-extra-{n}"}))
    assert sorted(directory.store_ids()) == ["shop-1", "shop-extra-0", "shop-extra-1", "shop-extra-2"]
    found = directory.get("shop-1")
    assert found is not None and (found.name, found.url) == (
        STORE.name,
        STORE.url,
    )  # the listing attribute is not a field
