"""The packages' layers hold (issue 23; GUIDE, "Architecture"): every module's imports, read from the source
with ``ast`` (imports inside functions count), never climb a layer, never form a cycle, and the torch-free
runtime imports only what the light embedding install has.

Layers, bottom to top::

    0  ch_numba          physics, initial conditions, data sets (numpy, numba, h5py)
    1  runtime           export.runtime (numpy + onnxruntime only), export.rollout (its command)
    2  surrogate         torch: model, training, evaluation, the model card
    3  exporter          export.onnx_export, export.__main__, export.factorised (torch -> ONNX)

A module may import its own layer and the layers below. These are static facts of the source, so the
test reads files and imports nothing."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ch_numba", "export", "surrogate")

#: the exporter's modules (layer 3); every other module of ``export`` is the runtime's (layer 1)
EXPORTER = ("export.onnx_export", "export.__main__", "export.factorised")
LAYER_NAMES = ("ch_numba", "runtime", "surrogate", "exporter")
#: command-line modules of ch_numba: the rest of ch_numba (physics, ICs, data sets) never imports them
CH_NUMBA_CLI = ("ch_numba.cli", "ch_numba.cli_runner", "ch_numba.cli_common", "ch_numba.__main__")
#: third-party packages the torch-free runtime (``export.runtime``) may import: the light embedding install
RUNTIME_THIRD_PARTY = {"numpy", "onnxruntime"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {
    _module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py")) if "__pycache__" not in p.parts
}


def layer(module: str) -> int:
    if module.split(".")[0] == "ch_numba":
        return 0
    if module.split(".")[0] == "surrogate":
        return 2
    if any(module == m or module.startswith(m + ".") for m in EXPORTER):
        return 3
    return 1


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (``from ..x import y`` inside ``module``)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str) -> set[str]:
    """Every module ``module`` imports (absolute names; ``from pkg import sub`` counts as ``pkg.sub`` when
    ``sub`` is a module of the project), anywhere in its source."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return found


def _project(name: str) -> str | None:
    """The project module ``name`` refers to (itself, or the closest project package above it), else None."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


GRAPH = {m: {p for p in map(_project, imports(m)) if p and p != m} for m in MODULES}


def test_the_tree_holds_the_modules_the_layers_name():
    assert {"ch_numba", "export", "export.runtime", "surrogate"} <= set(MODULES)
    for m in EXPORTER + ("export.rollout",):
        assert m in MODULES, m


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_climbs_a_layer(module):
    climbs = sorted(t for t in GRAPH[module] if layer(t) > layer(module))
    assert not climbs, f"{module} (layer {LAYER_NAMES[layer(module)]}) imports " + ", ".join(
        f"{t} ({LAYER_NAMES[layer(t)]})" for t in climbs
    )


def _loaded(module: str) -> set[str]:
    """What importing ``module``'s imports runs: each imported module and the packages above it (Python runs
    a package's ``__init__`` first), except ``module``'s own packages (already running)."""
    own = set(_packages_above(module))
    return {p for t in GRAPH[module] for p in (t, *_packages_above(t)) if p in MODULES and p != module} - own


def test_no_import_cycles():
    """Tarjan's strongly connected components of the module graph (with the packages each import runs):
    every component is one module."""
    graph = {m: _loaded(m) for m in MODULES}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(MODULES)))

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(MODULES):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_ch_numba_data_modules_import_no_cli_module():
    for module in MODULES:
        if layer(module) == 0 and module not in CH_NUMBA_CLI:
            bad = sorted(t for t in GRAPH[module] if t in CH_NUMBA_CLI)
            assert not bad, f"{module} imports the command-line module(s) {bad}"


def _packages_above(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def stdlib_only(module: str) -> bool:
    """Whether importing ``module`` (with the packages above it, which Python runs first) loads nothing but
    the standard library and project modules that do the same."""
    seen, todo = set(), [module, *_packages_above(module)]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        for name in imports(m):
            own = _project(name)
            if own is None:
                if name.split(".")[0] not in sys.stdlib_module_names:
                    return False
            else:
                todo += [own, *_packages_above(own)]
    return True


def test_the_runtime_imports_only_numpy_onnxruntime_and_itself():
    """``export.runtime`` is the light embedding install: numpy + onnxruntime. It may read a project module
    outside itself only where that loads the standard library alone (``ch_numba.params`` under the lazy
    ``ch_numba/__init__``)."""
    runtime = [m for m in MODULES if m == "export.runtime" or m.startswith("export.runtime.")]
    assert runtime
    for module in runtime:
        for name in imports(module):
            top, own = name.split(".")[0], _project(name)
            if own is None:
                ok = top in sys.stdlib_module_names or top in RUNTIME_THIRD_PARTY
            else:
                ok = own in ("export", *runtime) or stdlib_only(own)
            assert ok, f"{module} imports {name}: the runtime may import only the stdlib, numpy, onnxruntime"


def test_the_stdlib_only_check_sees_numba_behind_a_package():
    assert stdlib_only("ch_numba.params") and stdlib_only("ch_numba.options")
    assert not stdlib_only("ch_numba.solver") and not stdlib_only("export.runtime.session")


def test_the_guide_names_every_module_once():
    """docs/GUIDE.md's architecture table (module → concept → layer) lists exactly the modules of the tree,
    each in its layer."""
    import re

    guide = (ROOT / "docs" / "GUIDE.md").read_text()
    section = guide[guide.index("## 1. Architecture") : guide.index("## 2. ")]
    listed = {}
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        for path in re.findall(r"`([\w/]+\.py)`", cells[0]):
            assert path not in listed, f"{path} listed twice"
            listed[path] = cells[2].split()[0]
    tree = {str(p.relative_to(ROOT)): m for m, p in MODULES.items()}
    assert sorted(listed) == sorted(tree)
    for path, name in listed.items():
        assert name == LAYER_NAMES[layer(tree[path])], f"{path}: the GUIDE says {name}"
