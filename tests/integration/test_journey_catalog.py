"""JourneyCatalog on moto's versioned templates bucket: store files override defaults, `enabled: false`
turns one off, and a broken newer version never replaces the last valid one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.journey_catalog import JourneyCatalog
from shared.platform.aws import client
from tests.aws_fixtures import World

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = sorted(p.stem for p in (ROOT / "infra" / "journeys").glob("*.yaml"))
STORE_WELCOME = "journeys/shop-1/welcome.yaml"

# the shipped welcome with a 3-day (not 2-day) second step
WELCOME_3D = (ROOT / "infra" / "journeys" / "welcome.yaml").read_text().replace("after: 2d", "after: 3d")
# the same with a typo'd field on line 24 (the brand-story step starting on line 22)
WELCOME_TYPO = WELCOME_3D.replace("    template: brand-story", "    templat: brand-story")
WELCOME_4D = WELCOME_3D.replace("after: 3d", "after: 4d")
DAY = 86400


@pytest.fixture
def s3(world: World) -> Any:
    return client("s3")


def put(s3: Any, world: World, key: str, body: str) -> str:
    return str(s3.put_object(Bucket=world.bucket, Key=key, Body=body.encode())["VersionId"])


def ids(catalog: JourneyCatalog, store: str) -> list[str]:
    return sorted(j.id for j in catalog.journeys(store))


def test_the_test_files_differ_where_intended() -> None:
    assert "after: 3d" in WELCOME_3D and "templat: brand-story" in WELCOME_TYPO
    assert WELCOME_TYPO.splitlines()[23] == "    templat: brand-story"


def test_a_store_without_files_runs_the_eleven_defaults(world: World, s3: Any) -> None:
    catalog = JourneyCatalog(s3, world.bucket)
    assert len(DEFAULTS) == 11  # with shipping-updates (issue 14)
    assert ids(catalog, "shop-1") == DEFAULTS
    welcome = catalog.get("shop-1", "welcome")
    assert welcome is not None and [s.after for s in welcome.steps] == [0, 2 * DAY, 5 * DAY]
    loaded = catalog.loaded("shop-1")["welcome"]
    assert (loaded.key, loaded.rejected) == ("journeys/_default/welcome.yaml", [])
    assert catalog.get("shop-1", "no-such-journey") is None


def test_the_built_in_confirmation_journey_is_always_there(world: World, s3: Any) -> None:
    catalog = JourneyCatalog(s3, world.bucket)
    confirmation = catalog.get("shop-1", "email-confirmation")
    assert confirmation is not None and confirmation.kind == "transactional"
    assert "email-confirmation" not in ids(catalog, "shop-1")  # not a file, so not listed


def test_a_store_file_overrides_the_default_for_that_store_only(world: World, s3: Any) -> None:
    version = put(s3, world, STORE_WELCOME, WELCOME_3D)
    catalog = JourneyCatalog(s3, world.bucket)

    mine = catalog.get("shop-1", "welcome")
    assert mine is not None and [s.after for s in mine.steps] == [0, 3 * DAY, 5 * DAY]
    assert (catalog.loaded("shop-1")["welcome"].key, catalog.loaded("shop-1")["welcome"].version_id) == (
        STORE_WELCOME,
        version,
    )
    assert ids(catalog, "shop-1") == DEFAULTS  # replaced, not added

    theirs = catalog.get("shop-2", "welcome")
    assert theirs is not None and [s.after for s in theirs.steps] == [0, 2 * DAY, 5 * DAY]


def test_enabled_false_turns_a_default_off_for_that_store_only(world: World, s3: Any) -> None:
    put(s3, world, STORE_WELCOME, "# no welcome series here\nenabled: false\n")
    catalog = JourneyCatalog(s3, world.bucket)

    assert ids(catalog, "shop-1") == [i for i in DEFAULTS if i != "welcome"]
    assert catalog.get("shop-1", "welcome") is None
    loaded = catalog.loaded("shop-1")["welcome"]
    assert (loaded.item, loaded.key, loaded.rejected) == (None, STORE_WELCOME, [])
    assert ids(catalog, "shop-2") == DEFAULTS


def test_a_store_can_add_a_journey_of_its_own(world: World, s3: Any) -> None:
    put(
        s3,
        world,
        "journeys/shop-1/vip-thanks.yaml",
        "trigger:\n  event: Order Completed\n  where:\n    total: {gte: 500}\nsteps:\n  - id: thanks\n"
        "    template: vip-thanks\n",
    )
    put(s3, world, "journeys/shop-1/nested/ignored.yaml", "enabled: false\n")  # not directly under the store
    put(s3, world, "journeys/shop-1/notes.txt", "not a journey")
    catalog = JourneyCatalog(s3, world.bucket)
    assert ids(catalog, "shop-1") == sorted([*DEFAULTS, "vip-thanks"])
    assert ids(catalog, "shop-2") == DEFAULTS


def test_a_broken_newer_version_leaves_the_last_valid_one_in_force(world: World, s3: Any) -> None:
    catalog = JourneyCatalog(s3, world.bucket, ttl_seconds=0)
    good = put(s3, world, STORE_WELCOME, WELCOME_3D)
    broken = put(s3, world, STORE_WELCOME, WELCOME_TYPO)

    welcome = catalog.get("shop-1", "welcome")
    assert welcome is not None and welcome.steps[1].after == 3 * DAY  # the store's, not the default's 2d
    loaded = catalog.loaded("shop-1")["welcome"]
    assert (loaded.key, loaded.version_id) == (STORE_WELCOME, good)
    assert loaded.rejected == [
        (
            broken,
            [
                (22, "steps[1].template: Field required"),
                (
                    24,
                    "steps[1].templat: unknown field (check the spelling; see the README for the journey file format)",
                ),
            ],
        )
    ]

    fixed = put(s3, world, STORE_WELCOME, WELCOME_4D)
    welcome = catalog.get("shop-1", "welcome")
    assert welcome is not None and welcome.steps[1].after == 4 * DAY
    loaded = catalog.loaded("shop-1")["welcome"]
    assert (loaded.version_id, loaded.rejected) == (fixed, [])


def test_several_broken_versions_are_all_reported_newest_first(world: World, s3: Any) -> None:
    catalog = JourneyCatalog(s3, world.bucket, ttl_seconds=0)
    good = put(s3, world, STORE_WELCOME, WELCOME_3D)
    first_bad = put(s3, world, STORE_WELCOME, WELCOME_TYPO)
    second_bad = put(s3, world, STORE_WELCOME, "trigger:\n\tevent: Signed Up\n")

    loaded = catalog.loaded("shop-1")["welcome"]
    assert loaded.version_id == good
    assert [v for v, _ in loaded.rejected] == [second_bad, first_bad]
    assert loaded.rejected[0][1] == [(2, "not valid YAML: found character '\\t' that cannot start any token")]


def test_the_cache_hides_an_edit_until_its_ttl_passes(world: World, s3: Any) -> None:
    now = [1000.0]
    catalog = JourneyCatalog(s3, world.bucket, ttl_seconds=60, clock=lambda: now[0])
    before = catalog.get("shop-1", "welcome")
    assert before is not None and before.steps[1].after == 2 * DAY
    put(s3, world, STORE_WELCOME, WELCOME_3D)

    now[0] += 59
    cached = catalog.get("shop-1", "welcome")
    assert cached is not None and cached.steps[1].after == 2 * DAY
    now[0] += 1
    fresh = catalog.get("shop-1", "welcome")
    assert fresh is not None and fresh.steps[1].after == 3 * DAY


def test_a_reload_reads_only_the_files_whose_etag_changed(world: World, s3: Any) -> None:
    gets: list[str] = []
    s3.meta.events.register(
        "provide-client-params.s3.GetObject", lambda params, **_: gets.append(params["Key"])
    )
    now = [1000.0]
    catalog = JourneyCatalog(s3, world.bucket, ttl_seconds=60, clock=lambda: now[0])
    assert len(catalog.journeys("shop-1")) == len(DEFAULTS)
    assert len(gets) == len(DEFAULTS)  # every default, once
    gets.clear()
    now[0] += 60
    assert len(catalog.journeys("shop-1")) == len(DEFAULTS)
    assert gets == []  # the listing's ETags say nothing changed: two List calls, no reads
    put(s3, world, STORE_WELCOME, WELCOME_3D)
    now[0] += 60
    fresh = catalog.get("shop-1", "welcome")
    assert fresh is not None and fresh.steps[1].after == 3 * DAY
    assert gets == [STORE_WELCOME]


def test_a_store_file_that_never_validated_leaves_the_default_in_force(world: World, s3: Any) -> None:
    # _load_file returns None when no version validates, and _load then keeps the default already
    # found under the same name: the store's broken override is ignored (and logged), not an off switch
    put(s3, world, STORE_WELCOME, WELCOME_TYPO)
    catalog = JourneyCatalog(s3, world.bucket, ttl_seconds=0)

    welcome = catalog.get("shop-1", "welcome")
    assert welcome is not None and welcome.steps[1].after == 2 * DAY  # the default's
    loaded = catalog.loaded("shop-1")["welcome"]
    assert (loaded.key, loaded.rejected) == ("journeys/_default/welcome.yaml", [])
    assert ids(catalog, "shop-1") == DEFAULTS


def test_a_new_store_journey_that_never_validated_is_not_run(world: World, s3: Any) -> None:
    put(s3, world, "journeys/shop-1/vip-thanks.yaml", "trigger:\n  event: Order Complete\nsteps: []\n")
    catalog = JourneyCatalog(s3, world.bucket, ttl_seconds=0)
    assert catalog.get("shop-1", "vip-thanks") is None
    assert "vip-thanks" not in catalog.loaded("shop-1")
    assert ids(catalog, "shop-1") == DEFAULTS


def test_a_badly_named_off_switch_does_not_break_the_stores_other_journeys(world: World, s3: Any) -> None:
    put(s3, world, "journeys/shop-1/Welcome_Series.yaml", "enabled: false\n")
    catalog = JourneyCatalog(s3, world.bucket, ttl_seconds=0)
    assert ids(catalog, "shop-1") == DEFAULTS


def test_an_s3_outage_is_an_error_to_retry_never_an_empty_catalog(world: World, s3: Any) -> None:
    from botocore.exceptions import ClientError

    catalog = JourneyCatalog(s3, world.bucket, ttl_seconds=0)

    def slow_down(**_: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "SlowDown", "Message": "Reduce your request rate."}}, "GetObject"
        )

    original = s3.get_object
    s3.get_object = slow_down
    try:
        with pytest.raises(ClientError):
            catalog.journeys("shop-1")
    finally:
        s3.get_object = original
    assert ids(catalog, "shop-1") == DEFAULTS


def test_the_validator_refuses_a_journey_naming_a_segment_the_store_does_not_have(
    world: World, s3: Any
) -> None:
    from shared.templates.publish import validate_change

    text = (
        "name: Sale\n"
        "trigger:\n"
        "  broadcast:\n"
        "    segment: champs\n"
        "    day: 2026-11-27\n"
        "entry:\n"
        "  segments_any: [loyal, vips]\n"
        "steps:\n"
        "  - id: a\n"
        "    template: flash-sale\n"
    )
    key = "journeys/shop-1/sale.yaml"
    version = s3.put_object(Bucket=world.bucket, Key=key, Body=text.encode())["VersionId"]
    outcome = validate_change(s3, world.bucket, key, version_id=version)
    assert outcome.status == "rejected"
    found = [(p.line, p.message) for p in outcome.problems]
    assert found == [
        (
            4,
            "trigger.broadcast.segment: no segment 'champs' in this store (segments: at-risk, champions, "
            "churned, first-time-buyers, lapsed-vips, loyal, new-subscribers, window-shoppers)",
        ),
        (
            7,
            "entry.segments_any[1]: no segment 'vips' in this store (segments: at-risk, champions, churned, "
            "first-time-buyers, lapsed-vips, loyal, new-subscribers, window-shoppers)",
        ),
    ]

    # a segment of the store's own makes the same names valid
    for segment in ("champs", "vips"):
        s3.put_object(
            Bucket=world.bucket,
            Key=f"segments/shop-1/{segment}.yaml",
            Body=b"name: X\nlifecycle: [repeat-buyer]\n",
        )
    assert validate_change(s3, world.bucket, key, version_id=version).status == "checked"


def test_the_validator_reports_a_broken_segment_file_with_its_line(world: World, s3: Any) -> None:
    from shared.templates.publish import validate_changes

    key = "segments/shop-1/vips.yaml"
    version = s3.put_object(Bucket=world.bucket, Key=key, Body=b"name: VIPs\nrfm:\n  m: {gte: 9}\n")[
        "VersionId"
    ]
    notes: list[tuple[str, str]] = []
    [outcome] = validate_changes(
        s3, world.bucket, [(key, version)], notify=lambda s, b: notes.append((s, b))
    ).values()
    assert outcome.status == "rejected"
    [problem] = outcome.problems
    assert (problem.line, problem.message) == (3, "rfm: m: no score is >= 9 (RFM scores are 1 to 5)")
    assert notes and notes[0][0] == f"Boomerang: {key} was rejected"
    report = json.loads(s3.get_object(Bucket=world.bucket, Key=f"reports/{key}.json")["Body"].read())
    assert report["status"] == "rejected"
