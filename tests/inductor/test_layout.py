"""inductor/'s layering, read from its imports (ast): no import cycle between its modules, the run-time layer
(inductor/runtime/) imports no compile-time module, and the code it generates imports nothing of ours outside
inductor/runtime/. Every module imports on this machine (GPU-only paths included)."""
import ast
import importlib
import math
import re
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.inductor.triton.support import check_fn  # sets TRITON_INTERPRET=1 without a GPU

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "inductor"
# what runtime/ may import from the rest of inductor/: the IR its wrappers read, the cache directory, the switches
RUNTIME_MAY_IMPORT = {"framejit.inductor.ir", "framejit.inductor.cache", "framejit.inductor.config"}
THIRD_PARTY = {"numpy", "torch", "triton"}


def _module_name(path: Path) -> str:
    """inductor/ is imported as framejit.inductor (pyproject's package-dir mapping)."""
    parts = ["framejit", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(tree: ast.AST, module: str, is_package: bool) -> set:
    """Absolute names of the modules `tree` imports, anywhere in it (imports inside functions count: a lazy
    import is still a dependency)."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:  # `from . import tiling` imports the module framejit.inductor.triton.tiling
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    return found


def _graph() -> dict:
    graph = {}
    for name, path in MODULES.items():
        deps = _imports(ast.parse(path.read_text()), name, path.name == "__init__.py")
        graph[name] = {d for d in deps if d in MODULES and d != name and not name.startswith(d + ".")}
    return graph


def _cycle(graph: dict) -> list | None:
    """One import cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for d in sorted(graph[n]):
            if state.get(d) == "open":
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[n] = "done"
        return None
    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_no_import_cycle_inside_inductor():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_runtime_imports_no_compile_time_module():
    graph = _graph()
    for name, deps in graph.items():
        if name.startswith("framejit.inductor.runtime"):
            outside = {d for d in deps if not d.startswith("framejit.inductor.runtime") and d not in RUNTIME_MAY_IMPORT}
            assert not outside, f"{name} imports {sorted(outside)}"


# what decides a Triton module's plan, and what writes its kernels: the host writer reads the finished plan
# (triton/plan.py) and the written kernels, and reaches none of these, directly or through another module
PLANNERS = {f"framejit.inductor.{m}" for m in (
    "lowering", "fusion", "triton.planner", "triton.probe", "triton.fallback", "triton.rewrites", "triton.fusion",
    "triton.split", "triton.side_outputs", "triton.residual", "triton.matmul", "triton.twins", "triton.kernels",
    "triton.codegen")}


def _reached(graph: dict, start: str) -> set:
    seen, todo = set(), [start]
    while todo:
        for d in graph[todo.pop()] - seen:
            seen.add(d)
            todo.append(d)
    return seen


def test_triton_host_writer_imports_no_planner():
    graph = _graph()
    assert PLANNERS <= set(MODULES), sorted(PLANNERS - set(MODULES))  # a renamed planner renames it here
    assert not _reached(graph, "framejit.inductor.triton.host") & PLANNERS, \
        sorted(_reached(graph, "framejit.inductor.triton.host") & PLANNERS)
    # the check sees what a module reaches: the backend reaches every stage
    assert PLANNERS <= _reached(graph, "framejit.inductor.triton.backend")


def _architecture_rows() -> dict:
    """ARCHITECTURE.md's inductor/ section: folder ("" for the core, "numpy", "c", "triton", "runtime") -> {file name
    a row of its table names: that row}."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    section = text[text.index("\n## inductor/"):]
    section = section[:section.index("\n## ", 1)]
    rows, folder = {}, ""
    for line in section.splitlines():
        m = re.match(r"`(numpy|c|triton|runtime)/`", line)
        if m:
            folder = m.group(1)
        elif line.startswith("| `"):
            for name in re.findall(r"`([\w/]+\.py)`", line.split(" | ")[0]):
                rows.setdefault(folder, {})[name] = line
    return rows


def test_architecture_rows_match_the_tree():
    """Every module of inductor/ has a row in its folder's table, every row names a module that exists, and each
    row is a sentence or two (the detail lives in the module's docstring)."""
    rows = _architecture_rows()
    named = {(folder, name) for folder, names in rows.items() for name in names}
    files = {(str(p.parent.relative_to(PACKAGE)).replace(".", ""), p.name) for p in PACKAGE.rglob("*.py")
             if p.name != "__init__.py"}
    assert files - named == set(), f"modules without a row in ARCHITECTURE.md: {sorted(files - named)}"
    assert named - files == set(), f"rows naming no module: {sorted(named - files)}"
    long = [line[:60] for names in rows.values() for line in names.values() if len(line) > 400]
    assert not long, long


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name):
    importlib.import_module(name)


def _outside_runtime(source: str) -> list:
    """Modules generated `source` imports that are neither ours in inductor/runtime/ nor the standard library,
    NumPy, torch or Triton."""
    bad = []
    for name in _imports(ast.parse(source), "generated", False):
        root = name.split(".")[0]
        if name == "framejit.inductor.runtime" or name.startswith("framejit.inductor.runtime."):
            continue
        if root in THIRD_PARTY or root in sys.stdlib_module_names:
            continue
        bad.append(name)
    return sorted(bad)


def test_the_generated_import_check_finds_outside_imports():
    assert _outside_runtime("import math\nimport numpy as np\nfrom framejit.inductor.runtime import triton_helpers") == []
    assert _outside_runtime("from framejit.graph import attention\nfrom framejit.inductor import lowering") == [
        "framejit.graph", "framejit.inductor.lowering"]


def _attention(q, k, v, mask):
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    return torch.softmax(att.masked_fill(~mask, float("-inf")), -1) @ v


GRAPHS = {
    "softmax": (lambda x: torch.softmax(x * 2, -1), lambda: [torch.randn(4, 16)]),
    "linear_gelu": (lambda x, w, b: F.gelu(x @ w + b), lambda: [torch.randn(8, 16), torch.randn(16, 12),
                                                                torch.randn(12)]),
    "logcumsumexp_fallback": (lambda x: torch.logcumsumexp(x, 1).sin(), lambda: [torch.randn(4, 8)]),
    "transpose_sum": (lambda x: x.t().contiguous() + x.sum(), lambda: [torch.randn(32, 24)]),
    "attention_mask": (_attention, lambda: [torch.randn(1, 2, 8, 16), torch.randn(1, 2, 8, 16),
                                            torch.randn(1, 2, 8, 16), torch.tril(torch.ones(8, 8, dtype=torch.bool))]),
}


@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_generated_numpy_imports_only_runtime(graph):
    from framejit.inductor import numpy_backend
    fn, inputs = GRAPHS[graph]
    compiled = numpy_backend(torch.fx.symbolic_trace(fn), inputs())
    assert "def run(" in compiled.source
    assert _outside_runtime(compiled.source) == []


@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_generated_triton_imports_only_runtime(graph):
    fn, inputs = GRAPHS[graph]
    compiled = check_fn(fn, *inputs(), tol=(2e-2, 2e-2))
    assert "def call(" in compiled.source
    if graph == "attention_mask":  # the run-time mask check, through inductor/runtime/attention.py
        assert "runtime_attention.causal_attention(" in compiled.source
    assert _outside_runtime(compiled.source) == []
