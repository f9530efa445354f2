"""Tiled pointwise kernels (inductor/triton/tiling.py): a kernel reading an input in another order than it writes
(a transpose, a channels-last copy) walks a [YBLOCK, XBLOCK] tile on a 2-D grid; everything else keeps the 1-D
kernel. Run in Triton's interpreter on CPU (or on a GPU where there is one); every result is compared with eager."""
import pytest
import torch
import torch.nn.functional as F

from tests.inductor.triton.support import DEVICE, assert_same, check_fn, on_device
from tests.inductor.triton.test_dynamic import kernel_sources, run_sizes

from framejit.inductor.runtime import launch_configs as triton_launch
from framejit.inductor.triton import tiling as triton_tiling
from framejit.inductor.ir import Buffer, Kernel, Layout, Load, Op, View
from framejit.inductor.triton.codegen import KernelWriter


def modes(fn) -> list:
    return [launcher.ks.mode for launcher in fn.launch.values()]


def tiled(fn):
    """The only kernel of fn, checked to be tiled: a 2-D grid over [YBLOCK, XBLOCK] tiles."""
    (launcher,) = fn.launch.values()
    assert launcher.ks.mode == "tiled", fn.source
    assert len(launcher.grid) == 2 and "YBLOCK: tl.constexpr, XBLOCK: tl.constexpr" in fn.source
    assert "tl.program_id(1)" in fn.source and "ymask & xmask" in fn.source
    return launcher


def transpose_copy(x):
    return x.t().contiguous()


def add_transposed(x, y):
    return x + y.t()


@pytest.mark.parametrize("shape", [(64, 96), (37, 53), (17, 130), (100, 16)])
def test_transpose_copy(shape):
    """A size that is a multiple of the tile, and sizes that are not: both axes masked."""
    fn = check_fn(transpose_copy, torch.randn(*shape))
    launcher = tiled(fn)
    m, n = shape
    assert launcher.grid == (-(-n // launcher.config["YBLOCK"]), -(-m // launcher.config["XBLOCK"]))
    # the store walks the output's rows along the columns of the tile, the load the input's rows along its rows
    assert "tl.load(x_ptr + (yindex + xindex * " in fn.source
    assert "tl.store(clone_default_ptr + (yindex * " in fn.source


def test_add_transposed_reads_one_input_each_way():
    x, y = torch.randn(40, 70), torch.randn(70, 40)
    fn = check_fn(add_transposed, x, y)
    tiled(fn)
    assert "tl.load(x_ptr + (yindex * 70 + xindex)" in fn.source  # x: like the output, along the columns
    assert "tl.load(y_ptr + (yindex + xindex * 40)" in fn.source  # y.t(): along the rows


@pytest.mark.parametrize("perm", [(0, 2, 3, 1), (0, 3, 1, 2), (0, 1, 3, 2), (3, 1, 2, 0)])
def test_4d_permutes_that_move_the_inner_dim(perm):
    x = torch.randn(2, 18, 17, 20)
    fn = check_fn(lambda x: x.permute(*perm).contiguous() * 2, x)
    assert modes(fn) == ["tiled"]


def test_permute_keeping_the_inner_dim_stays_1d():
    """(B, T, H, D) -> (B, H, T, D): rows of D elements stay contiguous, the 1-D kernel reads them coalesced."""
    x = torch.randn(2, 33, 5, 20)
    fn = check_fn(lambda x: x.permute(0, 2, 1, 3).contiguous(), x)
    assert modes(fn) == ["pointwise"] and "YBLOCK" not in fn.source
    assert modes(check_fn(lambda x: x.permute(2, 1, 0, 3).contiguous(), x)) == ["pointwise"]


def test_elementwise_on_a_transpose_keeps_its_layout():
    """x.t() * 2 is laid out like x (torch's rule for elementwise results): nothing is transposed, 1-D."""
    fn = check_fn(lambda x: x.t() * 2, torch.randn(40, 56))
    assert modes(fn) == ["pointwise"] and "(56, 40), (1, 56)" in fn.source


@pytest.mark.parametrize("to_channels_last", [True, False])
def test_channels_last_copies(to_channels_last):
    x = torch.randn(2, 32, 5, 7)
    if to_channels_last:  # NCHW -> NHWC
        fn = check_fn(lambda x: x.permute(0, 2, 3, 1).contiguous() + 1, x)
    else:  # a channels-last tensor made contiguous
        fn = check_fn(lambda x: x.contiguous() + 1, x.to(memory_format=torch.channels_last))
    launcher = tiled(fn)
    assert launcher.ks.xnumel == (32 if to_channels_last else 35)  # the output's innermost run: C, or H * W
    assert launcher.ks.ynumel == 2 * (35 if to_channels_last else 32)  # the input's run, batch folded in


def test_broadcasting_with_a_transpose():
    x, y, b, c = torch.randn(48, 40), torch.randn(40, 48), torch.randn(48), torch.randn(40, 1)
    fn = check_fn(lambda x, y, b, c: y + x.t() * b + c, x, y, b, c)
    tiled(fn)
    assert "tl.load(b_ptr + xindex, xmask" in fn.source and "tl.load(c_ptr + yindex, ymask" in fn.source
    # 3-D: a transposed batch of matrices made contiguous, plus a row broadcast over the batch
    x3, r = torch.randn(3, 24, 40), torch.randn(24)
    fn = check_fn(lambda x, r: torch.tanh(x.transpose(1, 2).contiguous() + r) * 0.5, x3, r)
    assert modes(fn) == ["tiled"]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_types(dtype):
    x, y = torch.randn(50, 36).to(dtype), torch.randn(36, 50).to(dtype)
    tiled(check_fn(transpose_copy, x))
    tiled(check_fn(lambda x, y: (x + y.t()) * 1.5, x, y))
    # a widening copy and a narrowing one across the transpose
    tiled(check_fn(lambda x: x.t().contiguous().float() * 2, x))
    tiled(check_fn(lambda x: x.t().contiguous().to(dtype), torch.randn(40, 33)))


def test_fused_chain_and_integer_types():
    x, y = torch.randn(33, 47), torch.randn(47, 33)
    tiled(check_fn(lambda x, y: torch.where(x > 0, torch.sigmoid(y.t()), x * y.t()), x, y))
    i = torch.randint(-100, 100, (40, 24), dtype=torch.int32)
    tiled(check_fn(lambda i: i.t().contiguous() * 3 + 1, i))
    m = torch.rand(24, 40) > 0.5
    tiled(check_fn(lambda m, x: (x > 0) & m.t(), m, torch.randn(40, 24)))


def test_sliced_and_reshaped_inputs():
    """Views under the transpose: a slice of rows, a reshape of a flat buffer, the transpose of a 3-D split."""
    x = torch.randn(70, 50)
    tiled(check_fn(lambda x: x[3:60].t().contiguous() + 1, x))
    flat = torch.randn(40 * 30)
    tiled(check_fn(lambda f: f.view(40, 30).t().contiguous() * 2, flat))
    h = torch.randn(64, 48)
    tiled(check_fn(lambda h: h.view(64, 3, 16).permute(1, 2, 0).contiguous(), h))


def test_side_output_of_a_tiled_kernel():
    """h = x + y.t() is read by two kernels and returned: the first reader's kernel (tiled, as it reads y.t())
    also stores h."""
    x, y = torch.randn(40, 36), torch.randn(36, 40)

    def fn(x, y):
        h = x + y.t()
        return h * 2, h.exp(), h
    compiled = check_fn(fn, x, y)
    assert "written by a later kernel" in compiled.source
    assert "tiled" in modes(compiled)


def test_same_order_and_small_sides_stay_1d():
    x, y = torch.randn(40, 70), torch.randn(40, 70)
    assert modes(check_fn(lambda x, y: x * y + 1, x, y)) == ["pointwise"]
    # a broadcast read is not a transpose: it reads one address per row
    assert modes(check_fn(lambda x, b: x + b, x, torch.randn(40, 1))) == ["pointwise"]
    # one side shorter than MIN_SIDE: the strided reads stay within a few cache lines
    assert modes(check_fn(transpose_copy, torch.randn(300, 8))) == ["pointwise"]
    assert modes(check_fn(transpose_copy, torch.randn(8, 300))) == ["pointwise"]
    # reductions keep their own kernels
    assert modes(check_fn(lambda x: x.t().sum(-1), x)) != ["tiled"]


def test_autotune_times_tiled_candidates():
    x = torch.randn(64, 96)
    fn = check_fn(transpose_copy, x, autotune=True)
    launcher = tiled(fn)
    assert launcher.tune_key is None  # tuned at the first call
    cands = triton_launch.candidates("tiled", 64, 1, 4, ynumel=96)
    assert cands[0] == triton_launch.heuristic("tiled", 64, 1, 4, ynumel=96)
    assert all(set(c) == {"XBLOCK", "YBLOCK", "num_warps", "num_stages"} for c in cands)
    assert launcher.config in cands
    assert_same(fn(on_device(x)), x.t().contiguous())


def test_heuristic_tiles():
    assert triton_launch.heuristic("tiled", 8192, 1, 4, ynumel=8192) == \
        {"XBLOCK": 64, "YBLOCK": 64, "num_warps": 8, "num_stages": 1}
    small = triton_launch.heuristic("tiled", 20, 1, 4, ynumel=17)
    assert small["XBLOCK"] == 32 and small["YBLOCK"] == 32 and small["num_warps"] == 2
    assert triton_launch.grid("tiled", 100, {"XBLOCK": 32, "YBLOCK": 64}, 1000) == (16, 4)


def _transpose_kernel(m, n, dtype=torch.float32):
    """out = x.t() for an (m, n) x, built directly in the IR (no tensors: sizes past memory are fine)."""
    lay = Layout((m, n), (n, 1), dtype)
    view = View("permute", Load("x", (m, n), dtype), ((1, 0),), (n, m), dtype)
    out = Buffer("out", Layout((n, m), (m, 1), dtype))
    return Kernel(out, Op("neg", [view], (n, m), dtype, dtype)), {"x": lay}


def test_index_width_and_grid_bounds():
    for m, n, wide in [(1 << 10, 1 << 10, False), (3 << 15, 1 << 16, True)]:
        kernel, layouts = _transpose_kernel(m, n)
        ks = KernelWriter(kernel, layouts, "k").generate()
        assert ks.mode == "tiled" and (ks.ynumel, ks.xnumel) == (n, m)  # out = x.t(): rows along x's
        assert ("tl.program_id(0).to(tl.int64)" in ks.source) == wide
        assert ("tl.program_id(1).to(tl.int64)" in ks.source) == wide
    # more output columns than grid axis 1 holds tiles of: the 1-D kernel
    kernel, layouts = _transpose_kernel(triton_tiling.MAX_XNUMEL + 1, 32)
    assert KernelWriter(kernel, layouts, "k").generate().mode == "pointwise"


def test_access_strides_through_views():
    """Each access's stride per iteration dim is read off the kernel's own index code, through any views: here
    h.view(64, 3, 16).permute(1, 2, 0) of a contiguous (64, 48) h."""
    f32 = torch.float32
    h = Load("h", (64, 48), f32)
    split = View("reshape", h, ((64, 3, 16),), (64, 3, 16), f32)
    moved = View("permute", split, ((1, 2, 0),), (3, 16, 64), f32)
    out = Buffer("out", Layout((3, 16, 64), (1024, 64, 1), f32))
    kernel, layouts = Kernel(out, Op("neg", [moved], (3, 16, 64), f32, f32)), {"h": Layout((64, 48), (48, 1), f32)}
    (a,) = triton_tiling.accesses(kernel, layouts, (3, 16, 64))
    assert a.buf == "h" and a.strides == [16, 1, 48]
    plan = triton_tiling.plan(kernel, layouts)
    # rows: h's run (dim 1, then dim 0 continuing it: 16 * 1 == its stride), columns: the output's last dim
    assert plan.ydims == [0, 1] and plan.xdims == [2] and plan.reason == "h"


@pytest.mark.usefixtures("fresh_jit")
@pytest.mark.parametrize("dynamic_side", ["columns", "rows"])
def test_dynamic_sizes(dynamic_side):
    """A dynamic size on either side of the tile: numels are kernel arguments and the 2-D grid follows them per
    call; block sizes are power-of-two buckets (conditions of the variant)."""
    if dynamic_side == "columns":  # out (48, t): the output's rows are the dynamic side
        graph = run_sizes(lambda x: x.t().contiguous() * 2, lambda t: (torch.randn(t, 48),), [20, 24, 40, 53, 64],
                          [0])
    else:  # out (t, 48): the transposed read's run is the dynamic side
        graph = run_sizes(lambda x: x.t().contiguous() + 1, lambda t: (torch.randn(48, t),), [20, 24, 40, 53, 64],
                          [1])
    assert 1 <= len(graph.variants) <= 2  # (16, 32] and (32, 64]
    for variant in graph.variants:
        src = kernel_sources(variant)
        assert "YBLOCK: tl.constexpr" in src and "ks0" in src
        (launcher,) = variant.fn.launch.values()
        assert launcher.dynamic and launcher.ks.mode == "tiled"
    assert not any(v.pinned for v in graph.variants)


@pytest.mark.usefixtures("fresh_jit")
def test_dynamic_size_dropping_below_the_tile_side():
    """Tiling is a condition of the variant: a size below MIN_SIDE compiles the 1-D kernel."""
    graph = run_sizes(lambda x: x.t().contiguous() * 2, lambda t: (torch.randn(t, 48),), [40, 8], [0])
    srcs = [kernel_sources(v) for v in graph.variants]
    assert len(srcs) == 2 and sum("YBLOCK" in s for s in srcs) == 1


def test_layer_norm_of_a_transpose_is_unaffected():
    """A normalization over a transposed input keeps its row kernel (reductions are never tiled)."""
    x, w = torch.randn(32, 24), torch.randn(32)
    fn = check_fn(lambda x, w: F.layer_norm(x.t(), (32,), w), x, w, tol=(1e-4, 1e-4))
    assert "tiled" not in modes(fn)


@pytest.mark.skipif(DEVICE != "cuda", reason="the interpreter has no compiled launcher")
def test_direct_launch_of_a_tiled_kernel():
    x = on_device(torch.randn(256, 320))
    fn = check_fn(transpose_copy, x)
    for _ in range(3):
        assert_same(fn(x), x.t().contiguous())
    assert tiled(fn).direct.hits >= 3
