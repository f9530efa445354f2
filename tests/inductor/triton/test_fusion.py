"""Fused kernels of the Triton backend against eager torch: softmax, layer_norm, rmsnorm as one kernel each,
epilogues after library calls, models through jit.compile; the module files in the cache dir, warm start,
autotuning and index-width choices."""
import math

import pytest
import torch
import torch.nn.functional as F

from tests.inductor.triton.support import DEVICE, assert_same, check_fn, on_device


def _kernels(fn) -> int:
    return fn.source.count("\n@triton.jit\n")


def softmax_manual(x):
    e = torch.exp(x - x.amax(-1, keepdim=True))
    return e / e.sum(-1, keepdim=True)


def layernorm_manual(x, w, b):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-5) * w + b


def rmsnorm_residual(x, r, w):
    h = x + r
    return h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6) * w, h


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("cols", [33, 128])
def test_softmax_is_one_kernel(dtype, cols):
    x = torch.randn(6, cols).to(dtype)
    fn = check_fn(softmax_manual, x)
    assert _kernels(fn) == 1
    fn = check_fn(lambda x: torch.softmax(x, -1), x)
    assert _kernels(fn) == 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_layernorm_manual_and_functional(dtype):
    x, w, b = torch.randn(5, 48).to(dtype), torch.randn(48).to(dtype), torch.randn(48).to(dtype)
    fn = check_fn(layernorm_manual, x, w, b)
    assert _kernels(fn) == 1
    # half types: rewritten with a float32 upcast (inductor/triton/rewrites.py), still one kernel
    fn = check_fn(lambda x, w, b: F.layer_norm(x, (48,), w, b), x, w, b)
    assert _kernels(fn) == 1 and "fallbacks[" not in fn.source
    fn = check_fn(lambda x, w: F.rms_norm(x, (48,), w), x, w)
    assert _kernels(fn) == 1 and "fallbacks[" not in fn.source


def test_rmsnorm_residual_two_outputs():
    x, r, w = torch.randn(4, 64), torch.randn(4, 64), torch.randn(64)
    fn = check_fn(rmsnorm_residual, x, r, w)
    # h is an output and the norm's input: the norm's kernel stores it as a second output (no write + read back)
    assert _kernels(fn) == 1 and "written by a later kernel" in fn.source


def test_side_output_only_into_matching_consumer():
    """A producer read by a kernel over another shape keeps its own kernel; one read by two kernels is stored by
    the first of them, and the second reads it back."""
    x, r = torch.randn(4, 8), torch.randn(4, 8)
    fn = check_fn(lambda x, r: ((x + r).sum(-1), x + r), x, r)
    assert _kernels(fn) == 2
    fn = check_fn(lambda x, r: ((x + r) * 2, (x + r).exp(), x + r), x, r)
    assert _kernels(fn) == 2 and "written by a later kernel" in fn.source


def test_residual_sum_stored_by_next_layernorm():
    """A GPT's residual stream: h = x + r feeds a layer_norm and is read again by the next residual add. The norm's
    kernel computes h in registers and stores it as a second output (no kernel of its own)."""
    x, r, w, b, y = torch.randn(6, 32), torch.randn(6, 32), torch.randn(32), torch.randn(32), torch.randn(6, 32)

    def block(x, r, w, b, y):
        h = x + r
        return F.layer_norm(h, (32,), w, b) * 2, h + y
    fn = check_fn(block, x, r, w, b, y)
    assert _kernels(fn) == 2 and "written by a later kernel" in fn.source


def test_looped_normalization(monkeypatch):
    """Rows too long for registers: each reduction is its own loop, then the epilogue loop (two-pass variance);
    a softmax's max and sum of exponentials share one loop (reduce.py's online softmax), then its epilogue's."""
    from framejit.inductor.runtime import launch_configs as triton_launch
    monkeypatch.setattr(triton_launch, "persistent_max", lambda itemsize: 16)
    real = triton_launch.heuristic
    monkeypatch.setattr(triton_launch, "heuristic",
                        lambda mode, x, r, i=4, **kw: dict(real(mode, x, r, i, **kw), RBLOCK=16)
                        if mode == "looped" else real(mode, x, r, i, **kw))
    x, w, b = torch.randn(3, 100) * 3 + 1000, torch.randn(100), torch.randn(100)  # large mean: needs 2 passes
    fn = check_fn(layernorm_manual, x, w, b, tol=(1e-3, 1e-3))  # float32 rows around 1000
    assert fn.source.count("for roffset in range") == 3
    fn = check_fn(softmax_manual, torch.randn(3, 100))
    assert fn.source.count("for roffset in range") == 2
    check_fn(lambda x: torch.var(x, -1), x, tol=(1e-4, 1e-3))


def test_reduction_not_over_last_dim_and_views():
    x = torch.randn(6, 5, 7)
    check_fn(lambda x: (x - x.mean(1, keepdim=True)) * 2, x)
    check_fn(lambda x: x.permute(2, 0, 1).reshape(7, 30).sum(0) + 1, x)
    check_fn(lambda x: x.transpose(0, 1)[1:4, ::2].exp().sum(-1), x)
    check_fn(lambda x: x.view(6, 35)[:, 3] * x[:, 0, 0], x)


def test_gelu_epilogue_after_matmul():
    x, w, b = torch.randn(8, 16), torch.randn(16, 12), torch.randn(12)
    fn = check_fn(lambda x, w, b: F.gelu(x @ w + b), x, w, b, tol=(2e-2, 2e-2))
    assert "torch.addmm" in fn.source or "torch.matmul" in fn.source
    # bias + gelu in one generated kernel after the library matmul (plus the Triton matmul with the same epilogue
    # fused, which inductor/triton/matmul.py chooses instead where it is faster)
    assert _kernels(fn) - fn.source.count("\n@triton.jit\ndef mm_") == 1


def test_attention_pattern_and_sdpa():
    q, k, v = (torch.randn(2, 3, 8, 16) for _ in range(3))

    def naive(q, k, v):
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(16))
        mask = torch.tril(torch.ones(8, 8, dtype=torch.bool, device=q.device))
        att = att.masked_fill(~mask, float("-inf"))
        return torch.softmax(att, -1) @ v
    fn = check_fn(naive, q, k, v, tol=(2e-2, 2e-2))
    # graph/attention.py: the whole pattern is one SDPA call (is_causal, the scale kept), no kernel of ours
    assert "scaled_dot_product_attention(" in fn.source and "is_causal=True, scale=0.25" in fn.source
    assert _kernels(fn) == 0 and "torch.matmul" not in fn.source

    def with_mask(q, k, v, mask):
        att = (q @ k.transpose(-2, -1)) * 0.25
        return torch.softmax(att.masked_fill(~mask, float("-inf")), -1) @ v
    mask = torch.tril(torch.ones(8, 8, dtype=torch.bool))
    fn = check_fn(with_mask, q, k, v, mask, tol=(2e-2, 2e-2))
    assert "causal_attention(" in fn.source and _kernels(fn) == 0  # an input mask: checked at run time
    assert_same(fn(*(on_device(t) for t in (q, k, v, ~mask))), with_mask(q, k, v, ~mask), (2e-2, 2e-2))
    check_fn(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True) * 2, q, k, v,
             tol=(2e-2, 2e-2))


def test_gpt_block_through_jit():
    import jit
    torch.manual_seed(0)
    model = _tiny_gpt().to(DEVICE).eval()
    idx = on_device(torch.randint(0, 64, (2, 8)))
    with torch.no_grad():
        ref = model(idx)
        fast = jit.compile(model, backend="triton")
        got = fast(idx)
    assert_same(got, ref, (2e-2, 2e-2))


def test_loop_gpt_naive_attention_through_jit():
    """LoopGPT spells attention out with a causal-mask buffer: rewritten to SDPA, same answer as eager."""
    import jit
    from benchmarks.models.gpt import GPTConfig, LoopGPT
    torch.manual_seed(0)
    model = LoopGPT(GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_head=2, n_embd=32)).to(DEVICE).eval()
    idx = on_device(torch.randint(0, 64, (2, 8)))
    with torch.no_grad():
        assert_same(jit.compile(model, backend="triton")(idx), model(idx), (2e-2, 2e-2))


def _tiny_gpt():
    from benchmarks.models.gpt import GPT, GPTConfig
    return GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_head=2, n_embd=32))


def test_module_file_in_cache_dir_and_warm_start():
    from framejit.inductor.triton import backend as triton_backend
    from framejit.inductor.runtime import triton_graph as triton_runtime
    x = torch.randn(4, 9)
    fn = check_fn(softmax_manual, x)
    path = fn.path if hasattr(fn, "path") else None
    assert path is not None and path.exists() and path.parent == triton_runtime.triton_dir()
    text = path.read_text()
    assert text.startswith("# Generated by framejit's Triton backend")
    assert "aten.amax" in text and "def red_fused_amax_sub_exp_sum(" in text  # header names the graph nodes
    before = triton_backend.stats["warm_files"]
    triton_runtime._loaded.clear()  # as a new process would: the file on disk is reused as it is
    check_fn(softmax_manual, x)
    assert triton_backend.stats["warm_files"] == before + 1


def test_autotune_saves_and_reuses(monkeypatch):
    from framejit.inductor.runtime import launch_configs as triton_launch
    x = torch.randn(64, 40)
    fn = check_fn(softmax_manual, x, autotune=True)
    launcher = next(iter(fn.launch.values()))
    files = list((triton_launch._path("x").parent).glob("*.json"))
    assert files and launcher.tune_key is None
    fn2 = check_fn(softmax_manual, x, autotune=True)
    assert next(iter(fn2.launch.values())).config == launcher.config


def test_index_width():
    """int32 index math where every offset fits, int64 from the program id down where one may not."""
    from framejit.inductor.ir import Buffer, Kernel, Layout, Load, Op
    from framejit.inductor.triton.codegen import KernelWriter
    for n, wide in [(1 << 20, False), (3 << 30, True)]:
        inp = Layout((n,), (1,), torch.float32)
        k = Kernel(Buffer("out", inp), Op("exp", [Load("x", (n,), torch.float32)], (n,), torch.float32,
                                           torch.float32))
        src = KernelWriter(k, {"x": inp}, "k").generate().source
        assert ("tl.program_id(0).to(tl.int64)" in src) == wide
        assert "tl.load(x_ptr + xindex" in src and "tl.store(out_ptr + xindex" in src  # contiguous, vectorizable


def test_a_reshaped_contiguous_buffer_is_read_at_the_tile_index():
    """A 2-D result read through a 3-D view, `(x0 * 1024 + x1) * 3072 + x2` per element, is the tile index itself:
    no division or remainder per element in the load (a GPT's gelu over its c_fc product)."""
    w, b = on_device(torch.randn(96, 32)), on_device(torch.randn(96))
    fn = check_fn(lambda x: F.gelu(F.linear(x, w, b)), torch.randn(4, 16, 32), tol=(1e-4, 1e-4))
    assert "tl.load(addmm_default_ptr + xindex," in fn.source
    # rows of a reduction: the row index times the row length, plus the column
    fn = check_fn(lambda x: F.layer_norm(F.linear(x, w, b), (96,)), torch.randn(4, 16, 32), tol=(1e-4, 1e-4))
    assert "tl.load(addmm_default_ptr + (xindex * 96 + rindex)," in fn.source
    # merges that do not rebuild a tile index read what eager reads: a transposed input flattened, a slice of a
    # product viewed 3-D
    check_fn(lambda x: x.transpose(0, 1).reshape(4, 30) * 2, torch.randn(6, 4, 5))
    check_fn(lambda x: F.linear(x, w, b)[:, :48].reshape(4, 16, 48) + 1, torch.randn(64, 32), tol=(1e-4, 1e-4))


def test_unsupported_graph_runs_in_torch():
    """A graph the generator cannot express still returns eager's answer (the whole graph runs in torch)."""
    x = torch.randn(4, 6)
    check_fn(lambda x: x.sum(0, keepdim=True) + x.sum(1, keepdim=True), x)


def test_declined_graph_runs_the_ops_it_captured(monkeypatch):
    """The optimizer rewrites the graph in place into core ops (relu -> lt, full, where); a graph the Triton
    backend then declines must run torch's own kernels for the captured ops, not those three."""
    from framejit.inductor.triton import backend as module
    from framejit.inductor.backends import triton_backend
    monkeypatch.setattr(module, "generate_triton", lambda *a, **k: None)  # declined, whatever the reason
    fn = lambda x: torch.relu(x) - 0.5
    x = on_device(torch.randn(4, 6))
    compiled = triton_backend(torch.fx.symbolic_trace(fn), [x])
    targets = {n.target for n in compiled.graph.nodes if n.op == "call_function"}
    assert torch.relu in targets and torch.ops.aten.where.self not in targets
    assert_same(compiled(x), fn(x))


def test_library_layout_learned_at_compile_time():
    """A convolution of a channels-last input returns channels-last (meta tensors say contiguous): the layout is
    probed once at compile time, the kernels after it index it as it is, and a `.contiguous()` copy into the order
    the library already produced becomes a view (no kernel)."""
    x = torch.randn(2, 4, 6, 5).to(memory_format=torch.channels_last)
    w, m = torch.randn(3, 4, 3, 3), torch.randn(3, 7)
    fn = check_fn(lambda x, w: F.conv2d(x, w).relu() * 2, x, w, tol=(1e-4, 1e-4))
    assert "(36, 1, 9, 3)" in fn.source  # conv output (2, 3, 4, 3) in channels-last strides
    fn = check_fn(lambda x, w, m: F.conv2d(x, w).permute(0, 2, 3, 1).contiguous().reshape(-1, 3) @ m, x, w, m,
                  tol=(1e-4, 1e-4))
    assert _kernels(fn) == 0 and "a copy into the layout it already has" in fn.source
    # a copy that is returned stays a copy: the caller's tensor must not alias the library's buffer
    fn = check_fn(lambda x, w: F.conv2d(x, w).permute(0, 2, 3, 1).contiguous(), x, w, tol=(1e-4, 1e-4))
    assert _kernels(fn) == 1


def test_outputs_reduced_to_an_input_keep_eagers_sharing_with_each_other():
    """Fuzz seed 560102: logsumexp of a 0-dim x is x, so t4 and its view t6 both came out as the input; eager's
    are new tensors over one memory, so they are copied together (inductor/prepare.copy_aliased_outputs)."""
    import jit

    def f(x0):
        t4 = torch.logsumexp(x0, -1)
        return t4.squeeze(-1), t4, x0 * 2

    x = on_device(torch.randn(()))
    t6, t4, _ = jit.compile(f, backend="triton")(x)
    assert torch.equal(t4, f(x)[1]) and t6 is not t4
    assert t6.untyped_storage().data_ptr() == t4.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()


def test_output_simplified_to_a_view_of_another_output_is_a_copy():
    """`y.expand(1, n) * 1` simplifies to a view of y; eager returns a tensor of its own, so the two must not share
    memory (a caller writing one would change the other)."""
    import jit

    def f(x, k):
        y = x.pow(2)
        return y.unsqueeze(0).expand(1, *y.shape) * k, y

    x = on_device(torch.randn(3))
    out, y = jit.compile(f, backend="triton")(x, 1)
    assert out.untyped_storage().data_ptr() != y.untyped_storage().data_ptr()
    assert_same([out, y], f(x, 1))


@pytest.mark.parametrize("step", [
    lambda x: torch.cat([x[:, :4] + x[:, 4:], x[:, 4:] - x[:, :4]], 1) * 0.5,  # two slices of x, two pieces
    lambda x: torch.cat([x, x], -1)[..., :8] * 0.5 + x * 0.5,                  # x in both pieces and beside them
])
def test_a_value_read_at_several_index_maps_at_every_level_is_stored_not_copied(step):
    # every level reads the last one's value at two index maps; inlined, the kernel wrote its expression once per
    # map: 4 ** levels ops (10 levels of the first: 90 s, then the code generator gave up)
    def chain(levels):
        def f(x):
            for _ in range(levels):
                x = step(x)
            return x
        return f

    x = torch.randn(4, 8)
    short, deep = (check_fn(chain(n), x, tol=(1e-4, 1e-5)).source for n in (10, 30))
    assert len(deep) < 4.5 * len(short)  # linear in the levels (3x), once values are stored every few levels
