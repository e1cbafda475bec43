"""The e2e log scan (tests/e2e/log_scan.py) finds the values a run sent, and only those."""

from __future__ import annotations

import json

from tests.e2e import log_scan


def test_the_scan_finds_emails_phones_and_names_in_any_form() -> None:
    log_scan.remember(
        json.dumps(
            {
                "batch": [
                    {
                        "traits": {
                            "email": "Zed.Unit@Example.com",
                            "first_name": "Zedekiah",
                            "phone": "+48 601 999 321",
                        },
                        "properties": {"products": [{"name": "Compass"}]},
                    }
                ]
            }
        ).encode()
    )
    assert log_scan.hits('{"message": "sent", "to": "zed.unit@example.com"}') == [
        "email zed.unit@example.com"
    ]
    assert log_scan.hits("number: 'Zedekiah' is not a number") == ["name Zedekiah"]
    assert log_scan.hits("SNS publish to +48601999321 failed") == ["phone +48 601 999 321"]
    assert log_scan.hits("Zedekiahs and 48601999 are other words") == []
    assert log_scan.hits("product Compass") == []  # a product's name is no customer's
