"""The layout shows the architecture: explorer/ never imports streamlit or ui, and its packages
import only packages below them in LAYERS (read from every import statement, lazy ones included),
so a newcomer can tell where a thing belongs from where it is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# bottom first; a module may import its own package and any package listed before it
LAYERS = [{"errors", "units", "text", "access"}, {"core"}, {"data"}, {"training"}, {"interpret"},
          {"compare"}, {"search"}, {"classroom"}, {"charts"}, {"cli", "__main__", "__init__"}]
# (importing module, imported package, why): the only imports that run up
EXCEPTIONS = {("explorer/training/executors.py", "cli",
               "a Ray actor runs the job's command line, exactly as a local process does")}


def _layer(part: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if part in names)


def _part(module: str) -> str | None:
    bits = module.split(".")
    return None if bits[0] != "explorer" else (bits[1] if len(bits) > 1 else "__init__")


def _imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


FILES = sorted((ROOT / "explorer").rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_explorer_imports_only_run_down(path):
    rel = path.relative_to(ROOT).as_posix()
    own = _part(".".join(path.relative_to(ROOT).with_suffix("").parts))
    for module in _imports(path):
        top = module.split(".")[0]
        assert top not in ("streamlit", "ui", "pages", "app"), f"{rel} imports {module}: explorer/ never imports the app"
        other = _part(module)
        if other is None or other == own:
            continue
        if any(rel == f and other == p for f, p, _ in EXCEPTIONS):
            continue
        assert _layer(other) <= _layer(own), (
            f"{rel} imports explorer.{other}, which sits above explorer.{own} in the layout; move the "
            f"shared piece down (or list the exception in tests/test_layout.py with a reason)")


def test_every_package_says_what_it_owns():
    for init in sorted((ROOT / "explorer").glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(doc) > 80, f"{init.relative_to(ROOT)} needs a docstring saying what the package owns"
    for path in FILES:
        if path.name != "__init__.py" and path.stat().st_size > 0:
            assert ast.get_docstring(ast.parse(path.read_text())), f"{path.relative_to(ROOT)}: first lines say what it owns"


def test_the_layer_rule_catches_an_upward_import(tmp_path):
    fake = tmp_path / "explorer" / "core" / "x.py"
    fake.parent.mkdir(parents=True)
    fake.write_text('"""x."""\nfrom explorer.training.loop import train\n')
    own, other = "core", _part(_imports(fake)[0])
    assert _layer(other) > _layer(own)
