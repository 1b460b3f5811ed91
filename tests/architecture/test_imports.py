"""The import structure, read from the source (an AST walk, nothing imported): no import circle in
``server/``, no arrow back up.

The stages are the top-level folders, installed as ``reeldb.<stage>`` (pyproject's package map),
and they meet at files and rows, not imports (DESIGN.md, "Seams and habits"): capture writes a
session folder, export reads it and writes assets, index reads assets, the player presents them.
So a stage may import a stage below it (export reads capture's manifest contract), never one
above it, and never the server, which composes them all. Inside the server, the floors run
cli → app → routes → services: a service never imports a route, the app or the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
#: The stages from the bottom up; the server stands above them all.
STAGES = ["capture", "export", "index", "player"]
TOP = "server"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["reeldb", *parts])


def imports_of(path: Path) -> set[str]:
    """Every ``reeldb.*`` module ``path`` imports, anywhere in it (in functions too), with relative
    imports resolved; ``from pkg import name`` counts as ``pkg.name`` when that is a module."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
    return {m for m in found if m.startswith("reeldb.")}


def graph() -> dict[str, set[str]]:
    """Our modules and the modules of ours each one imports."""
    files = {module_name(p): p for d in [*STAGES, TOP] for p in (ROOT / d).rglob("*.py")}
    return {m: {i for i in imports_of(p) if i in files and i != m} for m, p in files.items()}


def stage_of(module: str) -> str:
    return module.split(".")[1]


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def arrows_up(edges: dict[str, set[str]]) -> list[str]:
    """Imports from a stage into the server or into a stage above it."""
    rank = {s: i for i, s in enumerate([*STAGES, TOP])}
    return sorted(f"{m} -> {i}" for m, targets in edges.items() for i in targets
                  if rank[stage_of(i)] > rank[stage_of(m)])


def test_the_walk_sees_the_imports_it_must():
    """The checks below can fail: the walk finds known imports, and finds a planted circle."""
    edges = graph()
    assert "reeldb.capture.manifest" in edges["reeldb.export.plan"] or any(
        stage_of(i) == "capture" for i in edges["reeldb.export.plan"]), edges["reeldb.export.plan"]
    assert "reeldb.server.settings" in edges["reeldb.server.app"]
    planted = {**edges, "reeldb.server.settings": edges["reeldb.server.settings"] | {"reeldb.server.app"}}
    assert any("reeldb.server.settings" in c and "reeldb.server.app" in c for c in circles(planted))
    assert arrows_up({"reeldb.index.store": {"reeldb.server.app"}, "reeldb.server.app": set()})


def test_stages_never_import_the_server():
    edges = graph()
    assert [a for a in arrows_up(edges) if stage_of(a.split(" -> ")[1]) == TOP] == []


def test_no_stage_imports_a_stage_above_it():
    assert arrows_up(graph()) == []


def test_no_import_circle_in_the_server():
    edges = {m: {i for i in t if stage_of(i) == TOP} for m, t in graph().items() if stage_of(m) == TOP}
    assert circles(edges) == []


def test_server_floors_point_down():
    """Services never import a route, the app or the CLI; routes never import the app or the CLI."""
    edges = {m: t for m, t in graph().items() if stage_of(m) == TOP}

    def floor(m: str) -> int:
        if m == "reeldb.server.cli":
            return 3
        if m == "reeldb.server.app":
            return 2
        if m.startswith("reeldb.server.routes"):
            return 1
        return 0

    assert sorted(f"{m} -> {i}" for m, t in edges.items() for i in t if floor(i) > floor(m)) == []


def test_a_jobs_child_process_loads_no_web_or_webrtc_stack():
    """A render runs in a child process started for it (``server/jobs/child.py``); what the child
    imports before it renders is paid by every render (0.9 CPU-seconds when the error mapping
    pulled litestar and aiortc in, 0.55 without). It needs the compute parts, not the web server."""
    import subprocess
    import sys

    probe = ("import sys, reeldb.server.jobs.child_main\n"
             "from reeldb.server.jobs.parts import compute_parts\n"
             "compute_parts()\n"
             "print(' '.join(m for m in ('litestar', 'aiortc', 'torch', 'sentence_transformers') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert loaded.stdout.split() == [], loaded.stdout
