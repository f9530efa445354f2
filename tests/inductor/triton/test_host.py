"""The host side of generated Triton modules, per call: library results whose layout follows from their sizes are
used as returned (no `fixed_layout`), nn.Linear products are spelled `torch.nn.functional.linear`, view chains over
buffers of known layout are one `as_strided`, and a fixed-size kernel launches through the `fast_launch` its
Launcher publishes once the kernel for aligned tensors is compiled. Under the interpreter the compiled-kernel
launch is a stand-in that runs the kernel through Triton, so the mechanism is checked without a GPU."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tests.inductor.triton.support import DEVICE, assert_same, check_fn, check_graph, on_device
from tests.inductor.triton.test_dynamic import run_sizes

from framejit.inductor.runtime import triton_graph as triton_runtime

TOL = (1e-4, 1e-4)


def _call(fn) -> str:
    """The generated `call` function's source."""
    return fn.source[fn.source.index("def call("):]


def _line(fn, name: str) -> str:
    return next(line for line in _call(fn).splitlines() if line.strip().startswith(f"{name} ="))


def test_linear_is_a_plain_call_where_the_probe_matched():
    x, w, b = torch.randn(6, 8), torch.randn(12, 8), torch.randn(12)
    fn = check_fn(lambda x, w, b: (F.linear(x, w, b), F.linear(x, w, b).softmax(-1)), x, w, b, tol=TOL)
    line = _line(fn, "addmm_default")
    assert "torch.nn.functional.linear(x, w, b)" in line and "fixed_layout" not in line
    # bit for bit what eager's addmm gives: linear calls the same addmm in C++
    x, w, b = (on_device(t) for t in (x, w, b))
    assert torch.equal(fn(x, w, b)[0], torch.addmm(b, x, w.t()))
    fn = check_fn(lambda x, w: (x @ w.t()).softmax(-1), x, w, tol=TOL)  # no bias: linear(x, w) is x @ w.t()
    assert "torch.nn.functional.linear(x, w)" in _line(fn, "mm_default")


def test_matmul_results_are_used_as_returned():
    # the embedding is a generated gather (issue 20); its index check's result keeps fixed_layout, the product not
    idx, table, m = torch.tensor([[1, 3, 0]]), torch.randn(5, 8), torch.randn(8, 4)
    fn = check_fn(lambda i, t, m: (F.embedding(i, t) * 2) @ m + 1, idx, table, m, tol=TOL)
    call = _call(fn)
    assert "torch.nn.functional.embedding(" not in call and "torch.matmul(" in call
    assert "fixed_layout(torch.matmul" not in call


def test_addmm_keeps_scales_that_are_not_the_default():
    x, w, b = torch.randn(6, 8), torch.randn(8, 12), torch.randn(12)
    fn = check_fn(lambda x, w, b: torch.addmm(b, x, w, beta=0.5, alpha=2.0).softmax(-1), x, w, b, tol=TOL)
    assert "beta=0.5, alpha=2.0" in _call(fn)
    fn = check_fn(lambda x, w, b: torch.addmm(b, x, w).softmax(-1), x, w, b, tol=TOL)
    assert "torch.addmm(b, x, w)" in _call(fn)  # no weight transpose: stays addmm, without spelled defaults


def test_layouts_that_can_change_per_call_keep_fixed_layout():
    q, k, v = (torch.randn(2, 3, 8, 16) for _ in range(3))
    fn = check_fn(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True) * 2, q, k, v,
                  tol=(2e-2, 2e-2))
    assert "fixed_layout(torch.nn.functional.scaled_dot_product_attention(" in _call(fn)  # backend-dependent
    x, w = torch.randn(2, 4, 6, 5), torch.randn(3, 4, 3, 3)
    fn = check_fn(lambda x, w: F.conv2d(x, w).relu(), x, w, tol=TOL)
    assert "fixed_layout(torch.convolution(" in _call(fn)  # follows the input's memory format


def test_fixed_layout_kept_where_the_probe_did_not_run(monkeypatch):
    from framejit.inductor.triton import probe as triton_probe
    monkeypatch.setattr(triton_probe, "probe_extern_layouts", lambda *a: 0)
    x, w, b = torch.randn(6, 8), torch.randn(12, 8), torch.randn(12)
    fn = check_fn(lambda x, w, b: F.linear(x, w, b).softmax(-1), x, w, b, tol=TOL)
    assert "fixed_layout(torch.nn.functional.linear(x, w, b)" in _call(fn)


@pytest.mark.usefixtures("fresh_jit")
def test_fixed_layout_kept_with_dynamic_sizes():
    w, b = on_device(torch.randn(12, 8)), on_device(torch.randn(12))
    graph = run_sizes(lambda x: F.linear(x, w, b).relu(), lambda n: (torch.randn(n, 8),), [5, 7], [0])
    call = _call(graph.variants[0].fn)
    assert "fixed_layout(torch.nn.functional.linear(" in call and "as_strided" not in call


def _qkv_attention(x, w, b):
    B, T, C = x.shape
    q, k, v = F.linear(x, w, b).split(C, dim=2)
    q, k, v = (t.view(B, T, 2, C // 2).transpose(1, 2) for t in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C) * 2


def test_shortcuts_off(monkeypatch):
    """FRAMEJIT_TRITON_HOST_SHORTCUTS=0: every op as the graph spells it, through `fixed_layout`, view by view,
    every launch through its Launcher (what the shortcuts are measured against)."""
    monkeypatch.setenv("FRAMEJIT_TRITON_HOST_SHORTCUTS", "0")
    x, w, b = torch.randn(2, 8, 16), torch.randn(48, 16), torch.randn(48)
    fn = check_fn(_qkv_attention, x, w, b, tol=(2e-2, 2e-2))
    call = _call(fn)
    assert "fixed_layout(torch.addmm(b, x.reshape((16, 16)), w.permute((1, 0)), beta=1, alpha=1)" in call
    assert "as_strided" not in call and "functional.linear" not in call
    assert all(fn.calls[name] is launcher for name, launcher in fn.launch.items())


def test_view_chains_over_known_layouts_are_one_as_strided():
    x, w, b = torch.randn(2, 8, 16), torch.randn(48, 16), torch.randn(48)
    fn = check_fn(_qkv_attention, x, w, b, tol=(2e-2, 2e-2))
    sdpa = _line(fn, "scaled_dot_product_attention_default")
    # q, k, v: slices of the qkv product at element offsets 0, 16, 32, each one call instead of four views
    assert sdpa.count(".as_strided((2, 2, 8, 8), (384, 8, 48, 1)") == 3 and ", 16)" in sdpa and ", 32)" in sdpa
    assert ".permute(" not in sdpa
    # the chains over a graph input (its offset and strides are the caller's) stay views
    fn = check_fn(lambda q: F.scaled_dot_product_attention(q.transpose(1, 2), q.transpose(1, 2),
                                                           q.transpose(1, 2)) + 1, torch.randn(2, 8, 2, 8),
                  tol=(2e-2, 2e-2))
    assert "as_strided" not in _call(fn)


class _Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.randn(12, 8)), nn.Parameter(torch.randn(12))

    def forward(self, x):
        return F.linear(x, self.weight, self.bias).softmax(-1)


def test_parameter_storage_swapped_after_compiling():
    """`p.data = t` keeps the Parameter object (what the compiled graph holds) with new storage: nothing derived
    from the old storage may survive across calls."""
    lin = _Linear().to(DEVICE).requires_grad_(False)  # a graph needing autograd runs in torch
    x = on_device(torch.randn(4, 8))
    fn = check_graph(torch.fx.symbolic_trace(lin), [x], tol=TOL)
    assert "torch.nn.functional.linear(x, weight, bias)" in _call(fn)
    lin.weight.data = on_device(torch.randn(12, 8))
    lin.bias.data = on_device(torch.randn(12))
    assert_same(fn(x), lin(x), TOL)


@pytest.mark.parametrize("make", [lambda x: x * 2, lambda x: (x * 2, x + 1), lambda x: [x * 2],
                                  lambda x: {"a": x * 2, "b": (x + 1,)}])
def test_returned_structures(make):
    from tests.inductor.triton.support import compile_gm
    x = on_device(torch.randn(4, 4))
    gm = torch.fx.symbolic_trace(make)
    got, ref = compile_gm(gm, [x])(x), gm(x)
    assert isinstance(got, type(ref))  # FX gives immutable_list / immutable_dict for lists and dicts
    assert_same(torch.utils._pytree.tree_leaves(got), torch.utils._pytree.tree_leaves(ref))


# ---- fast_launch ------------------------------------------------------------------------------------------------
class StandInKernel:
    """What DirectLaunch keeps of a compiled kernel; its `run` launches through Triton (the interpreter here)."""
    function, packed_metadata = "function", "metadata"

    def __init__(self, launcher):
        self.launcher, self.launches = launcher, []

    def _init_handles(self):
        pass

    def run(self, g0, g1, g2, stream, function, metadata, launch_metadata, enter, exit_, *args):
        n = len(self.launcher.ks.arg_dtypes)
        tensors, constexprs = args[:n], args[n:]
        assert constexprs == self.launcher.direct.constexprs and (function, metadata) == ("function", "metadata")
        self.launches.append(((g0, g1, g2), [t.data_ptr() % 16 for t in tensors]))
        self.launcher.fn[(g0, g1, g2)](*tensors, **self.launcher.config)


def _chain(x):
    return torch.tanh(x) * 2 + 1


def _with_stand_in(monkeypatch, fn):
    """The graph's one Launcher, made to believe its kernel for aligned tensors is compiled (`StandInKernel`)."""
    (name, launcher), = fn.launch.items()
    monkeypatch.setattr(triton_runtime, "_current_stream", lambda device: 0)
    launcher.direct.usable = True
    kernel = StandInKernel(launcher)
    stand_ins = [dt if isinstance(dt, int) else torch.empty(1, dtype=dt, device=DEVICE)
                 for dt in launcher.ks.arg_dtypes]
    launcher.direct.keep(kernel, stand_ins)
    launcher._refresh()
    return name, launcher, kernel


@pytest.mark.skipif(DEVICE == "cuda", reason="a stand-in for the compiled kernel: the interpreter only")
def test_fast_launch_for_aligned_tensors_and_the_general_path_otherwise(monkeypatch):
    x = on_device(torch.randn(64, 64))
    fn = check_fn(_chain, x)
    name, launcher, kernel = _with_stand_in(monkeypatch, fn)
    fast = fn.calls[name]
    assert fast is not launcher and launcher.publish is not None
    for _ in range(3):
        assert_same(fn(x), _chain(x))
    assert len(kernel.launches) == 3 and launcher.direct.hits == 3
    assert kernel.launches[0] == (tuple(launcher.grid) + (1, 1)[:3 - len(launcher.grid)], [0, 0])
    # a view 4 bytes past an aligned buffer: Triton would specialize differently, so the kernel compiled for
    # aligned pointers must not run on it; the general path launches it through Triton
    y = on_device(torch.randn(64 * 64 + 1))[1:].view(64, 64)
    assert y.data_ptr() % 16 != 0
    assert_same(fn(y), _chain(y))
    assert len(kernel.launches) == 3
    assert fn.calls[name] is not launcher  # still published for the aligned case
    assert_same(fn(x), _chain(x))
    assert len(kernel.launches) == 4


@pytest.mark.skipif(DEVICE == "cuda", reason="a stand-in for the compiled kernel: the interpreter only")
def test_fast_launch_off(monkeypatch):
    x = on_device(torch.randn(64, 64))
    monkeypatch.setenv("FRAMEJIT_DIRECT_LAUNCH", "0")
    fn = check_fn(_chain, x)
    (name, launcher), = fn.launch.items()
    launcher.direct.keep(StandInKernel(launcher), [x, x])  # not usable: nothing kept, nothing published
    launcher._refresh()
    assert fn.calls[name] is launcher and not launcher.direct.kernels
    monkeypatch.delenv("FRAMEJIT_DIRECT_LAUNCH")
    fn = check_fn(_chain, x)
    name, launcher, kernel = _with_stand_in(monkeypatch, fn)
    launcher.tune_key = "pending"  # an autotune still to run: the general path tunes first
    launcher._refresh()
    assert fn.calls[name] is launcher


@pytest.mark.usefixtures("fresh_jit")
@pytest.mark.skipif(DEVICE == "cuda", reason="a stand-in for the compiled kernel: the interpreter only")
def test_no_fast_launch_with_size_arguments(monkeypatch):
    graph = run_sizes(lambda x: torch.tanh(x) * 2, lambda n: (torch.randn(n, 16),), [40, 56], [0])
    fn = graph.variants[0].fn
    name, launcher, _ = _with_stand_in(monkeypatch, fn)
    assert launcher.dynamic and fn.calls[name] is launcher


@pytest.mark.skipif(DEVICE != "cuda", reason="Triton's compiled launcher: the GPU only")
def test_fast_launch_on_the_gpu():
    x = on_device(torch.randn(64, 64))
    fn = check_fn(_chain, x)
    (name, launcher), = fn.launch.items()
    assert fn.calls[name] is not launcher, "no fast launch after precompiling"
    hits = launcher.direct.hits
    for _ in range(3):
        assert_same(fn(x), _chain(x))
    assert launcher.direct.hits == hits + 3
    y = on_device(torch.randn(64 * 64 + 1))[1:].view(64, 64)
    assert_same(fn(y), _chain(y))
    assert_same(fn(y), _chain(y))
    assert len(launcher.direct.kernels) == 2
    assert_same(fn(x), _chain(x))


def test_an_empty_kernel_is_not_written_over_its_input():
    """A kernel with no element to compute is not launched, so it cannot take the memory of an input it reads for
    the last time: its buffer is allocated (the result was once left undefined: a NameError at the return)."""
    def f(x, w):
        y = x.sin()
        return (y @ w).cos(), (y * 2).exp()
    check_fn(f, torch.randn(0, 8), torch.randn(8, 4))
