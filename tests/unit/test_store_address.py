"""The store's postal address: validated with errors that say what is allowed, and written as the
footer of marketing email shows it (CAN-SPAM requires a valid physical postal address)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shared.domain.stores import PostalAddress, Store

STORE: dict[str, Any] = {
    "store_id": "shop-1",
    "name": "Acme Outdoor",
    "url": "https://shop.example.com/",
    "sender_email": "hello@shop.example.com",
}


@pytest.mark.parametrize(
    ("address", "lines"),
    [
        (
            {"lines": ["1 Harbour Street"], "city": "Bristol", "postal_code": "BS1 4AA", "country": "gb"},
            ["1 Harbour Street", "Bristol BS1 4AA", "United Kingdom"],
        ),
        (
            {
                "lines": ["100 Main St", "Suite 5"],
                "city": "Springfield",
                "region": "IL",
                "postal_code": "62701",
                "country": "US",
            },
            ["100 Main St", "Suite 5", "Springfield, IL 62701", "United States"],
        ),
        (
            {"lines": ["ul. Marszałkowska 1"], "city": "Warszawa", "postal_code": "00-001", "country": "PL"},
            ["ul. Marszałkowska 1", "00-001 Warszawa", "Poland"],
        ),
        ({"lines": ["PO Box 12"], "city": "Dublin", "country": "IE"}, ["PO Box 12", "Dublin", "Ireland"]),
    ],
)
def test_address_is_written_the_way_its_country_writes_it(address: dict[str, Any], lines: list[str]) -> None:
    postal = PostalAddress.model_validate(address)
    assert postal.formatted_lines() == lines
    assert postal.one_line() == ", ".join(lines)


@pytest.mark.parametrize(
    ("address", "field", "allowed"),
    [
        ({"lines": [], "city": "Bristol", "country": "GB"}, "lines", "at least 1 item"),
        ({"lines": ["a", "b", "c", "d"], "city": "Bristol", "country": "GB"}, "lines", "at most 3 items"),
        ({"lines": ["1 <b>High</b> St"], "city": "Bristol", "country": "GB"}, "lines", "without < or >"),
        ({"lines": ["   "], "city": "Bristol", "country": "GB"}, "lines", "1 to 100 printable characters"),
        ({"lines": ["1 High St"], "city": "", "country": "GB"}, "city", "at least 1 character"),
        ({"lines": ["1 High St"], "city": "Bristol", "country": "United Kingdom"}, "country", "e.g. GB, US"),
        ({"lines": ["1 High St"], "city": "Bristol", "country": "ZZ"}, "country", "ISO 3166-1 alpha-2"),
        (
            {"lines": ["1 High St"], "city": "Bristol", "postal_code": "BS1/4AA", "country": "GB"},
            "postal_code",
            "should match pattern",
        ),
        ({"lines": ["1 High St"], "city": "Bristol", "country": "GB", "zip": "x"}, "zip", "not permitted"),
        ({"lines": ["1 High St"], "city": "Bristol"}, "country", "Field required"),
    ],
)
def test_bad_address_names_the_field_and_what_is_allowed(
    address: dict[str, Any], field: str, allowed: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Store.model_validate({**STORE, "address": address})
    (error,) = caught.value.errors()
    assert error["loc"][:2] == ("address", field)
    assert allowed in error["msg"]


def test_templates_see_the_address_on_one_line_and_line_by_line() -> None:
    store = Store.model_validate(
        {
            **STORE,
            "address": {
                "lines": ["1 Harbour Street"],
                "city": "Bristol",
                "postal_code": "BS1 4AA",
                "country": "GB",
            },
        }
    )
    assert store.template_vars() == {
        "name": "Acme Outdoor",
        "url": "https://shop.example.com",
        "address": "1 Harbour Street, Bristol BS1 4AA, United Kingdom",
        "address_lines": ["1 Harbour Street", "Bristol BS1 4AA", "United Kingdom"],
    }
    # a store record saved before addresses existed still loads (marketing email then waits for one)
    assert Store.model_validate(STORE).template_vars()["address"] is None
