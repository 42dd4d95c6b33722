"""The package's seams, checked on its source: public imports only, no cycles, small modules.

Rules (issue "One PSF path, a thin CLI, ..."; ../shared/STYLE.md):
- no module imports a private name (a ``_x`` module or attribute) of another package;
- no import cycle between modules (imports inside functions included);
- sub-packages depend one way: io/classical/metrics → psf → synth → learn → report/blocked → cli;
- no module over 400 lines unless it says why in a ``# size:`` comment.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "neurodecon"
PKG = "neurodecon"

#: Sub-packages in dependency order: each may import the ones before it (and the root's modules).
LAYERS = (
    ("io", "classical", "metrics"),
    ("psf",),
    ("synth",),
    ("learn",),
    ("report", "blocked"),
    ("cli", "napari"),
)


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom, modules: dict[str, Path]) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not _is_package(module, modules):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, str | None]]:
    """``(imported module, imported name or None)`` for every import in the file."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, None) for a in node.names if a.name.startswith(PKG)]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node, modules)
            if target.startswith(PKG):
                found += [(target, a.name) for a in node.names]
    return found


def _package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else parts[0]


def _private_parts(name: str) -> list[str]:
    return [p for p in name.split(".") if p.startswith("_") and not p.startswith("__")]


def _violations_private() -> list[str]:
    modules = _modules()
    bad = []
    for module, path in modules.items():
        own = _package_of(module)
        for target, name in _imports(module, path, modules):
            full = f"{target}.{name}" if name and f"{target}.{name}" in modules else target
            outside = _package_of(full) != own or (own == PKG and full.count(".") > 1)
            if own == PKG and _package_of(full) != PKG:
                outside = True
            private = _private_parts(full.removeprefix(PKG))
            private_attr = name is not None and name.startswith("_") and not name.startswith("__")
            # the root package re-exports public names of its own modules (``_version``, ``_api``)
            own_root = module == PKG and full.count(".") == 1 and not private_attr
            if outside and (private or private_attr) and full != f"{PKG}._version" and not own_root:
                bad.append(f"{module} imports {full}{'.' + name if private_attr else ''}")
    return bad


def test_no_module_imports_a_private_name_of_another_package():
    assert _violations_private() == []


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for target, name in _imports(module, path, modules):
            full = f"{target}.{name}" if name and f"{target}.{name}" in modules else target
            if full in modules and full != module:
                graph[module].add(full)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Drop edges into ``__init__`` modules of one's own package (re-exports are not cycles)."""
    modules = _modules()
    return {
        m: {
            t
            for t in targets
            if not (_is_package(t, modules) and m.startswith(t + ".") and t != PKG) and t != PKG
        }
        for m, targets in graph.items()
    }


def test_no_import_cycle_between_modules():
    assert _cycles(_without_package_inits(_graph())) == []


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None
    for i, names in enumerate(LAYERS):
        if parts[1] in names:
            return i
    return None


def test_sub_packages_depend_one_way():
    bad = []
    for module, targets in _graph().items():
        own = _layer(module)
        for t in targets:
            other = _layer(t)
            if own is not None and other is not None and other > own:
                bad.append(f"{module} -> {t}")
    assert bad == []


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_module_size(path: Path):
    text = path.read_text(encoding="utf-8")
    n = text.count("\n")
    assert n <= 400 or "# size:" in text, f"{path.name}: {n} lines without a '# size:' reason"


def test_the_checker_sees_a_private_import(tmp_path, monkeypatch):
    """The rules above can fail: a fake package importing another's private module is caught."""
    fake = tmp_path / PKG
    (fake / "a").mkdir(parents=True)
    (fake / "b").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "a" / "__init__.py").write_text("")
    (fake / "a" / "_x.py").write_text("from ..b import y\n")
    (fake / "b" / "__init__.py").write_text("")
    (fake / "b" / "_y.py").write_text("from ..a._x import z\n")
    (fake / "b" / "y.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "SRC", fake)
    assert _violations_private() == ["neurodecon.b._y imports neurodecon.a._x"]
    graph = _without_package_inits(_graph())
    assert graph["neurodecon.b._y"] == {"neurodecon.a._x"}
