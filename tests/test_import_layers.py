"""The package's import structure, checked on the source (no imports run): no module
imports another that imports it back (lazy, in-function imports included), and every
import goes down the layers

    core -> engines -> methods and samplers -> sweeps, reports, studies -> commands

so a method never reaches into a sweep, and the RLlib base never into a method
(it asks the registry).  ``make lint`` runs this file too."""

import ast
from pathlib import Path
from typing import Dict, Set

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "rllib_metamapg"

# Module prefix -> layer; the longest matching prefix wins.
LAYERS = {
    # core: Ray-free vocabulary and utilities every layer uses
    "errors": 0, "atomic": 0, "limits": 0, "schedules": 0, "forms": 0, "stats": 0,
    "results": 0, "hash_seed": 0, "quiet": 0, "dice": 0, "resources": 0, "registry": 0,
    "env_specs": 0, "__init__": 0,
    # engines: the tabular engine, the RLlib base, envs, modules, shared RLlib pieces
    "tabular": 1, "envs": 1, "models": 1, "rllib_base": 1, "connectors": 1,
    "callbacks": 1, "episode_chunks": 1,
    # methods (every registered method's package, added below) and samplers
    "samplers": 2,
    # what runs them: sweeps, reports, jobs, tuned examples, the tabular studies
    "sweep": 3, "report": 3, "jobs": 3, "tuned_examples": 3, "rllib_experiments": 3,
    "rllib_legacy": 3, "evaluate": 3, "tabular_experiments": 3, "doc_figures": 3,
    "study": 3,
    # the commands
    "cli": 4, "rllib_cli": 4, "tabular_experiments.command": 4, "sweep.command": 4,
    "report.command": 4, "jobs.command": 4, "study.command": 4,
}


def _method_packages() -> Dict[str, int]:
    """Every built-in method's package is a methods-layer package: a new method needs
    no line here (the registry says where it lives)."""
    from rllib_metamapg import registry

    return {registry.method_package(m).split(".", 1)[1]: 2
            for name, m in registry.methods().items() if name in registry.BUILTIN_METHODS}


LAYERS.update(_method_packages())


def modules() -> Dict[str, Path]:
    out = {}
    for path in (ROOT / PACKAGE).rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _resolve(name: str, known) -> str:
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name if name in known else ""


def imports() -> Dict[str, Set[str]]:
    """Module -> the package modules it imports anywhere in its source (importing
    ``a.b.c`` also runs the packages ``a.b`` and ``a``)."""
    known = modules()
    graph = {}
    for name, path in known.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found = [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            else:
                continue
            for target in found:
                target = _resolve(target, known)
                parts = target.split(".")
                targets.update(".".join(parts[:k]) for k in range(2, len(parts) + 1))
        graph[name] = {t for t in targets if t in known and t != name
                       and not name.startswith(t + ".")}  # its own parent package
    return graph


def layer(module: str) -> int:
    rel = module.removeprefix(PACKAGE).lstrip(".") or "__init__"
    best = max((p for p in LAYERS if rel == p or rel.startswith(p + ".")), key=len,
               default=None)
    assert best is not None, f"{module}: give it a layer in LAYERS"
    return LAYERS[best]


def cycles(graph) -> list:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checks_see_a_cycle_and_an_upward_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert layer("rllib_metamapg.rllib_base.config") < layer("rllib_metamapg.metamapg.method")
    assert layer("rllib_metamapg.tabular_experiments.basin") > layer("rllib_metamapg.tabular.exact")
    graph = imports()
    # What is known to be there, so a change to the parser cannot make the checks vacuous.
    assert "rllib_metamapg.rllib_base.config" in graph["rllib_metamapg.metamapg.metamapg"]
    assert "rllib_metamapg.registry" in graph["rllib_metamapg.rllib_base.algorithm"]


def test_no_module_imports_one_that_imports_it_back():
    assert cycles(imports()) == []


def test_imports_go_down_the_layers():
    upward = [f"{src} ({layer(src)}) -> {dst} ({layer(dst)})"
              for src, targets in imports().items() for dst in targets
              if layer(dst) > layer(src)]
    assert not upward, "\n".join(sorted(upward))
