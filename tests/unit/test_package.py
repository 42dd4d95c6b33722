"""The top-level package: lazy public names, and the ``TYPE_CHECKING`` block that shows them."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import neurodecon

INIT = Path(neurodecon.__file__)


def _type_checking_imports() -> dict[str, str]:
    """``{name: module}`` of the ``if TYPE_CHECKING:`` imports of ``neurodecon/__init__.py``."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    blocks = [
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    ]
    assert len(blocks) == 1
    found: dict[str, str] = {}
    for node in blocks[0].body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1, ast.dump(node)
        for alias in node.names:
            assert alias.asname == alias.name, f"re-export {alias.name} as itself"
            assert alias.name not in found, f"{alias.name} imported twice"
            found[alias.name] = f"neurodecon.{node.module}"
    return found


def test_type_checking_block_imports_exactly_the_lazy_names():
    assert _type_checking_imports() == neurodecon._LAZY


def test_lazy_names_are_the_objects_type_checkers_see():
    for name, module in neurodecon._LAZY.items():
        assert getattr(neurodecon, name) is getattr(importlib.import_module(module), name)
    assert set(neurodecon.__all__) == {"__version__", "NeuroDeconError", *neurodecon._LAZY}


def test_import_neurodecon_imports_no_sub_package_numpy_or_torch():
    code = (
        "import sys, neurodecon; "
        "print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('neurodecon', 'numpy', 'torch')))"
    )
    path = os.pathsep.join([str(INIT.parents[1]), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "['neurodecon', 'neurodecon._version', 'neurodecon.errors']"
