"""At send time, a store's template that fails for one customer (too slow, or an error that quotes
their name) gives way to the template Boomerang ships; the step records why, and nothing the
customer typed reaches the logs or the record (issue 16, items 2 and 4)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from moto.ses.models import ses_backends

from functions.journey_step.handler import handler
from shared.platform.aws import client
from shared.services.journeys.template_fallback import forget_slow_templates
from shared.templates.publish import validate_change
from tests.aws_fixtures import ACCOUNT, REGION, FixedClock, LambdaContext, World, canonical
from tests.events import load_event

FOLDER = "templates/shop-1/cart-abandoned/"
# Both pass the validator: none of its sample customers is called Yolanda.
NUMBER_OF_A_NAME = '{% if customer.first_name == "Yolanda" %}{{ customer.first_name|number }}{% endif %}'
SLOW_FOR_ONE = (
    '{% if customer.first_name == "Yolanda" %}{% for i in range(100000) %}{% for j in range(100000) %}'
    "{% endfor %}{% endfor %}{% endif %}"
)


def store_template(world: World, body: str) -> None:
    s3 = client("s3")
    files = {
        "subject.txt": "Your cart at {{ store.name }}",
        "body.txt": '{% extends "layout.txt" %}{% block content %}Your cart is waiting.{% endblock %}',
        "body.html": '{% extends "layout.html" %}{% block content %}<p>Store version'
        + body
        + "</p>{% endblock %}",
    }
    for name, text in files.items():
        s3.put_object(Bucket=world.bucket, Key=FOLDER + name, Body=text.encode())
    assert validate_change(s3, world.bucket, FOLDER + "body.html").status == "active"


def yolanda_left_her_cart(world: World, t0: float) -> None:
    identify = load_event("identify_with_consent")
    identify["traits"]["firstName"] = "Yolanda"
    for raw, at in ((identify, t0 - 300), (load_event("product_added"), t0)):
        [event] = canonical([raw], at)
        assert world.profiles().apply(event).status == "applied"


def run_step(ctx: LambdaContext, t0: float) -> dict[str, Any]:
    state = {"store_id": "shop-1", "journey": "cart-abandonment", "instance": "cart-42", "generation": 0}
    result: dict[str, Any] = handler({**state, "step": 0, "started_at": t0, "wait_seconds": 0}, ctx)
    return result


@pytest.fixture(autouse=True)
def _fresh() -> None:
    forget_slow_templates()


@pytest.mark.parametrize(
    "body, reason",
    [(NUMBER_OF_A_NAME, "ValueError: number: '…' is not a number"), (SLOW_FOR_ONE, "too much work")],
    ids=["error quoting the name", "slow for one customer"],
)
def test_a_failing_store_template_gives_way_to_the_shipped_one(
    world: World,
    ctx: LambdaContext,
    fixed_clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    body: str,
    reason: str,
) -> None:
    # Given the store's own cart email, which fails for Yolanda only
    store_template(world, body)
    t0 = fixed_clock.now
    yolanda_left_her_cart(world, t0)
    fixed_clock.advance(3600)

    # When her reminder is due
    with caplog.at_level(logging.INFO):  # what a Lambda logs (botocore debug would print every request)
        out = run_step(ctx, t0)

    # Then she gets the email Boomerang ships, on time
    sent = out["events"][0]
    assert sent["type"] == "sent"
    [message] = ses_backends[ACCOUNT][REGION].sent_messages
    assert "Store version" not in message.raw_data
    assert "Yolanda, you left something in your cart" in message.raw_data
    # And the step's record says which template failed, where and why, and that the default went out
    assert sent["reason"].startswith("email: the store's template failed (cart-abandoned/body.html:1: ")
    assert reason in sent["reason"] and sent["reason"].endswith("; sent the default")
    # And her name is nowhere in the logs or the record (the error quoted it)
    logs = caplog.text + capsys.readouterr().out
    assert "store template failed; sent the shipped default" in logs
    assert "Yolanda" not in logs and "Yolanda" not in sent["reason"]
