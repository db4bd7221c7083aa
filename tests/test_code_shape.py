"""The plain measures a newcomer relies on (issue 16): every function in src/ fits on a screen, and the package's
modules import each other without a circle (module-level imports; imports inside functions are deliberate
late bindings and are left out)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "gamealign"
MAX_LINES = 80


def _modules() -> dict[str, ast.Module]:
    out = {}
    for f in sorted(SRC.rglob("*.py")):
        parts = list(f.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = ast.parse(f.read_text(), filename=str(f))
    return out


def _imports(name: str, tree: ast.Module, known: set[str], is_pkg: bool) -> set[str]:
    """The package modules `name` imports at module level (including inside top-level if/try)."""
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found = set()
    body = list(tree.body)
    while body:
        node = body.pop(0)
        if isinstance(node, (ast.If, ast.Try)):
            body.extend(node.body + getattr(node, "orelse", []) + [n for h in getattr(node, "handlers", [])
                                                                   for n in h.body])
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                mod = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:           # `from . import x` names a submodule, `from .m import f` the module m
                if f"{mod}.{a.name}" in known:
                    found.add(f"{mod}.{a.name}")
                elif mod in known:
                    found.add(mod)
    found.discard(name)
    return found


def test_no_function_in_src_is_longer_than_a_screen():
    long = [(name, n.name, n.end_lineno - n.lineno + 1) for name, tree in _modules().items() for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > MAX_LINES]
    assert not long, f"functions over {MAX_LINES} lines: {long}"


def test_the_package_has_no_import_circle():
    mods = _modules()
    pkgs = {str(f.relative_to(SRC.parent).parent).replace("/", ".") for f in SRC.rglob("__init__.py")}
    graph = {m: _imports(m, t, set(mods), m in pkgs) for m, t in mods.items()}
    # a package importing its own submodules (re-exports in __init__) is not a circle through them
    graph = {m: {d for d in deps if not (m in pkgs and d.startswith(m + "."))} for m, deps in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert graph["gamealign.training"], "the import scan found nothing (it would pass vacuously)"
