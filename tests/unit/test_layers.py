"""app.py is wiring: it reaches storage only through the services (chalicelib's own layers are
checked by `lint-imports`, whose contracts cannot name a top-level module)."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"


def imported_modules(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def test_app_imports_no_storage_module():
    assert not {m for m in imported_modules(APP.read_text()) if m.startswith("chalicelib.storage")}


def test_the_check_sees_a_storage_import_wherever_it_is():
    nested = "def handler():\n    from chalicelib.storage.orgs import OrgRepository\n"
    assert "chalicelib.storage.orgs" in imported_modules(nested)


@pytest.mark.slow  # runs lint-imports, a process
def test_the_layer_contracts_fail_on_a_forbidden_import(tmp_path):
    """The contracts `make lint` checks are not vacuous: the same tree with one route module importing
    storage breaks exactly the edge's contract, and the tree as it is keeps them all."""
    shutil.copytree(ROOT / "chalicelib", tmp_path / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)

    def lint() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True,
                              timeout=120)

    kept = lint()
    assert kept.returncode == 0, kept.stdout + kept.stderr
    edge = tmp_path / "chalicelib" / "api" / "edge.py"
    edge.write_text(edge.read_text() + "\nfrom ..storage import keys  # noqa: E402,F401\n")
    broken = lint()
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "The edge reaches storage only through the services" in broken.stdout
    assert "chalicelib.api.edge -> chalicelib.storage.keys" in broken.stdout
    assert "Contracts: 3 kept, 1 broken." in broken.stdout
