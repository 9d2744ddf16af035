"""The import graph of swnas: no module reaches itself again through imports (top-level or lazy)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "swnas"


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """swnas modules that ``name`` imports anywhere in its body (functions included, type-only blocks not)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:
                    found.add(sub)  # ``from pkg import module``
                elif base in known:
                    found.add(base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(name)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {name: _imports(name, path, known) for name, path in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
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

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_the_graph_sees_lazy_and_package_imports():
    graph = _graph()
    assert "swnas.data.folder" in graph["swnas.data.loaders"]  # ``from swnas.data import folder`` in a function
    assert "swnas.features" in graph["swnas.search.toolkit"]  # lazy, inside a function
    assert "swnas.data.source" in graph["swnas.training.trainer"]


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _concern(module: str) -> str:
    """``swnas.data.folder`` -> ``swnas.data``; a flat module is its own concern."""
    return ".".join(module.split(".")[:2])


def test_no_import_cycle_between_parts_of_swnas():
    """Packages and top-level modules (data, features, training, search, ...) import each other without a cycle."""
    graph: dict[str, set[str]] = {}
    for a, targets in _graph().items():
        graph.setdefault(_concern(a), set()).update(_concern(b) for b in targets if _concern(b) != _concern(a))
    cycles = _cycles(graph)
    assert not cycles, "import cycles between parts of swnas: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_import_cycle_between_modules():
    """Inside a package too: a module imports its siblings directly, not through its package's ``__init__``."""
    cycles = _cycles(_graph())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_module_imports_its_own_package():
    """A package's ``__init__`` re-exports its modules; they import what they need from a sibling."""
    graph = _graph()
    upward = sorted(
        f"{a} -> {a.rsplit('.', 1)[0]}" for a in graph if a.count(".") >= 2 and a.rsplit(".", 1)[0] in graph[a]
    )
    assert not upward, "modules that import their own package: " + "; ".join(upward)


@pytest.mark.parametrize(
    "module",
    [
        "swnas.training.trainer",
        "swnas.features",
        "swnas.reporting.ensemble",
        "swnas.search.toolkit",
        "swnas.search.validate",
    ],
)
def test_no_data_kind_branch_outside_the_data_package(module):
    """Consumers read a data source through its interface: no test of which kind of data set it is."""
    text = _modules()[module].read_text(encoding="utf-8")
    for word in ('"streaming"', "FolderDataset", "x_train", "x_test"):
        assert word not in text, f"{module} mentions {word}"


#: The parts of swnas from the bottom up (docs/CONTRACTS.md): a part imports only parts of a lower
#: layer. A new package or top-level module gets its layer here.
LAYERS = (
    ("swnas", "swnas.errors"),
    ("swnas.records", "swnas.scoring"),
    ("swnas.config_file", "swnas.selection", "swnas.models"),
    ("swnas.features", "swnas.data"),
    ("swnas.training",),
    ("swnas.search",),
    ("swnas.reporting", "swnas.experiments"),
    ("swnas.paper",),
    ("swnas.cli",),
    ("swnas.__main__",),
)


def _upward_imports(graph: dict[str, set[str]], layers) -> list[str]:
    """``"a -> b"`` for every import of a part ``b`` from a layer no lower than ``a``'s."""
    rank = {part: i for i, layer in enumerate(layers) for part in layer}
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if rank[b] >= rank[a])


def test_the_layer_check_finds_an_upward_and_a_sideways_import():
    layers = (("low",), ("mid", "side"), ("high",))
    graph = {"low": set(), "mid": {"low", "side"}, "side": set(), "high": {"mid"}}
    assert _upward_imports(graph, layers) == ["mid -> side"]
    assert _upward_imports({**graph, "low": {"high"}}, layers) == ["low -> high", "mid -> side"]


def test_every_part_imports_only_lower_layers():
    graph: dict[str, set[str]] = {}
    for a, targets in _graph().items():
        graph.setdefault(_concern(a), set()).update(_concern(b) for b in targets if _concern(b) != _concern(a))
    placed = {part for layer in LAYERS for part in layer}
    assert set(graph) - {"swnas._core", "swnas._cuda"} <= placed, f"parts without a layer: {set(graph) - placed}"
    upward = _upward_imports(graph, LAYERS)
    assert not upward, "imports from a layer above: " + "; ".join(upward)
