"""Each λ names the settings it cannot run without, and a deployment missing one fails saying which."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.description import FUNCTIONS, FUNCTIONS_BY_ID
from shared.platform.settings import ConfigurationError, settings
from shared.services import wiring

ROOT = Path(__file__).resolve().parents[2]

# The factory each handler calls first on an event (the validator reads settings only).
FIRST_FACTORY: dict[str, Callable[[], Any]] = {
    "ingest": wiring.ingest_directory,
    "profile": wiring.profile_store,
    "journey_trigger": wiring.trigger_deps,
    "journey_step": wiring.step_deps,
    "feedback": wiring.suppression_list,
    "template_validator": lambda: wiring.settings_for("template_validator"),
    "report": wiring.report_deps,
    "partner_forwarder": wiring.forward_deps,
    "privacy": wiring.eraser,
    "key_rotation": lambda: wiring.settings_for("key_rotation"),
}


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    wiring.reset()
    settings.cache_clear()
    yield
    wiring.reset()
    settings.cache_clear()


def _environment(function: str, monkeypatch: pytest.MonkeyPatch, without: str) -> None:
    for name in FUNCTIONS_BY_ID[function].env:
        monkeypatch.setenv(name, f"value-of-{name}")
    monkeypatch.delenv(without, raising=False)


def test_every_function_requires_only_what_its_description_provides() -> None:
    assert set(wiring.REQUIRED) == {f.id for f in FUNCTIONS} == set(FIRST_FACTORY)
    for spec in FUNCTIONS:
        assert set(wiring.REQUIRED[spec.id]) <= set(spec.env), spec.id


@pytest.mark.parametrize(
    ("function", "missing"),
    [(f, name) for f, names in wiring.REQUIRED.items() for name in names],
)
def test_a_missing_variable_fails_the_first_factory_call_naming_it(
    function: str, missing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _environment(function, monkeypatch, without=missing)
    with pytest.raises(ConfigurationError, match=rf"not set: {missing}$"):
        FIRST_FACTORY[function]()


def test_every_missing_variable_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in wiring.REQUIRED["report"]:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError) as raised:
        wiring.report_deps()
    assert str(raised.value) == (
        "Boomerang environment variable(s) not set: TABLE_NAME, TABLE_ARN, ANALYTICS_BUCKET, REPORT_QUEUE_URL"
    )


def test_optional_variables_may_be_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    _environment("template_validator", monkeypatch, without="REPORTS_TOPIC_ARN")
    assert wiring.settings_for("template_validator").reports_topic_arn == ""


def test_in_a_lambda_container_each_handler_fails_at_import_naming_the_variable() -> None:
    # One fresh interpreter imports every handler, each with its environment minus its first requirement.
    code = """
import importlib, json, os, sys
from shared.platform.settings import ConfigurationError, settings
spec = json.loads(sys.argv[1])
os.environ["AWS_LAMBDA_FUNCTION_NAME"] = "boomerang-test"
out = {}
for function, (module, env, missing) in spec.items():
    for name in env:
        os.environ[name] = "value-of-" + name
    os.environ.pop(missing, None)
    settings.cache_clear()
    try:
        importlib.import_module(module)
        out[function] = "imported"
    except ConfigurationError as exc:
        out[function] = str(exc)
    for name in env:
        os.environ.pop(name, None)
print(json.dumps(out))
"""
    # (a function that requires nothing, the key rotation λ, has nothing to miss)
    spec = {
        f.id: (f.module, list(f.env), wiring.REQUIRED[f.id][0]) for f in FUNCTIONS if wiring.REQUIRED[f.id]
    }
    found = subprocess.run(
        [sys.executable, "-c", code, json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "POWERTOOLS_METRICS_NAMESPACE": "Boomerang"},
    )
    errors = json.loads(found.stdout.strip().splitlines()[-1])
    assert errors == {f: f"Boomerang environment variable(s) not set: {wiring.REQUIRED[f][0]}" for f in spec}
