"""app.py is wiring: it reaches storage only through the services (chalicelib's own layers are
checked by `lint-imports`, whose contracts cannot name a top-level module)."""

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app.py"


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
