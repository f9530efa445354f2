"""Generated Triton modules in the compiled-code cache (inductor/triton/module_cache.py): a second process compiling
the same graph reads the module from disk and plans nothing; what cannot be written down stays in memory."""
import json
import os
import subprocess
import sys
import textwrap

import torch

from tests.inductor.triton.support import DEVICE, assert_same, on_device

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

SCRIPT = textwrap.dedent('''
    import json
    import torch
    import jit
    from framejit.inductor import cache
    from framejit.inductor.triton import module_cache, planner

    rounds = []
    lower_round = planner.lower_round
    planner.lower_round = lambda *a, **k: rounds.append(1) or lower_round(*a, **k)

    def norm_tanh(x, w):
        y = x - x.mean(-1, keepdim=True)
        return torch.tanh(y * torch.rsqrt((y * y).mean(-1, keepdim=True) + 1e-5) * w)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    x, w = torch.randn(8, 32, device=device), torch.randn(32, device=device)
    torch.testing.assert_close(jit.compile(norm_tanh, backend="triton")(x, w), norm_tanh(x, w))
    print(json.dumps({"read": module_cache.stats["read"], "stored": module_cache.stats["stored"],
                      "disk_hits": cache.stats["disk_hits"], "planning_rounds": len(rounds)}))
''')


def _process(cache_dir) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAMEJIT_", "JIT_LOGS"))}
    env.update(FRAMEJIT_CACHE_DIR=str(cache_dir), PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    if DEVICE == "cpu":
        env["TRITON_INTERPRET"] = "1"
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_second_process_reads_the_module_and_plans_nothing(tmp_path):
    first = _process(tmp_path)
    assert first["stored"] == 1 and first["read"] == 0 and first["planning_rounds"] >= 1
    assert len(list((tmp_path / "triton").glob("*.json"))) == 1  # the module's record, beside its .py file
    second = _process(tmp_path)
    assert second["read"] == 1 and second["stored"] == 0 and second["planning_rounds"] == 0
    assert second["disk_hits"] >= 1


def _softmax(x):
    e = torch.exp(x - x.amax(-1, keepdim=True))
    return e / e.sum(-1, keepdim=True)


def test_module_read_back_runs_and_plans_again_when_inspected(monkeypatch, tmp_path):
    from framejit.inductor import cache
    from framejit.inductor.backends import triton_backend
    from framejit.inductor.runtime import triton_graph
    from framejit.inductor.triton import module_cache
    monkeypatch.setenv("FRAMEJIT_CACHE_DIR", str(tmp_path))
    x = on_device(torch.randn(6, 20))
    first = triton_backend(torch.fx.symbolic_trace(_softmax), [x])
    kernels = [type(k).__name__ for k in first.lowered.kernels]
    cache.clear_memory()
    triton_graph._loaded.clear()  # as in a new process: the record and the module file come from disk
    read = module_cache.stats["read"]
    again = triton_backend(torch.fx.symbolic_trace(_softmax), [x])
    assert module_cache.stats["read"] == read + 1
    assert again._lowered is None and again.source == first.source
    assert_same(again(x), _softmax(x))
    assert [type(k).__name__ for k in again.lowered.kernels] == kernels  # planned again on demand


def test_modules_with_torch_fallbacks_stay_in_memory(monkeypatch, tmp_path):
    from framejit.inductor.backends import triton_backend
    from framejit.inductor.ir import FallbackKernel
    monkeypatch.setenv("FRAMEJIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("FRAMEJIT_TRITON_FALLBACK", "aten.tanh")

    def fn(x):
        return torch.tanh(x * 2) + 1

    x = on_device(torch.randn(5, 7))
    compiled = triton_backend(torch.fx.symbolic_trace(fn), [x])
    assert any(isinstance(k, FallbackKernel) for k in compiled.lowered.kernels)
    assert_same(compiled(x), fn(x))
    assert not list((tmp_path / "triton").glob("*.json"))
