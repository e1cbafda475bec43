"""`python -m tests.bench forms`: the signup pop-up's script size, and a submission's cost.

1. `boomerang.js` as stored, as served (trimmed) and gzip'd (what a store's visitors download);
2. one submission through the ingest λ on in-process moto: time per submission (moto stands in for
   AWS, so read it as handler overhead) and the AWS calls each makes (the rate counters' UpdateItems,
   one PutEvents; the key and the store are cached reads), priced at us-east-1 list prices.
A benchmark: it asserts nothing.
"""

from __future__ import annotations

import gzip
import json
import os
import statistics
import time
from collections import Counter
from typing import Any

DDB_WRU = 0.625 / 1e6  # on-demand write request unit (1 KB)
PUT_EVENTS = 1.0 / 1e6  # per 64 KB chunk
REST_API = 3.50 / 1e6


def script_sizes() -> dict[str, int]:
    from shared.services.forms.script import SCRIPT_PATH, script

    source = SCRIPT_PATH.read_bytes()
    served = script().body.encode()
    return {
        "source": len(source),
        "served": len(served),
        "served_gzip_9": len(gzip.compress(served, compresslevel=9)),
        "served_gzip_6": len(gzip.compress(served, compresslevel=6)),
    }


def submissions(n: int = 100) -> dict[str, Any]:
    from moto import mock_aws

    from shared.adapters.form_keys import FormKeys
    from shared.adapters.store_directory import StoreDirectory
    from shared.domain.forms import FormConfig
    from shared.platform.aws import client, reset_clients
    from shared.platform.settings import settings
    from shared.services import wiring
    from tests.aws_fixtures import FAKE_CREDENTIALS, LambdaContext, api_request, create_world

    os.environ.update(FAKE_CREDENTIALS)
    origin = "https://shop.example.com"
    form = FormConfig.model_validate(
        {
            "fields": {"email": "required", "first_name": "optional"},
            "consent": {"email": {"en": "Email me news and offers. Unsubscribe any time."}},
            "texts": {"en": {"title": "Join us"}},
            "allowed_origins": [origin],
            "limits": {"per_ip_per_hour": 10_000, "per_store_per_minute": 100_000},
        }
    )
    with mock_aws():
        world = create_world()
        os.environ.update(world.env())
        settings.cache_clear()
        reset_clients()
        wiring.reset()
        from functions.ingest.handler import handler

        ddb = client("dynamodb")
        StoreDirectory(ddb, world.table).put(world.store.model_copy(update={"form": form}))
        key = FormKeys(ddb, world.table).issue(world.store.store_id)
        calls: Counter[str] = Counter()
        for c in (client("dynamodb"), client("events")):
            c.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))
        ctx = LambdaContext()
        times = []
        for i in range(n + 1):
            body = {
                "email": f"visitor{i}@example.com",
                "first_name": "Ada",
                "consent": {"email": True},
                "locale": "en",
                "page_url": origin + "/",
                "anonymous_id": f"anon-{i}",
                "submission_id": f"bench-sub-{i:06d}",
            }
            event = api_request("POST", f"/v1/forms/{key}/submit", body, {"Origin": origin})
            event["requestContext"]["identity"]["sourceIp"] = f"10.0.{i // 250}.{i % 250}"
            if i == 1:
                calls.clear()  # the first one pays the cold caches
            start = time.perf_counter()
            result = handler(event, ctx)
            if i:
                times.append(time.perf_counter() - start)
            assert result["statusCode"] == 200, result
        per = {k: v / n for k, v in calls.items()}
    return {"n": n, "median_ms": statistics.median(times) * 1000, "calls": per}


def pure_submission(n: int = 500) -> float:
    """ms per submission for the checks and the calls it becomes, without AWS (what the λ adds)."""
    from datetime import date

    from shared.domain.api_calls import normalise
    from shared.domain.forms import FormConfig, check_submission, signup_calls

    origin = "https://shop.example.com"
    form = FormConfig.model_validate(
        {
            "fields": {"email": "required", "first_name": "optional", "birthday": "optional"},
            "consent": {"email": {"en": "Email me news and offers. Unsubscribe any time."}},
            "texts": {"en": {"title": "Join us"}},
            "allowed_origins": [origin],
        }
    )
    start = time.perf_counter()
    for i in range(n):
        payload = {
            "email": f"v{i}@example.com",
            "first_name": "Ada",
            "birthday": "03-15",
            "consent": {"email": True},
            "page_url": origin + "/",
            "anonymous_id": f"anon-{i}",
            "submission_id": f"bench-sub-{i:06d}",
        }
        sub = check_submission(form, payload, origin, date(2026, 12, 3))
        normalise(signup_calls(form, sub), "s-1", 1.7e9)
    return (time.perf_counter() - start) / n * 1000


def print_forms() -> None:
    sizes = script_sizes()
    print("\nSignup form script (boomerang.js):")
    print(
        f"  source {sizes['source']:,} B; served (trimmed) {sizes['served']:,} B; "
        f"gzip -9 {sizes['served_gzip_9']:,} B, gzip -6 {sizes['served_gzip_6']:,} B"
    )
    found = submissions()
    calls = found["calls"]
    writes = calls.get("UpdateItem", 0)
    cost = writes * DDB_WRU + calls.get("PutEvents", 0) * PUT_EVENTS + REST_API
    print(
        f"  a submission through the ingest λ on moto: {found['median_ms']:.1f} ms median ({found['n']} submissions);"
        f" AWS calls each: " + ", ".join(f"{k} {v:g}" for k, v in sorted(calls.items()))
    )
    print(
        f"  without AWS (checks + the 3 calls, validated by the event API's models): {pure_submission():.2f} ms"
    )
    print(f"  API Gateway + rate counters + PutEvents: ${cost * 1e6:,.2f} per million submissions")


if __name__ == "__main__":
    print(json.dumps(script_sizes()))
