"""The layering of the code, read from every module's imports (ast, nothing is imported):

    flows, benchmarks  ->  stages  ->  models, pipeline

- no import circles between our modules;
- no stage module (a module in stages/ that declares `STAGE`) imports another stage module, directly
  or through a helper: what stages share lives in helper modules (stages/_*.py, outputs.py,
  licence_free.py) or in models/;
- nothing imports upwards: models/ and pipeline/ never import stages/, flows/ or benchmarks/, and
  stages/ never imports flows/ or benchmarks/; models/ and pipeline/ do not import each other's
  way round either (models/ is free of the pipeline; pipeline/ is free of the networks).
Lazy (function-level) imports count: they are dependencies all the same. See docs/architecture.md.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "stages", "flows", "benchmarks", "models")   # folders mapped onto video2mesh.<name>
NS = "video2mesh"


def _modules() -> dict[str, Path]:
    """{dotted name: file} of every module of the namespace."""
    out = {}
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            parts = f.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join((NS, *parts))] = f
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def imports_of(name: str) -> set[str]:
    """Our modules that module `name` imports (absolute or relative, at any depth of the file)."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    here = name if _is_package(name) else name.rpartition(".")[0]       # the package relative imports start from
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            # `from pkg import name` imports the module pkg.name when there is one, else pkg itself
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:                                  # `import a.b.c` of a package path
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def _layer(name: str) -> str:
    return name.split(".")[1]


def _is_stage(name: str) -> bool:
    """A module of stages/ that declares a stage (a top-level `STAGE = ...`)."""
    if _layer(name) != "stages" or _is_package(name):
        return False
    tree = ast.parse(MODULES[name].read_text())
    return any(isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "STAGE" for t in n.targets)
               for n in tree.body)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None (depth-first search with colours)."""
    state: dict[str, int] = {}                                           # 1 on the path, 2 done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state and (c := visit(n)):
                return c
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def test_the_parser_sees_our_imports():
    """The checks below are only as good as the import reader: it must resolve relative imports,
    `from package import module` and lazy imports inside functions."""
    assert f"{NS}.stages._export_core" in GRAPH[f"{NS}.stages.export"]          # from . import _export_core as core
    assert f"{NS}.stages.licence_free" in GRAPH[f"{NS}.stages.fit_anny"]        # from .licence_free import load_body
    assert f"{NS}.pipeline.errors" in GRAPH[f"{NS}.pipeline.runner"]            # from .errors import ...
    assert f"{NS}.stages._methods" in GRAPH[f"{NS}.flows.methods"]
    assert f"{NS}.models.body.anny_body" in GRAPH[f"{NS}.models.fit.anny_fit"]
    assert _is_stage(f"{NS}.stages.export") and not _is_stage(f"{NS}.stages._export_core")
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert reachable({"a": {"b"}, "b": {"c"}, "c": set()}, "a") == {"b": "a", "c": "b"}


def test_no_import_circles():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def reachable(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """{module: the module that imports it} for every module `start` imports, directly or not."""
    seen: dict[str, str] = {}
    todo = [start]
    while todo:
        m = todo.pop()
        for n in sorted(graph.get(m, ())):
            if n not in seen and n != start:
                seen[n] = m
                todo.append(n)
    return seen


def test_no_stage_imports_another_stage():
    """Directly or through a helper (a helper such as stages/_random_weights.py may import stages,
    for tests and benchmarks, as long as no stage imports it)."""
    bad = []
    for m in (m for m in GRAPH if _is_stage(m)):
        via = reachable(GRAPH, m)
        for n in sorted(n for n in via if _is_stage(n)):
            chain = [n]
            while chain[-1] != m:
                chain.append(via[chain[-1]])
            bad.append(" -> ".join(reversed(chain)))
    assert not bad, "move what they share into a helper module (stages/_*.py) or models/:\n" + "\n".join(bad)


FORBIDDEN = {"models": {"stages", "flows", "benchmarks", "pipeline"},
             "pipeline": {"stages", "flows", "benchmarks", "models"},
             "stages": {"flows", "benchmarks"}}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_nothing_imports_upwards(layer):
    bad = sorted(f"{m} imports {n}" for m in GRAPH if _layer(m) == layer for n in GRAPH[m]
                 if _layer(n) in FORBIDDEN[layer])
    assert not bad, "\n".join(bad)
