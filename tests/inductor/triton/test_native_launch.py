"""Our C launcher for compiled Triton kernels (inductor/runtime/csrc/launch.c, inductor/runtime/native_launch.py): Triton's
signature turned into argument codes, argument packing and its errors, the alignment fallback, the kernels it
declines; on the GPU, kernels launched through it against Triton's own launcher, on the current stream, and the
generated modules' launches going through it."""
import types

import pytest
import torch

from tests.inductor.triton.support import DEVICE, assert_same, check_fn, on_device
from tests.inductor.triton.test_dynamic import run_sizes

import triton
import triton.language as tl

from framejit.inductor.runtime import native_launch

_launch = native_launch._launch
needs_gpu = pytest.mark.skipif(DEVICE != "cuda", reason="launches on a GPU")


def test_the_extension_is_built():
    assert _launch is not None, "framejit.inductor.runtime._launch missing: run `python setup.py build_ext --inplace`"


# ---- signature -> codes -----------------------------------------------------------------------------------------
def test_argument_codes_follow_the_signature_and_the_alignment_compiled_for():
    signature = ["*fp32", "*bf16", "i32", "constexpr", "fp32", "i64", "u8", "fp16", "bf16", "fp64", "i1",
                 "constexpr"]
    spec = (True, False, (False, True, True), (True, False, True), None, (False, False, False))
    assert native_launch.argument_codes(signature, spec) == "Ppi-flBerdb-"
    # pointers past the arguments the specialization covers (none here) are not assumed aligned
    assert native_launch.argument_codes(["*fp32", "*fp32"], (True,)) == "Pp"


@pytest.mark.parametrize("ty", [("*fp32", "*fp32"), "tensordesc<fp16[64, 64]>", "nvTmaDesc"])
def test_argument_codes_decline_what_the_launcher_cannot_pack(ty):
    assert native_launch.argument_codes(["*fp32", ty], (True, True)) is None


def _stand_in(**metadata):
    base = dict(num_ctas=1, launch_pdl=False, launch_cooperative_grid=False, global_scratch_size=0,
                profile_scratch_size=0, tensordesc_meta=None, num_warps=4, shared=0)
    base.update(metadata)
    return types.SimpleNamespace(metadata=types.SimpleNamespace(**base), kernel=b"cubin", name="k",
                                 src=types.SimpleNamespace(signature={"x": "*fp32", "n": "i32"}))


@pytest.mark.parametrize("metadata", [dict(num_ctas=2), dict(launch_pdl=True), dict(launch_cooperative_grid=True),
                                      dict(global_scratch_size=128), dict(profile_scratch_size=64),
                                      dict(tensordesc_meta=[{}])])
def test_kernels_needing_more_than_a_plain_launch_keep_tritons_launcher(metadata):
    assert native_launch.native_kernel(_stand_in(**metadata), (True, None), 0) is None


def test_native_launch_off(monkeypatch):
    monkeypatch.setenv(native_launch.ENV, "0")
    assert not native_launch.enabled()
    assert native_launch.native_kernel(_stand_in(), (True, None), 0) is None


# ---- argument packing (no launch reaches the driver: errors come first, or the grid is empty) --------------------
def _kernel(codes, **kw):
    args = dict(function=0, codes=codes, num_warps=4, shared=0, device=0, stream_fn=None, name="k")
    args.update(kw)
    return _launch.Kernel(**args)


def test_bad_arguments_are_clear_errors():
    k = _kernel("Pi-").bind((4,), None)
    x = torch.zeros(8)
    with pytest.raises(OverflowError, match="does not fit 32 bits"):
        k(x, 2 ** 40)
    with pytest.raises(TypeError, match="argument 0 is a pointer: a tensor, an int or None, not str"):
        k("x", 1)
    with pytest.raises(TypeError, match="takes 3 arguments, got 4"):
        k(x, 1, 2, 3)
    with pytest.raises(TypeError, match="argument 1 missing"):
        k(x)
    with pytest.raises(ValueError, match="16-byte aligned pointers; argument 0 is not aligned"):
        k(x[1:], 1)
    with pytest.raises(ValueError, match="unknown argument code"):
        _kernel("Pz")
    with pytest.raises(ValueError, match="num_warps"):
        _kernel("P", num_warps=0)
    with pytest.raises(TypeError, match="grid x, y, z"):
        _kernel("P")(1, 1)
    with pytest.raises(ValueError, match="grid dimension -1"):
        _kernel("P")(-1, 1, 1, x)
    with pytest.raises(OverflowError, match="does not fit 8 bits"):
        _kernel("B").bind((1,), None)(256)


def test_an_uninitialized_kernel_raises():
    k = _launch.Kernel.__new__(_launch.Kernel)
    assert "not initialized" in repr(k)
    with pytest.raises(RuntimeError, match="not initialized"):
        k(1, 1, 1)
    with pytest.raises(RuntimeError, match="not initialized"):
        k.bind((1,), None)


def test_an_empty_grid_launches_nothing():
    k = _kernel("Pifd")
    assert k(0, 1, 1, torch.zeros(4), 3, 1.5, 2.5) is None and k.hits == 0
    bound = k.bind((4, 0), None)
    assert bound(torch.zeros(4), 3, 1.5, 2.5) is None
    del k  # a bound copy keeps the kernel it counts its launches in
    assert bound.hits == 0 and "grid bound" in repr(bound)


def test_a_misaligned_pointer_goes_to_the_fallback_with_the_same_arguments():
    calls = []
    k = _kernel("PpP-").bind((0,), lambda *args: calls.append(args) or "fell back")
    x = torch.zeros(16)
    assert k(x, x[1:], x) is None and not calls  # 'p' takes any address; the grid is empty: nothing runs
    y = x[3:]
    assert k(x, x, y, 7) == "fell back" and len(calls) == 1
    assert [a is b for a, b in zip(calls[0], (x, x, y))] == [True] * 3 and calls[0][3] == 7


# ---- on the GPU ----------------------------------------------------------------------------------------------------
@triton.jit
def _axpb(x_ptr, out_ptr, a, b, c, h, n, BLOCK: tl.constexpr):
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = i < n
    x = tl.load(x_ptr + i, mask=m)
    tl.store(out_ptr + i, x * a + b + c + h.to(tl.float32), mask=m)


@needs_gpu
@pytest.mark.parametrize("n", [1000, 4096])
def test_a_kernel_through_our_launcher_matches_tritons(n):
    x = torch.randn(n, device="cuda")
    ref, got = torch.empty_like(x), torch.empty_like(x)
    args = (0.75, 2 ** 33 + 5, -3, 0.5)  # fp32, i64, i32, fp32 (Triton types Python floats as fp32)
    grid = (triton.cdiv(n, 256),)
    kernel = _axpb[grid](x, ref, *args, n, BLOCK=256)
    ours = native_launch.native_kernel(kernel, (True, True), x.device.index or 0)  # both pointers aligned
    assert ours is not None and ours.codes.startswith("PPflif")
    ours(grid[0], 1, 1, x, got, *args, n)
    torch.cuda.synchronize()
    assert torch.equal(got, ref)
    assert torch.allclose(got, x * 0.75 + (2 ** 33 + 5) - 3 + 0.5)
    # on the stream current at the call, as Triton's launcher
    got.zero_()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        ours(grid[0], 1, 1, x, got, *args, n)
    side.synchronize()
    assert torch.equal(got, ref) and ours.hits == 2


def _chain(x):
    return torch.tanh(x) * 2 + 1


@needs_gpu
def test_generated_modules_launch_through_our_launcher():
    x = on_device(torch.randn(64, 64))
    fn = check_fn(_chain, x)
    (name, launcher), = fn.launch.items()
    assert isinstance(fn.calls[name], _launch.Kernel), "a fixed-size kernel's fast path is the bound C launcher"
    hits = launcher.direct.hits
    for _ in range(3):
        assert_same(fn(x), _chain(x))
    assert launcher.direct.hits == hits + 3
    y = on_device(torch.randn(64 * 64 + 1))[1:].view(64, 64)  # misaligned: compiled again, launched by us too
    assert_same(fn(y), _chain(y))
    assert all(isinstance(e, _launch.Kernel) for e in launcher.direct.kernels.values())
    assert len(launcher.direct.kernels) == 2


@needs_gpu
@pytest.mark.usefixtures("fresh_jit")
def test_size_arguments_launch_through_our_launcher():
    graph = run_sizes(lambda x: torch.tanh(x) * 2, lambda n: (torch.randn(n, 16),), [40, 56, 72], [0])
    fn = graph.variants[0].fn
    kernels = [e for launcher in fn.launch.values() for e in launcher.direct.kernels.values()]
    assert kernels and all(isinstance(e, _launch.Kernel) for e in kernels)
    assert any("i" in e.codes or "l" in e.codes for e in kernels)
