"""Residual sums added by the matmul in place (inductor/triton/residual.py): `x + (g @ W.t() + b)` as `acc = x + b`
stored by a kernel that already reads x, then `acc.addmm_(g, W.t())`; only where that moves fewer bytes, and
never where the product is read elsewhere, the addend has no kernel to be stored by, or dtypes differ."""
import torch
import torch.nn.functional as F

from tests.inductor.triton.support import DEVICE, assert_same, check_fn, on_device

from framejit.inductor.triton import residual as triton_residual
from framejit.inductor.ir import readers_of, side_outputs

TOL = (1e-4, 1e-4)
C = 32


def _params(*shapes):
    torch.manual_seed(0)
    return [torch.randn(*s) * (s[-1] ** -0.5 if len(s) == 2 else 1) for s in shapes]


def _mlp_residual(x, ln_w, ln_b, w1, b1, w2, b2):
    h = F.layer_norm(x, (C,), ln_w, ln_b)
    return x + F.linear(F.gelu(F.linear(h, w1, b1)), w2, b2)


def _mlp_inputs(*lead):
    return [torch.randn(*lead, C)] + _params((C,), (C,), (4 * C, C), (4 * C,), (C, 4 * C), (C,))


def _in_place_calls(fn) -> int:
    return fn.source.count(".addmm_(")


def test_the_layer_norm_stores_the_addend_and_the_matmul_adds_into_it():
    for lead in ((16,), (2, 8)):  # 2-D, and 3-D viewed as the product's rows
        fn = check_fn(_mlp_residual, *_mlp_inputs(*lead), tol=TOL)
        assert _in_place_calls(fn) == 1
        # no kernel adds the residual: the layer norm, the gelu epilogue, nothing else
        assert fn.source.count("\n@triton.jit\ndef red_") == 1 and fn.source.count("\n@triton.jit\ndef pw_") == 1


def test_a_product_without_bias_and_more_terms():
    def f(x, w, z):
        h = F.layer_norm(x * z, (C,))
        return (x * z) + h @ w + 0.5

    fn = check_fn(f, torch.randn(16, C), torch.randn(C, C) * 0.2, torch.randn(16, C), tol=TOL)
    assert _in_place_calls(fn) == 1


def test_no_rewrite_where_it_saves_nothing_or_cannot_hold():
    x, g, w, b = torch.randn(16, C), torch.randn(16, C), torch.randn(C, C) * 0.2, torch.randn(C)
    # nothing else reads x: storing x + b would be a kernel of its own
    assert _in_place_calls(check_fn(lambda x, g, w, b: x + F.linear(g, w, b), x, g, w, b, tol=TOL)) == 0

    def product_returned(x, g, w, b):
        y = F.linear(g, w, b)
        return F.layer_norm(x, (C,)), x + y, y
    assert _in_place_calls(check_fn(product_returned, x, g, w, b, tol=TOL)) == 0

    def promoted(x, g, w, b):  # a float64 sum of a float32 product: the library cannot add in float64
        return F.layer_norm(x, (C,)), x + F.linear(g, w, b)
    assert _in_place_calls(check_fn(promoted, x.double(), g, w, b, tol=TOL)) == 0

    def scaled(x, g, w, b):  # not a sum: x - product
        return F.layer_norm(x, (C,)), x - F.linear(g, w, b)
    assert _in_place_calls(check_fn(scaled, x, g, w, b, tol=TOL)) == 0


def test_off_by_environment(monkeypatch):
    monkeypatch.setenv("FRAMEJIT_RESIDUAL_GEMM", "0")
    assert _in_place_calls(check_fn(_mlp_residual, *_mlp_inputs(16), tol=TOL)) == 0


def _compile(model, monkeypatch):
    """jit.compile(model) with the Triton backend: (compiled model, generated graphs, plans chosen)."""
    import jit
    from framejit.inductor.backends import triton_backend
    graphs, plans = [], []
    original = triton_residual.plan_residuals

    def spy(*args):
        plans.append(original(*args))
        return plans[-1]
    monkeypatch.setattr(triton_residual, "plan_residuals", spy)

    def backend(gm, example_inputs):
        graphs.append(triton_backend(gm, example_inputs))
        return graphs[-1]
    backend.dynamic_sizes = True
    return jit.compile(model, backend=backend), graphs, plans


def test_gpt_block_stores_nothing_unread(fresh_jit, monkeypatch):
    """A GPT-2 block: the MLP's residual is added by c_proj into `h + b` that the second layer norm stores in
    place of h, which nothing reads any more; every buffer a kernel stores is read later or returned."""
    from benchmarks.models.gpt import GPTConfig, gpt_block
    for dtype, tol in ((torch.float32, TOL), (torch.bfloat16, None)):
        import jit
        jit.reset()
        torch.manual_seed(0)
        config = GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_head=2, n_embd=C)
        block = gpt_block(config).to(DEVICE, dtype).eval()
        x = on_device(torch.randn(2, 16, C)).to(dtype)
        compiled, graphs, plans = _compile(block, monkeypatch)
        with torch.no_grad():
            assert_same(compiled(x), block(x), tol)
        assert len(graphs) == 1 and _in_place_calls(graphs[0]) == 1
        readers = readers_of(plans[-1])
        for k in plans[-1]:
            for buf, _ in side_outputs(k):
                assert buf.name in readers, f"{buf.name} is stored and never read"


def test_a_model_of_several_layers_matches_eager(fresh_jit, monkeypatch):
    from benchmarks.models.gpt import GPT, GPTConfig
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=3, n_head=2, n_embd=C)).to(DEVICE).eval()
    idx = on_device(torch.randint(0, 64, (2, 16)))
    compiled, graphs, _ = _compile(model, monkeypatch)
    with torch.no_grad():
        assert_same(compiled(idx), model(idx), TOL)
    assert len(graphs) == 1 and hasattr(graphs[0], "source")


def test_a_sum_read_twice_at_every_level_is_looked_at_in_linear_time():
    # generator seed 787521's shape: `x = x + x` unrolled is a DAG whose sum tree has 2 ** n terms; looking for a
    # product among them walked every one (26 levels: 30 s, 100 never finished)
    def f(x):
        for _ in range(100):
            x = x + x
        return x

    check_fn(f, torch.randn(8))
