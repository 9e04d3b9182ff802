"""The tree keeps its architecture: no import loops, each stage imports only the stages before it,
and only the web app imports Gradio. Every import counts: inside functions and under
TYPE_CHECKING too (a loop hidden in a function is still a loop)."""

from __future__ import annotations

import ast
from pathlib import Path

import startui

PACKAGE = Path(startui.__file__).parent
# Each layer and the layers it may import (the data flow: core ← infer ← store ← review ← rft ←
# ui/cli). "core" is every top-level module of startui.
MAY_IMPORT = {
    "core": {"core"},
    "infer": {"core", "infer"},
    "store": {"core", "store"},
    "review": {"core", "infer", "store", "review"},
    "rft": {"core", "infer", "store", "review", "rft"},
    "ui": {"core", "infer", "store", "review", "rft", "ui"},
    "cli": {"core", "infer", "store", "review", "rft", "ui", "cli"},
}


def modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = ("startui", *p.relative_to(PACKAGE).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def imports(path: Path, module: str) -> set[str]:
    """Every startui module that ``module`` imports, resolved to a known module."""
    known = modules()
    pkg = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != module:
                found.add(t)
                break  # `from a.b import c`: the deepest module named is the import
    return found


def layer(module: str) -> str:
    if module == "startui.__main__":  # `python -m startui` is the command line
        return "cli"
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("data", "_kernels", "_db"):
        return "core"
    return parts[1] if parts[1] in MAY_IMPORT else "core"


def graph() -> dict[str, set[str]]:
    return {m: imports(p, m) for m, p in modules().items()}


def test_the_layers_hold():
    wrong = []
    for m, deps in graph().items():
        if m == "startui":  # the public API names every stage, loaded lazily on first use
            continue
        for d in deps:
            if d == "startui" or layer(d) not in MAY_IMPORT[layer(m)]:
                wrong.append(f"{m} ({layer(m)}) imports {d} ({layer(d)})")
    assert not wrong, "imports that break the layering:\n" + "\n".join(sorted(wrong))


def find_loops(g: dict[str, set[str]]) -> list[list[str]]:
    loops: list[list[str]] = []
    seen: set[str] = set()

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(g.get(node, ())):
            if nxt in path:
                loops.append(path[path.index(nxt):] + [nxt])
            elif nxt not in seen:
                seen.add(nxt)
                walk(nxt, path + [nxt])

    for start in sorted(g):
        if start not in seen:
            seen.add(start)
            walk(start, [start])
    return loops


def test_no_import_loops():
    g = graph()
    g.pop("startui")
    # a package importing its own children (re-exports) and a child naming its package are not
    # loops of modules; everything else is
    for m, deps in g.items():
        g[m] = {d for d in deps if not d.startswith(m + ".") and not m.startswith(d + ".")}
    loops = find_loops(g)
    assert not loops, "import loops:\n" + "\n".join(" -> ".join(c) for c in loops)


def test_only_the_web_app_imports_gradio():
    offenders = []
    for m, p in modules().items():
        if layer(m) == "ui":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "gradio" or n.startswith("gradio.") for n in names):
                offenders.append(m)
    assert not offenders, f"Gradio imported below startui.ui: {offenders}"


def test_the_checks_can_fail():
    """A planted upward import is caught, and so is a loop."""
    assert find_loops({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]
    planted = PACKAGE / "infer" / "_planted_for_test.py"
    planted.write_text("from startui.store import Store\n")
    try:
        deps = imports(planted, "startui.infer._planted_for_test")
        assert "startui.store" in deps
        assert layer("startui.store") not in MAY_IMPORT[layer("startui.infer._planted_for_test")]
    finally:
        planted.unlink()


def test_every_stage_says_what_it_may_import():
    for stage in ("infer", "store", "review", "rft", "ui", "cli"):
        doc = ast.get_docstring(ast.parse((PACKAGE / stage / "__init__.py").read_text()))
        assert doc and len(doc) > 80, f"startui/{stage}/__init__.py needs its docstring"


def test_benchmarks_do_not_import_the_tests():
    bench = PACKAGE.parent / "bench"
    offenders = []
    for p in bench.glob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "tests" or n.startswith("tests.") for n in names):
                offenders.append(p.name)
    assert not offenders, f"benchmarks importing tests/: {offenders}"
