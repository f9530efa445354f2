"""The NumPy backend end to end: fusion, the compile cache, standalone export, logging, an MLP."""
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.fx

from framejit.inductor import cache, export_numpy, inductor_backend, numpy_backend
from framejit.inductor.ir import Kernel
from tests.inductor.opgraph import make

aten = torch.ops.aten
ROOT = Path(__file__).resolve().parents[3]


def chain_graph():
    """x -> add y -> mul 2 -> exp -> sum(dim 1) -> sqrt -> neg: 6 pointwise/reduction ops."""
    g = torch.fx.Graph()
    x, y = g.placeholder("x"), g.placeholder("y")
    v = g.call_function(aten.add.Tensor, (x, y))
    v = g.call_function(aten.mul.Tensor, (v, 2))
    v = g.call_function(aten.tanh.default, (v,))
    v = g.call_function(aten.sum.dim_IntList, (v, [1]))
    v = g.call_function(aten.abs.default, (v,))
    v = g.call_function(aten.sqrt.default, (v,))
    g.output(v)
    return torch.fx.GraphModule(torch.nn.Module(), g)


def test_pointwise_chain_and_reduction_fuse_into_one_kernel():
    gm = chain_graph()
    x, y = make((4, 5), torch.float32), make((5,), torch.float32)
    fn = numpy_backend(gm, [x, y])
    kernels = [k for k in fn.lowered.kernels if isinstance(k, Kernel)]
    assert len(kernels) == 1 < 6
    assert "def fused_add_mul_tanh_sum" in fn.source
    assert "out=" in fn.source  # in-place reuse of the temporary instead of one array per op
    torch.testing.assert_close(fn(x, y), gm(x, y))


def test_shared_value_is_stored_once():
    g = torch.fx.Graph()
    x = g.placeholder("x")
    e = g.call_function(aten.exp.default, (x,))
    a = g.call_function(aten.add.Tensor, (e, 1))
    b = g.call_function(aten.mul.Tensor, (e, 2))
    g.output((a, b))
    gm = torch.fx.GraphModule(torch.nn.Module(), g)
    x = make((3, 3), torch.float32)
    fn = numpy_backend(gm, [x])
    assert len(fn.lowered.kernels) == 3  # exp stored, read by two kernels; not recomputed
    for got, ref in zip(fn(x), gm(x)):
        torch.testing.assert_close(got, ref)


def _mlp_graph(act):
    g = torch.fx.Graph()
    x, w1, b1, w2, b2 = (g.placeholder(n) for n in ("x", "w1", "b1", "w2", "b2"))
    h = g.call_function(aten.addmm.default, (b1, x, g.call_function(aten.permute.default, (w1, [1, 0]))))
    if act == "relu":
        h = g.call_function(aten.relu.default, (h,))
    else:  # gelu spelled in core ops, as graph/ decomposes it: 0.5 * h * (1 + erf(h / sqrt(2)))
        e = g.call_function(aten.erf.default, (g.call_function(aten.mul.Tensor, (h, 0.7071067811865476)),))
        h = g.call_function(aten.mul.Tensor, (g.call_function(aten.mul.Tensor, (h, 0.5)),
                                              g.call_function(aten.add.Tensor, (e, 1))))
    mm = g.call_function(aten.mm.default, (h, g.call_function(aten.permute.default, (w2, [1, 0]))))
    g.output(g.call_function(aten.add.Tensor, (mm, b2)))
    return torch.fx.GraphModule(torch.nn.Module(), g)


@pytest.mark.parametrize("act", ["relu", "gelu"])
def test_mlp_matches_eager(act):
    torch.manual_seed(0)
    lin1, lin2 = torch.nn.Linear(32, 64), torch.nn.Linear(64, 10)
    x = torch.randn(16, 32)
    args = [x, lin1.weight, lin1.bias, lin2.weight, lin2.bias]
    gm = _mlp_graph(act)
    with torch.no_grad():
        ref = lin2(torch.relu(lin1(x)) if act == "relu" else torch.nn.functional.gelu(lin1(x)))
        got = numpy_backend(gm, args)(*args)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_torch_level_graph_from_symbolic_trace():
    """Graphs that skipped graph/ normalization still compile (known torch calls lowered, others eager)."""
    def f(x, y):
        return torch.relu(x + y) * 2, torch.logcumsumexp(x, 0), x.t().contiguous()
    gm = torch.fx.symbolic_trace(f)
    x, y = make((3, 4), torch.float32), make((3, 4), torch.float32)
    fn = inductor_backend(gm, [x, y])
    for got, ref in zip(fn(x, y), f(x, y)):
        torch.testing.assert_close(got, ref)


def test_output_code_is_logged(caplog):
    with caplog.at_level(logging.INFO, logger="jit.output_code"):
        numpy_backend(chain_graph(), [make((2, 3), torch.float32), make((3,), torch.float32)])
    assert any("def run(inputs" in r.getMessage() for r in caplog.records)


def test_memory_cache_hit():
    x, y = make((4, 5), torch.float32), make((5,), torch.float32)
    numpy_backend(chain_graph(), [x, y])
    before = dict(cache.stats)
    numpy_backend(chain_graph(), [x, y])
    assert cache.stats["memory_hits"] == before["memory_hits"] + 1
    numpy_backend(chain_graph(), [x.t().contiguous().t(), y])  # other strides: another key, a miss
    assert cache.stats["memory_hits"] == before["memory_hits"] + 1


CHILD = """
import json, torch
from tests.inductor.numpy.test_backend import chain_graph
from framejit.inductor import cache, numpy_backend
x, y = torch.ones(4, 5), torch.ones(5)
out = numpy_backend(chain_graph(), [x, y])(x, y)
assert torch.allclose(out, chain_graph()(x, y))
print(json.dumps(cache.stats))
"""


def _child(cache_dir):
    env = dict(os.environ, FRAMEJIT_CACHE_DIR=str(cache_dir), PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_disk_cache_across_processes_and_corruption(tmp_path):
    first = _child(tmp_path)
    # the module under the captured graph (module_store.py) and its source under the optimized one: two misses
    assert first["misses"] == 2 and first["disk_hits"] == 0
    assert len(list((tmp_path / "numpy").glob("*.json"))) == 1
    files = list((tmp_path / "numpy-module").glob("*.json"))
    assert len(files) == 1 and not list((tmp_path / "numpy-module").glob(".tmp-*"))
    second = _child(tmp_path)
    assert second["disk_hits"] == 1 and second["misses"] == 0  # the module record alone: nothing lowered
    files[0].write_text(files[0].read_text()[:-40])  # truncated: JSON no longer parses
    third = _child(tmp_path)
    assert third["corrupt"] == 1 and third["disk_hits"] == 1  # dropped; the source read, the record rebuilt
    record = json.loads(files[0].read_text())  # rebuilt and rewritten
    record["payload"]["source"] += "\nraise SystemExit('tampered')\n"  # parses, but the checksum fails
    files[0].write_text(json.dumps(record))
    fourth = _child(tmp_path)
    assert fourth["corrupt"] == 1
    assert _child(tmp_path)["disk_hits"] == 1


def test_module_read_back_without_lowering(monkeypatch, tmp_path):
    """A module stored under the captured graph is loaded with its facts: nothing optimized or lowered until its
    LoweredGraph is asked for; a module reading a constant the optimizer folded is kept in memory only."""
    from framejit.inductor.numpy import backend as numpy_steps, module_store
    from framejit.inductor import lowering
    monkeypatch.setenv("FRAMEJIT_CACHE_DIR", str(tmp_path))
    cache.clear_memory()  # not from another test's compile of the same graph: this one writes tmp_path
    x, y = make((4, 5), torch.float32), make((5,), torch.float32)
    first = numpy_backend(chain_graph(), [x, y])
    kernels = len(first.lowered.kernels)
    cache.clear_memory()
    numpy_steps.reset()
    read = module_store.stats["read"]
    real = lowering.lower_graph
    lowered = []
    monkeypatch.setattr(lowering, "lower_graph", lambda *a, **k: lowered.append(1) or real(*a, **k))
    again = numpy_backend(chain_graph(), [x, y])
    assert module_store.stats["read"] == read + 1 and lowered == []
    torch.testing.assert_close(again(x, y), chain_graph()(x, y))
    assert again._lowered is None and len(again.lowered.kernels) == kernels and lowered == [1]

    root = torch.nn.Module()
    root.register_buffer("scale", torch.full((5,), 2.0))
    g = torch.fx.Graph()
    v = g.placeholder("x")
    folded = g.call_function(aten.add.Tensor, (g.get_attr("scale"), 1))  # folded by the optimizer: `_folded_0`
    g.output(g.call_function(aten.mul.Tensor, (v, folded)))
    gm = torch.fx.GraphModule(root, g)
    stored = module_store.stats["stored"]
    compiled = numpy_backend(gm, [x])
    torch.testing.assert_close(compiled(x), x * 3)
    assert any(b.attr and b.attr.startswith("_folded") for b in compiled.lowered.inputs)
    assert module_store.stats["stored"] == stored  # not in the captured graph: memory only


BLOCK_TORCH = """
import sys, importlib.abc
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == 'torch' or name.startswith('torch.'):
            raise ImportError('torch is blocked in this process')
sys.meta_path.insert(0, NoTorch())
import numpy as np, importlib.util
spec = importlib.util.spec_from_file_location('exported', {path!r})
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
x = np.arange(20, dtype=np.float32).reshape(4, 5) / 10
y = np.ones(5, dtype=np.float32)
(out,) = mod.run([x, y])
assert 'torch' not in sys.modules
np.save({npy!r}, out)
"""


def test_export_numpy_runs_without_torch(tmp_path):
    gm = chain_graph()
    x = torch.arange(20, dtype=torch.float32).reshape(4, 5) / 10
    y = torch.ones(5)
    path = export_numpy(gm, x, y, path=str(tmp_path / "chain.py"))
    assert "import torch" not in Path(path).read_text()
    npy = str(tmp_path / "out.npy")
    r = subprocess.run([sys.executable, "-c", BLOCK_TORCH.format(path=path, npy=npy)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    import numpy as np
    torch.testing.assert_close(torch.from_numpy(np.load(npy)), gm(x, y))


def test_export_numpy_names_the_op_needing_torch(tmp_path):
    def f(x):
        return torch.logcumsumexp(x, 0) + 1
    with pytest.raises(NotImplementedError, match="logcumsumexp"):
        export_numpy(f, torch.ones(3), path=str(tmp_path / "f.py"))


def test_zero_copy_inputs_and_bf16_roundtrip():
    g = torch.fx.Graph()
    x = g.placeholder("x")
    g.output(g.call_function(aten.mul.Tensor, (x, 3)))
    gm = torch.fx.GraphModule(torch.nn.Module(), g)
    xb = make((3, 4), torch.bfloat16)
    out = numpy_backend(gm, [xb])(xb)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, gm(xb), rtol=1e-2, atol=1e-2)
    from framejit.inductor.runtime.numpy_graph import to_numpy
    t = make((3, 4), torch.float32, "transposed")
    assert to_numpy(t).__array_interface__["data"][0] == t.data_ptr()


def test_non_cpu_inputs_run_the_graph_as_is():
    gm = chain_graph()
    fake = torch.empty(2, 3, device="meta")
    assert inductor_backend(gm, [fake, fake]) is gm


def test_non_tensor_values_and_odd_calls_keep_working():
    def f(x):
        n = x.size(0)
        return torch.relu(x, inplace=False) if False else torch.nn.functional.relu(x, inplace=True) * n
    gm = torch.fx.symbolic_trace(f)
    x = make((3, 4), torch.float32)
    fn = numpy_backend(gm, [x])
    torch.testing.assert_close(fn(x.clone()), f(x.clone()))

    def g(x, y):
        return torch.add(x, y, alpha=2).abs()
    gm = torch.fx.symbolic_trace(g)
    y = make((4,), torch.float32)
    torch.testing.assert_close(numpy_backend(gm, [x, y])(x, y), g(x, y))


def test_every_core_op_has_a_lowering():
    from framejit.graph.core_ops import CORE_OPS
    from framejit.inductor.lowering import LOWERINGS
    assert sorted(str(op) for op in CORE_OPS if op not in LOWERINGS) == []


def test_optimized_torch_function_layernorm_softmax():
    """Through graph.passes.optimize (decomposition to core ops) and then the NumPy backend."""
    def f(x, w, b):
        h = torch.nn.functional.layer_norm(x, (8,), w, b)
        return torch.softmax(h, dim=-1), h.mean(dim=0)
    gm = torch.fx.symbolic_trace(f)
    args = [make((5, 8), torch.float32), make((8,), torch.float32), make((8,), torch.float32)]
    fn = numpy_backend(gm, args)
    for got, ref in zip(fn(*args), f(*args)):
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
