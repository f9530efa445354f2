"""The op-coverage table (docs/op_coverage.md): for each op, does each backend generate code for it, or run it in
torch? Run from the repository root: `python -m docs.op_coverage` (or `python docs/op_coverage.py`); `--check`
compares the table with the file instead of writing it.

Nothing here is a hand-written answer: each op is compiled as a tiny graph by the NumPy backend and by the Triton
backend (Triton's CPU interpreter, TRITON_INTERPRET=1, where there is no GPU), and the compiled graph's lowered
form says what happened:
  * lowered: the op's own aten overload reached the code generator and became generated code;
  * decomposed: the optimizer spelled the call as other core ops, all of them generated code;
  * torch: the op (or one of the ops it became) runs as a torch call inside the generated module, or the whole
    graph runs as captured; the reason the backend logged is given;
  * WRONG: the compiled graph returned something else than eager torch (values, dtype or shape): a bug.
A generated op whose index check runs in torch (Triton under its CPU interpreter: graph/index_checks.py; on CUDA
the check is a device-side assert inside the kernel) is marked "(check in torch)". The cases name inputs only; what happens to them is measured."""
from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a script: import this checkout's framejit, not an installed one
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before anything imports triton

import torch.fx  # noqa: E402
import torch.nn.functional as F  # noqa: E402

aten = torch.ops.aten
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "op_coverage.md")


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def x(*shape, dtype=torch.float32, seed=0):
    return torch.randn(shape, generator=_g(seed)).to(dtype)


def pos(*shape, seed=0):
    return torch.rand(shape, generator=_g(seed)) + 0.5


def ints(high, *shape, seed=0):
    return torch.randint(0, high, shape, generator=_g(seed))


def bools(*shape, seed=0):
    return torch.rand(shape, generator=_g(seed)) > 0.5


class Case:
    """One row: `fn(*inputs)` traced with torch.fx; `own` the aten overload whose presence in the optimized graph
    makes the row "lowered" rather than "decomposed" (None: a torch-level function, only decomposed or not)."""

    def __init__(self, name: str, group: str, fn, inputs, own=None):
        self.name, self.group, self.fn, self.inputs, self.own = name, group, fn, inputs, own


def _unary_input(op):
    if op in (aten.logical_not.default, aten.bitwise_not.default):
        return ints(5, 4, 6) if op is aten.bitwise_not.default else bools(4, 6)
    return pos(4, 6) if op in (aten.log.default, aten.sqrt.default, aten.rsqrt.default, aten.log1p.default) \
        else x(4, 6)


def _with(op, *args):
    """op(t, *args) as a one-input function (torch.fx would trace default arguments as inputs)."""
    return lambda t: op(t, *args)


def _both(pair):
    """A function returning the two results of an op returning a pair, as user code unpacks them."""
    return pair[0], pair[1]


def _three(triple):
    return triple[0], triple[1], triple[2]


def _floor_div(op):
    return lambda a, b: op(a, b, rounding_mode="floor")


def core_cases() -> list:
    """Every pointwise and reduction op of graph/core_ops.py, by its aten overload."""
    from framejit.graph import core_ops
    cases = []
    for op in sorted(core_ops.POINTWISE_UNARY, key=str):
        cases.append(Case(str(op), "core: unary", op, [_unary_input(op)], op))
    for op in sorted(core_ops.POINTWISE_BINARY, key=str):
        if op._overloadname == "Scalar" or op is aten.pow.Tensor_Scalar:
            a, b = ([ints(9, 4, 6)], 3) if "bitwise" in str(op) else ([pos(4, 6)], 2.5)
            cases.append(Case(str(op), "core: binary", _with(op, b), a, op))
            continue
        if "bitwise" in str(op):
            a = [ints(9, 4, 6), ints(9, 4, 6, seed=1)]
        elif "logical" in str(op):
            a = [bools(4, 6), bools(4, 6, seed=1)]
        else:
            a = [pos(4, 6), pos(4, 6, seed=1)]
        fn = _floor_div(op) if op is aten.div.Tensor_mode else op
        cases.append(Case(str(op), "core: binary", fn, a, op))
    cases.append(Case(str(aten.where.self), "core: ternary", aten.where.self, [bools(4, 6), x(4, 6), x(4, 6, seed=1)],
                      aten.where.self))
    cases.append(Case(str(aten._to_copy.default), "core: convert",
                      lambda t: aten._to_copy.default(t, dtype=torch.float16), [x(4, 6)], aten._to_copy.default))
    reductions = [(aten.sum.dim_IntList, ([1],)), (aten.amax.default, ([1],)), (aten.amin.default, ([1],)),
                  (aten.prod.dim_int, (1,)), (aten.argmax.default, (1,)), (aten.argmin.default, (1,)),
                  (aten.any.dims, ([1],)), (aten.any.dim, (1,)), (aten.all.dim, (1,)), (aten.all.dims, ([1],))]
    for op, args in reductions:
        t = bools(4, 6) if op in (aten.any.dims, aten.any.dim, aten.all.dim, aten.all.dims) else x(4, 6)
        cases.append(Case(str(op), "core: reduction", _with(op, *args), [t], op))
    return cases


def composite_cases() -> list:
    """Issue 20's composite ops and the common torch-level calls, each as it is written in user code."""
    idx = ints(4, 3, 5)
    c = [
        Case("softmax", "composite", lambda t: torch.softmax(t, -1), [x(4, 6)]),
        Case("log_softmax", "composite", lambda t: torch.log_softmax(t, -1), [x(4, 6)]),
        Case("logsumexp", "composite", lambda t: torch.logsumexp(t, -1), [x(4, 6)]),
        Case("cross_entropy", "composite", lambda t, y: F.cross_entropy(t, y), [x(4, 6), ints(6, 4)]),
        Case("nll_loss", "composite", lambda t, y: F.nll_loss(t, y), [x(4, 6), ints(6, 4)]),
        Case("layer_norm", "composite", lambda t, w, b: F.layer_norm(t, (6,), w, b), [x(4, 6), x(6), x(6, seed=2)]),
        Case("rms_norm", "composite", lambda t, w: F.rms_norm(t, (6,), w), [x(4, 6), x(6)]),
        Case("batch_norm (eval)", "composite", lambda t, m, v, w, b: F.batch_norm(t, m, v, w, b),
             [x(2, 4, 3), x(4), pos(4), x(4, seed=2), x(4, seed=3)]),
        Case("batch_norm (batch statistics)", "composite",
             lambda t, w, b: F.batch_norm(t, None, None, w, b, training=True), [x(2, 4, 3), x(4), x(4, seed=2)]),
        Case("group_norm", "composite", lambda t, w, b: F.group_norm(t, 2, w, b), [x(2, 4, 3), x(4), x(4, seed=2)]),
        Case("instance_norm", "composite", lambda t: F.instance_norm(t), [x(2, 4, 3)]),
        Case("gelu", "composite", lambda t: F.gelu(t), [x(4, 6)]),
        Case("silu", "composite", lambda t: F.silu(t), [x(4, 6)]),
        Case("mean over dims", "composite", lambda t: t.mean((0, 1)), [x(3, 4, 6)]),
        Case("var over dims", "composite", lambda t: t.var(1, keepdim=True), [x(4, 6)]),
        Case("var_mean", "composite", lambda t: _both(torch.var_mean(t, 1)), [x(4, 6)]),
        Case("max with indices", "composite", lambda t: _both(torch.max(t, 1)), [x(4, 6)]),
        Case("min with indices", "composite", lambda t: _both(torch.min(t, 1)), [x(4, 6)]),
        Case("argmax", "composite", lambda t: torch.argmax(t, 1), [x(4, 6)]),
        Case("cumsum", "composite", lambda t: torch.cumsum(t, 1), [x(4, 6)]),
        Case("where", "composite", lambda m, a: torch.where(m, a, 0.5), [bools(4, 6), x(4, 6)]),
        Case("masked_fill (scalar)", "composite", lambda t, m: t.masked_fill(m, -1.0), [x(4, 6), bools(4, 6)]),
        Case("masked_fill (0-d tensor)", "composite", lambda t, m, v: t.masked_fill(m, v),
             [x(4, 6), bools(4, 6), x()]),
        Case("clamp (scalars)", "composite", lambda t: torch.clamp(t, -0.5, 0.5), [x(4, 6)]),
        Case("clamp (tensors)", "composite", lambda t, lo, hi: torch.clamp(t, lo, hi),
             [x(4, 6), x(6, seed=1) - 1, x(4, 1, seed=2) + 1]),
        Case("clamp_min", "composite", lambda t: torch.clamp_min(t, 0.1), [x(4, 6)]),
        Case("clamp_max", "composite", lambda t: torch.clamp_max(t, 0.1), [x(4, 6)]),
        Case("pow (int exponent)", "composite", lambda t: t ** 3, [x(4, 6)]),
        Case("pow (float exponent)", "composite", lambda t: t ** 2.5, [pos(4, 6)]),
        Case("pow (tensor exponent)", "composite", lambda t, e: t ** e, [pos(4, 6), x(4, 6, seed=1)]),
        Case("pow (integer tensors)", "composite", lambda t, e: t ** e, [ints(5, 4, 6), ints(4, 4, 6, seed=1)]),
        Case("gather", "indexing", lambda t, i: torch.gather(t, 1, i), [x(3, 6), idx], aten.gather.default),
        Case("index_select", "indexing", lambda t, i: torch.index_select(t, 0, i), [x(4, 6), ints(4, 5)],
             aten.index_select.default),
        Case("x[idx] (index.Tensor)", "indexing", lambda t, i: t[i], [x(4, 6), ints(4, 2, 3)], aten.index.Tensor),
        Case("x[:, idx]", "indexing", lambda t, i: t[:, i], [x(4, 6), ints(6, 5)], aten.index.Tensor),
        Case("embedding", "indexing", lambda i, w: F.embedding(i, w), [ints(10, 2, 5), x(10, 4)],
             aten.embedding.default),
        Case("embedding_dense_backward", "indexing",
             lambda g, i: aten.embedding_dense_backward.default(g, i, 10, -1, False),
             [x(2, 5, 4), ints(10, 2, 5)], aten.embedding_dense_backward.default),
        Case("scatter (src)", "indexing", lambda t, i, s: torch.scatter(t, 1, i, s), [x(3, 6), idx, x(3, 5)],
             aten.scatter.src),
        Case("scatter (value)", "indexing", lambda t, i: torch.scatter(t, 1, i, 2.0), [x(3, 6), idx],
             aten.scatter.value),
        Case("scatter_add", "indexing", lambda t, i, s: torch.scatter_add(t, 1, i, s), [x(3, 6), idx, x(3, 5)],
             aten.scatter_add.default),
        Case("scatter_reduce (sum)", "indexing", lambda t, i, s: torch.scatter_reduce(t, 1, i, s, "sum"),
             [x(3, 6), idx, x(3, 5)], None),
        Case("scatter_reduce (amax)", "indexing", lambda t, i, s: torch.scatter_reduce(t, 1, i, s, "amax"),
             [x(3, 6), idx, x(3, 5)], None),
        Case("index_add", "indexing", lambda t, i, s: torch.index_add(t, 0, i, s), [x(4, 6), ints(4, 5), x(5, 6)],
             aten.index_add.default),
        Case("index_put (accumulate)", "indexing", lambda t, i, v: torch.index_put(t, (i,), v, accumulate=True),
             [x(4, 6), ints(4, 5), x(5, 6)], aten.index_put.default),
        Case("flip", "indexing", lambda t: torch.flip(t, (0, 1)), [x(4, 6)], None),
        Case("roll", "indexing", lambda t: torch.roll(t, (1, -2), (0, 1)), [x(4, 6)], None),
        Case("max_pool2d", "pooling", lambda t: F.max_pool2d(t, 3, 2, 1), [x(2, 3, 8, 8)]),
        Case("max_pool2d with indices", "pooling", lambda t: _both(F.max_pool2d(t, 2, return_indices=True)),
             [x(2, 3, 8, 8)]),
        Case("avg_pool2d", "pooling", lambda t: F.avg_pool2d(t, 3, 2, 1), [x(2, 3, 8, 8)]),
        Case("adaptive_avg_pool2d (1, 1)", "pooling", lambda t: F.adaptive_avg_pool2d(t, 1), [x(2, 3, 8, 8)]),
        Case("adaptive_avg_pool2d (2, 2)", "pooling", lambda t: F.adaptive_avg_pool2d(t, 2), [x(2, 3, 8, 8)]),
        Case("adaptive_avg_pool2d (3, 3)", "pooling", lambda t: F.adaptive_avg_pool2d(t, 3), [x(2, 3, 8, 8)]),
        Case("softmax backward", "backward", lambda g, y: aten._softmax_backward_data.default(g, y, 1, torch.float32),
             [x(4, 6), torch.softmax(x(4, 6, seed=1), 1)], aten._softmax_backward_data.default),
        Case("log_softmax backward", "backward",
             lambda g, y: aten._log_softmax_backward_data.default(g, y, 1, torch.float32),
             [x(4, 6), torch.log_softmax(x(4, 6, seed=1), 1)], aten._log_softmax_backward_data.default),
        Case("layer_norm backward", "backward",
             lambda g, t, m, r, w, b: _three(aten.native_layer_norm_backward.default(g, t, [6], m, r, w, b,
                                                                                      [True, True, True])),
             [x(4, 6), x(4, 6, seed=1), x(4, 1, seed=2), pos(4, 1), x(6, seed=3), x(6, seed=4)],
             aten.native_layer_norm_backward.default),
        Case("max_pool2d backward", "backward",
             lambda g, t, i: aten.max_pool2d_with_indices_backward.default(g, t, [2, 2], [2, 2], [0, 0], [1, 1],
                                                                            False, i),
             [x(1, 2, 2, 2), x(1, 2, 4, 4, seed=1), F.max_pool2d(x(1, 2, 4, 4, seed=1), 2, return_indices=True)[1]],
             aten.max_pool2d_with_indices_backward.default),
        Case("linear", "extern", lambda t, w, b: F.linear(t, w, b), [x(4, 6), x(3, 6), x(3)]),
        Case("conv2d", "extern", lambda t, w: F.conv2d(t, w, padding=1), [x(1, 2, 5, 5), x(3, 2, 3, 3)]),
        Case("scaled_dot_product_attention", "extern",
             lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
             [x(1, 2, 4, 8), x(1, 2, 4, 8, seed=1), x(1, 2, 4, 8, seed=2)]),
    ]
    return c


def cases() -> list:
    return core_cases() + composite_cases()


def _same(got, ref) -> bool:
    if isinstance(ref, (tuple, list)):
        return isinstance(got, (tuple, list)) and len(got) == len(ref) and all(map(_same, got, ref))
    if not isinstance(ref, torch.Tensor):
        return got == ref
    if not isinstance(got, torch.Tensor) or got.dtype != ref.dtype or got.shape != ref.shape:
        return False
    got, ref = got.cpu(), ref.cpu()
    if ref.dtype.is_floating_point:
        return torch.allclose(got.double(), ref.double(), rtol=1e-3, atol=1e-3, equal_nan=True)
    return torch.equal(got, ref)


def _graph(case: Case) -> torch.fx.GraphModule:
    """The case as an FX graph: traced from its function, or one call of its aten overload."""
    if not isinstance(case.fn, torch._ops.OpOverload):
        return torch.fx.symbolic_trace(case.fn)
    g = torch.fx.Graph()
    g.output(g.call_function(case.fn, tuple(g.placeholder(f"in{i}") for i in range(len(case.inputs)))))
    return torch.fx.GraphModule(torch.nn.Module(), g)


def status(case: Case, backend: str) -> str:
    """What `backend` ("numpy" | "triton") does with the case, measured (see the module doc)."""
    from framejit.graph.index_checks import CHECK_INDEX
    from framejit.inductor.backends import numpy_backend, triton_backend
    from framejit.inductor.ir import FallbackKernel
    from framejit.inductor.triton.host import op_name
    compile_ = numpy_backend if backend == "numpy" else triton_backend
    device = "cuda" if backend == "triton" and torch.cuda.is_available() else "cpu"
    inputs = [t.clone().to(device) for t in case.inputs]
    ref = case.fn(*[t.clone() for t in inputs])
    gm = _graph(case)
    try:
        fn = compile_(gm, inputs)
        got = fn(*inputs)
    except Exception as e:  # noqa: BLE001 - a compiler error is a finding, shown in the table
        return f"ERROR: {type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''}"
    if not _same(got, ref):
        return "WRONG"
    lowered = getattr(fn, "lowered", None)
    if lowered is None:
        return "torch: the graph runs as captured"
    in_torch = [k for k in lowered.kernels if isinstance(k, FallbackKernel)]
    others = [k for k in in_torch if k.target is not CHECK_INDEX]
    if others:
        return "torch: " + "; ".join(sorted({f"{op_name(k.target)} ({k.reason})" for k in others}))
    own = case.own
    text = lowered.graph_text
    how = "lowered" if own is not None and f"torch.ops.{own}" in text else "decomposed"
    return how + (" (check in torch)" if len(in_torch) > len(others) else "")


def table(rows: list) -> str:
    kinds = lambda col: {s.split(" ")[0].rstrip(":") for s in col}
    lines = ["# Op coverage", "",
             "Generated by `python -m docs.op_coverage` (docs/op_coverage.py): each op compiled as a tiny graph by "
             "each backend, the compiled graph inspected. *lowered*: the op's own aten overload became generated "
             "code; *decomposed*: the optimizer spelled it as other core ops, all generated; *torch*: it runs as a "
             "torch call (reason given); *(check in torch)*: an index check runs as a torch call (Triton: on the "
             "CPU; on CUDA it is a device-side assert inside the kernel). Triton columns come from Triton's CPU interpreter where there is no GPU.",
             ""]
    for backend in ("numpy", "triton"):
        col = [r[backend] for r in rows]
        counts = {k: sum(1 for s in col if s.split(" ")[0].rstrip(":") == k) for k in sorted(kinds(col))}
        lines.append(f"- {backend}: " + ", ".join(f"{n} {k}" for k, n in counts.items()) + f" (of {len(col)})")
    lines += ["", "| op | group | numpy | triton |", "| --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| `{r['name']}` | {r['group']} | {r['numpy']} | {r['triton']} |")
    return "\n".join(lines) + "\n"


def collect(selected=None) -> list:
    import logging
    logging.getLogger("jit").setLevel(logging.ERROR)
    rows = []
    for case in cases():
        if selected is not None and case.name not in selected:
            continue
        rows.append({"name": case.name, "group": case.group, "numpy": status(case, "numpy"),
                     "triton": status(case, "triton")})
    return rows


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = table(collect())
    if "--check" in argv:
        with open(OUT) as f:
            same = f.read() == text
        print("docs/op_coverage.md is up to date" if same else "docs/op_coverage.md differs: regenerate it")
        return 0 if same else 1
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
