"""Docker-free Lambda assets.

Each function gets its own folder, build/assets/<function id>/, holding only what it imports:

    functions/__init__.py
    functions/<source>/       that function's package, no other function
    shared/                   the domain library
    <runtime dependencies>    pip-installed for the Lambda platform (arm64, CPython 3.13)

The dependencies are installed once with pip's cross-platform wheel selection (no Docker, no
compiler) into build/deps/<hash of the dependency list>/ and reused until the list changes.
Set BOOMERANG_ASSETS_NO_DEPS=1 (or pass with_dependencies=False) to leave them out: the
infrastructure tests do, so they never touch the network.

    python -m infra.assets [--no-deps] [--build-dir build]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

from infra.description import FUNCTIONS, LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME, FunctionSpec

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / "build"
NO_DEPS_ENV = "BOOMERANG_ASSETS_NO_DEPS"

# Already in the Lambda Python runtime; packaging our own copy only adds cold-start weight.
PROVIDED_BY_RUNTIME = frozenset({"boto3", "botocore", "s3transfer"})

_PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
_COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".mypy_cache")
_COMPLETE_MARKER = ".boomerang-complete"


def _python_version() -> str:
    match = re.fullmatch(r"python(\d+\.\d+)", LAMBDA_RUNTIME)
    if not match:
        raise ValueError(f"unexpected Lambda runtime {LAMBDA_RUNTIME!r}")
    return match.group(1)


def pip_platform_args() -> list[str]:
    """pip options that select wheels for the Lambda platform instead of this machine's."""
    return [
        "--platform",
        _PLATFORMS[LAMBDA_ARCHITECTURE],
        "--only-binary=:all:",
        "--python-version",
        _python_version(),
        "--implementation",
        "cp",
    ]


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"cannot parse requirement {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()  # PEP 503 normalisation


def runtime_dependencies(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    """[project].dependencies minus what the Lambda runtime already provides."""
    with pyproject.open("rb") as fh:
        requirements: list[str] = tomllib.load(fh)["project"]["dependencies"]
    return [r for r in requirements if requirement_name(r) not in PROVIDED_BY_RUNTIME]


def dependencies_key(requirements: Iterable[str]) -> str:
    payload = json.dumps({"requirements": sorted(requirements), "pip": pip_platform_args()})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def install_dependencies(requirements: Sequence[str], build_dir: Path = BUILD_DIR) -> Path:
    """Install the dependencies for the Lambda platform once; later calls reuse the folder."""
    target = build_dir / "deps" / dependencies_key(requirements)
    if (target / _COMPLETE_MARKER).exists():
        return target
    # Install next to the target and rename, so an interrupted install is never reused.
    staging = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",  # Lambda can't write .pyc next to the code anyway; keep the zip small
        *pip_platform_args(),
        "--target",
        str(staging),
        *requirements,
    ]
    subprocess.run(command, check=True)
    (staging / _COMPLETE_MARKER).write_text(json.dumps(list(requirements)) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return target


def _link_or_copy(src: str, dst: str) -> None:
    # Hard links make four copies of a 20 MB dependency tree nearly free; CDK stages its own copy.
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def build_function_asset(
    spec: FunctionSpec, assets_dir: Path, deps_dir: Path | None, repo_root: Path = REPO_ROOT
) -> Path:
    """Assemble one function's asset folder from scratch (stale files would change its hash)."""
    out = assets_dir / spec.id
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if deps_dir is not None:
        shutil.copytree(
            deps_dir,
            out,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(_COMPLETE_MARKER, "__pycache__", "bin"),
            copy_function=_link_or_copy,
        )
    functions_root = repo_root / "functions"
    (out / "functions").mkdir(exist_ok=True)
    shutil.copy2(functions_root / "__init__.py", out / "functions" / "__init__.py")
    shutil.copytree(functions_root / spec.source, out / "functions" / spec.source, ignore=_COPY_IGNORE)
    shutil.copytree(repo_root / "shared", out / "shared", ignore=_COPY_IGNORE)
    return out


def dependencies_wanted(with_dependencies: bool | None) -> bool:
    if with_dependencies is not None:
        return with_dependencies
    return os.environ.get(NO_DEPS_ENV, "").strip().lower() not in {"1", "true", "yes"}


def build_assets(
    build_dir: Path = BUILD_DIR,
    *,
    with_dependencies: bool | None = None,
    functions: Sequence[FunctionSpec] = FUNCTIONS,
) -> dict[str, Path]:
    """Build every function's asset; returns {function id: asset folder}."""
    deps_dir = None
    if dependencies_wanted(with_dependencies):
        deps_dir = install_dependencies(runtime_dependencies(), build_dir)
    assets_dir = build_dir / "assets"
    return {spec.id: build_function_asset(spec, assets_dir, deps_dir) for spec in functions}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.assets", description=__doc__.splitlines()[0])
    parser.add_argument("--no-deps", action="store_true", help="leave out the runtime dependencies")
    parser.add_argument("--build-dir", type=Path, default=BUILD_DIR)
    args = parser.parse_args(argv)
    assets = build_assets(args.build_dir, with_dependencies=False if args.no_deps else None)
    for function_id, path in assets.items():
        print(f"{function_id}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
