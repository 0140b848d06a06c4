"""Every module imports on its own, and the modules of err_stream.io import each other in one
direction only (no circle, not even one hidden inside a function)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("err_stream", "pipelines", "vs_plugin")


def modules() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


# A fresh interpreter loads the third-party libraries once, then forks a child per module: the
# child imports that one module with none of ours loaded (as `python -c "import X"` would),
# without paying for torch's import a hundred times.
_IMPORT_EACH = r"""
import importlib, json, os, sys
for heavy in ("numpy", "torch", "av", "yaml"):
    try:
        importlib.import_module(heavy)
    except ImportError:
        pass
failed = {}
for name in json.loads(sys.argv[1]):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            importlib.import_module(name)
            message = ""
        except BaseException as e:  # a missing optional extra is fine; anything else is not
            message = "" if isinstance(e, ImportError) and getattr(e, "name", None) in OPTIONAL else f"{type(e).__name__}: {e}"
        os.write(w, message.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        message = f.read().decode()
    _, status = os.waitpid(pid, 0)
    if message or status:
        failed[name] = message or f"exit status {status}"
print(json.dumps(failed))
"""
# Extras a module may need at import time (these modules are only imported when they are used).
OPTIONAL = ("vapoursynth", "ray", "nvidia", "triton", "mamba_ssm", "lpips", "tensorboard")


@pytest.mark.slow
def test_every_module_imports_on_its_own():
    names = modules()
    assert "err_stream.io.sources" in names and "err_stream.video.planning" in names
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = f"OPTIONAL = {OPTIONAL!r}\n" + _IMPORT_EACH
    run = subprocess.run([sys.executable, "-c", code, json.dumps(names)], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {}


def _run_time_nodes(tree: ast.AST):
    """Every node, except what only type checkers read (``if TYPE_CHECKING:`` blocks)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
                todo.extend(child.orelse)
                continue
            todo.append(child)


def _imports_within(package: Path, dotted: str) -> dict[str, set[str]]:
    """module -> the sibling modules of ``package`` it imports when it runs, at the top or
    inside functions."""
    graph: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        name = path.stem
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found: set[str] = set()
        for node in _run_time_nodes(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1 and node.module:  # from .sibling import x
                    found.add(node.module.split(".")[0])
                elif node.level == 1:  # from . import sibling
                    found.update(a.name for a in node.names)
                elif node.level == 0 and node.module and node.module.startswith(dotted + "."):
                    found.add(node.module[len(dotted) + 1 :].split(".")[0])
            elif isinstance(node, ast.Import):
                found.update(a.name[len(dotted) + 1 :].split(".")[0] for a in node.names if a.name.startswith(dotted + "."))
        graph[name] = {m for m in found if (package / f"{m}.py").exists() and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_io_modules_import_each_other_one_way():
    graph = _imports_within(ROOT / "err_stream" / "io", "err_stream.io")
    assert graph["sources"] >= {"source", "vpy", "dali", "live_source"}  # the registry knows every source
    assert "vpy" not in graph["source"] and "sources" not in graph["sink"]  # sources do not know each other
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
    assert _cycle({"a": {"b"}, "b": {"a"}}) is not None  # (the check finds one)
