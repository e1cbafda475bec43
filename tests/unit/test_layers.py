"""The layers of shared/ (ARCHITECTURE.md): a lower layer never imports a higher one.

platform -> domain -> adapters -> templates -> services, and then functions/ on top. The domain is
pure: no boto3 or botocore. shared/ never imports functions/ or infra/, and a function never
imports another function. Read from the source (ast), so lazy imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["platform", "domain", "adapters", "templates", "services"]


def _imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module)] + [
                (node.lineno, f"{node.module}.{a.name}") for a in node.names
            ]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] == "shared" and len(parts) > 1 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return None


def _modules(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def test_every_shared_module_sits_in_a_layer() -> None:
    loose = [
        str(p.relative_to(ROOT))
        for p in _modules("shared")
        if p.parent == ROOT / "shared" and p.stem != "__init__"
    ]
    assert loose == [], f"modules outside the layers: {loose}"


def upward_imports(root: Path) -> list[str]:
    """Every import in root/shared that reaches a higher layer, or functions/, infra/ or tests/."""
    wrong = []
    for path in sorted((root / "shared").rglob("*.py")):
        rel = path.relative_to(root / "shared").parts
        if len(rel) < 2:
            continue
        own = LAYERS.index(rel[0])
        for line, module in _imports(path):
            other = _layer(module)
            if (other is not None and other > own) or module.split(".")[0] in ("functions", "infra", "tests"):
                wrong.append(f"{path.relative_to(root)}:{line} ({LAYERS[own]}) imports {module}")
    return sorted(set(wrong))


def test_no_layer_imports_a_higher_one() -> None:
    wrong = upward_imports(ROOT)
    assert wrong == [], "imports that run back up:\n" + "\n".join(wrong)


def test_the_check_finds_an_upward_import(tmp_path: Path) -> None:
    # Given a domain module that imports a service lazily, inside a function
    domain = tmp_path / "shared" / "domain"
    domain.mkdir(parents=True)
    (domain / "rules.py").write_text(
        "from shared.platform import clock\n\ndef f():\n    from shared.services.ingest import validate\n"
    )
    # Then the check names the file, the line and the import; the downward one is fine
    assert upward_imports(tmp_path) == [
        "shared/domain/rules.py:4 (domain) imports shared.services.ingest",
        "shared/domain/rules.py:4 (domain) imports shared.services.ingest.validate",
    ]


@pytest.mark.parametrize("layer", ["platform", "domain"])
def test_domain_and_platform_stay_below_the_adapters(layer: str) -> None:
    # the domain is pure (no AWS SDK at all); the platform may hold clients but no domain rules
    banned = ("boto3", "botocore") if layer == "domain" else ()
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in _modules(f"shared/{layer}")
        for line, module in _imports(path)
        if module.split(".")[0] in banned
    ]
    assert wrong == [], f"the {layer} layer reaches AWS:\n" + "\n".join(wrong)


def test_functions_import_shared_but_never_each_other() -> None:
    wrong = []
    for path in _modules("functions"):
        own = path.relative_to(ROOT / "functions").parts[0]
        for line, module in _imports(path):
            parts = module.split(".")
            if parts[0] == "functions" and len(parts) > 1 and parts[1] != own:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
            if parts[0] == "infra":
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert wrong == [], "\n".join(wrong)
