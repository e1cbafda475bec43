"""The Docker-free asset builder: each function gets only its own code, shared/ and the deps."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra import assets
from infra.description import FUNCTIONS, FUNCTIONS_BY_ID


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.id)
def test_asset_holds_only_its_function_and_shared(spec: Any, tmp_path: Path) -> None:
    # When an asset is built without dependencies
    out = assets.build_function_asset(spec, tmp_path, deps_dir=None)

    # Then it holds the functions package with this function only, and the shared library
    assert (out / "functions" / "__init__.py").is_file()
    assert sorted(p.name for p in (out / "functions").iterdir()) == sorted(["__init__.py", spec.source])
    assert (out / "shared" / "__init__.py").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["functions", "shared"]
    assert not list(out.rglob("__pycache__"))
    # and the function's package is the repo's, file for file
    source = assets.REPO_ROOT / "functions" / spec.source
    assert _python_files(out / "functions" / spec.source) == _python_files(source)
    # and the handler's module path starts inside it, where Lambda will look
    assert spec.module.startswith(f"functions.{spec.source}.")


def _python_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def test_dependencies_are_copied_into_the_asset(tmp_path: Path) -> None:
    deps = tmp_path / "deps"
    (deps / "pydantic").mkdir(parents=True)
    (deps / "pydantic" / "__init__.py").write_text("")
    out = assets.build_function_asset(FUNCTIONS_BY_ID["ingest"], tmp_path / "assets", deps_dir=deps)
    assert (out / "pydantic" / "__init__.py").is_file()


def test_rebuilding_removes_stale_files(tmp_path: Path) -> None:
    spec = FUNCTIONS_BY_ID["profile"]
    out = assets.build_function_asset(spec, tmp_path, deps_dir=None)
    (out / "stale.py").write_text("")
    assets.build_function_asset(spec, tmp_path, deps_dir=None)
    assert not (out / "stale.py").exists()


def test_runtime_dependencies_leave_out_what_lambda_provides() -> None:
    names = {assets.requirement_name(r) for r in assets.runtime_dependencies()}
    assert "boto3" not in names
    assert {"aws-lambda-powertools", "pydantic", "jinja2"} <= names


def test_pip_targets_the_lambda_platform_not_this_machine() -> None:
    args = assets.pip_platform_args()
    assert args[args.index("--platform") + 1] == "manylinux2014_aarch64"
    assert args[args.index("--python-version") + 1] == "3.13"
    assert "--only-binary=:all:" in args


def test_dependency_key_changes_with_the_list_only() -> None:
    a = assets.dependencies_key(["pydantic>=2", "jinja2"])
    assert a == assets.dependencies_key(["jinja2", "pydantic>=2"])
    assert a != assets.dependencies_key(["pydantic>=2", "jinja2", "rich"])


def test_installed_dependencies_are_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given dependencies installed earlier for the same list
    requirements = ["pydantic>=2"]
    target = tmp_path / "deps" / assets.dependencies_key(requirements)
    target.mkdir(parents=True)
    (target / ".boomerang-complete").write_text("")

    def no_pip(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pip must not run again")

    monkeypatch.setattr(subprocess, "run", no_pip)
    # When they are asked for again, Then the same folder comes back without running pip
    assert assets.install_dependencies(requirements, tmp_path) == target


@pytest.mark.parametrize(("value", "wanted"), [("1", False), ("true", False), ("", True), ("0", True)])
def test_no_deps_switch(value: str, wanted: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(assets.NO_DEPS_ENV, value)
    assert assets.dependencies_wanted(None) is wanted
    assert assets.dependencies_wanted(True) is True
