"""No float may touch money: the product code has no float literal and never names `float`."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def product_modules():
    yield ROOT / "app.py"
    yield from sorted((ROOT / "chalicelib").rglob("*.py"))


def float_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, float):
            found.append(f"{path.name}:{node.lineno} float literal {node.value!r}")
        if isinstance(node, ast.Name) and node.id == "float":
            found.append(f"{path.name}:{node.lineno} uses float")
    return found


def test_product_code_has_no_float():
    offenders = [use for path in product_modules() for use in float_uses(path)]
    assert offenders == []


def test_the_check_catches_a_float(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("price = float('0.1') * 3\nrate = 0.5\n")
    assert len(float_uses(sample)) == 2
