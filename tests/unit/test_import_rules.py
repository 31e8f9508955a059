"""The import rule of the layout (README, "Layout"): the services that hold the logic never import
Dagster, so they stay testable in milliseconds and usable from the CLI."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NO_DAGSTER = ["orchestration/landing", "orchestration/publishing", "models_py", "expectations"]


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (a lazy import inside a function counts too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("folder", NO_DAGSTER)
def test_services_never_import_dagster(folder):
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.split(".")[0].startswith("dagster")
        )
        for path in sorted((ROOT / folder).rglob("*.py"))
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}


@pytest.mark.parametrize("folder", NO_DAGSTER)
def test_services_never_import_the_dagster_wiring(folder):
    wiring = (
        "orchestration.assets",
        "orchestration.checks",
        "orchestration.definitions",
        "orchestration.resources",
    )
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if m.startswith(wiring))
        for path in sorted((ROOT / folder).rglob("*.py"))
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}
