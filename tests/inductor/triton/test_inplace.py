"""Kernel outputs written over an input read for the last time (inductor/triton/host.py, `_reads_in_place`):
only buffers the module owns alone (not graph inputs, not viewed, not returned), read element for element at
the place the output is stored, of the output's dtype; results always eager's."""
import pytest
import torch
import torch.nn.functional as F

from tests.inductor.triton.support import assert_same, check_fn, on_device

TOL = (1e-4, 1e-4)


def _over(fn) -> list:
    """The buffers kernels wrote over, in order."""
    return [line.split("# written over ")[1].split(",")[0] for line in fn.source.splitlines()
            if "# written over " in line]


def _mats():
    torch.manual_seed(0)
    return torch.randn(12, 16), torch.randn(16, 24) / 4


def test_an_epilogue_writes_over_the_product():
    x, w = _mats()
    assert _over(check_fn(lambda x, w: torch.relu(x @ w) * 2, x, w, tol=TOL)) == ["mm_default"]
    # through a reshape: the product of a 3-D input, read at its own elements
    x3 = x.reshape(3, 4, 16)
    assert _over(check_fn(lambda x, w: F.gelu(x @ w), x3, w, tol=TOL)) == ["mm_default"]


def test_kernels_with_second_outputs_write_over_what_they_read():
    """The layer norm stores h = g + x @ w too and writes its result over the product; then h * 2 over h."""
    x, w = _mats()
    g = torch.randn(12, 24)

    def f(x, w, g):
        h = g + x @ w
        return F.layer_norm(h, (24,)), h * 2
    assert _over(check_fn(f, x, w, g, tol=TOL)) == ["mm_default", "add_tensor"]


def test_not_where_the_buffer_lives_on_or_is_read_elsewhere():
    x, w = _mats()
    cases = [
        lambda x, w: torch.relu(x) * 2,                          # a graph input
        lambda x, w: (x @ w, torch.relu(x @ w)),                 # the product is returned
        lambda x, w: (torch.relu(x @ w), (x @ w).sum(0)),        # read again by a later kernel
        lambda x, w: torch.relu((x @ w).t().contiguous()),      # read transposed
        lambda x, w: (x @ w).double() * 2,                       # another dtype
    ]
    for f in cases:
        assert _over(check_fn(f, x, w, tol=TOL)) == []
    # a square product read transposed has the output's shape, yet each element lands where another program stores
    xs, ws = torch.randn(16, 16), torch.randn(16, 16) / 4
    for f in (lambda x, w: (x @ w).t() * 2, lambda x, w: torch.relu(x @ w) + (x @ w).t()):
        assert _over(check_fn(f, xs, ws, tol=TOL)) == []


def test_autotuning_times_an_in_place_kernel_on_a_copy(tmp_path, monkeypatch):
    """Timing runs a kernel many times: one that writes over its input must not feed its output back in."""
    monkeypatch.setenv("FRAMEJIT_CACHE_DIR", str(tmp_path))  # no tuned configs from another test
    x, w = _mats()
    g = torch.randn(12, 24)

    def f(x, w, g):
        h = g + x @ w
        return F.layer_norm(h, (24,)), h * 2
    assert _over(check_fn(f, x, w, g, tol=TOL, autotune=True)) == ["mm_default", "add_tensor"]


# Inputs the graph writes (graph/input_writes.py makes the writes functional, the caller copies each final value
# back): the kernel computing an input's final value writes it into the input itself where nothing reads the old
# value later or through another name (triton/planner.py's `_donated`), and the copy back is then no copy.

def _compile_writing(fn, inputs, monkeypatch, autotune=None):
    """fn through the Triton backend as the frame hook hands it a graph writing its inputs, and a record of which
    written inputs `write_back` found already holding their final values."""
    import framejit.graph.input_writes as input_writes
    from framejit.inductor.backends import triton_backend
    from framejit.graph.shape_prop import propagate
    gm = torch.fx.symbolic_trace(fn)
    propagate(gm, inputs)
    into: list = []
    real = input_writes.write_back

    def recording(results, args, writes):
        into.extend(value is args[i] for i, value in zip(writes.written, tuple(results)[writes.num_outputs:]))
        return real(results, args, writes)
    monkeypatch.setattr(input_writes, "write_back", recording)
    return triton_backend(gm, inputs, autotune), into


def _adam_like(p, g, m, v):
    m.lerp_(g, 0.1)
    v.mul_(0.999).addcmul_(g, g, value=0.001)
    p.addcdiv_(m, v.sqrt().add_(1e-8), value=-0.01)
    return (p.sum(),)


def _written_cases():
    return {
        "adam": (_adam_like, lambda: [torch.randn(6, 5), torch.randn(6, 5), torch.randn(6, 5), torch.rand(6, 5)], 3),
        # written twice, the second write reading the first's result
        "twice": (lambda x, y: (x.add_(y).mul_(2), y * 3)[1:], lambda: [torch.randn(4, 8), torch.randn(4, 8)], 1),
        # read whole (a row sum) by the kernel that writes it
        "row sum": (lambda x: (x.add_(x.sum(1, keepdim=True)), x.amax() * 0)[1:], lambda: [torch.randn(4, 8)], 1),
        # read by another kernel after the write: the new value, through its buffer
        "read after": (lambda x, w: (x.mul_(2), (x * w).sum(0))[1:], lambda: [torch.randn(4, 8), torch.randn(4, 8)],
                       1),
    }


@pytest.mark.parametrize("case", list(_written_cases()))
def test_written_inputs_take_their_final_values_in_the_kernel(case, monkeypatch):
    fn, make, written = _written_cases()[case]
    torch.manual_seed(0)
    inputs = [on_device(x) for x in make()]
    twins = [x.clone() for x in inputs]
    compiled, into = _compile_writing(fn, inputs, monkeypatch)
    for _ in range(3):
        assert_same(compiled(*inputs), fn(*twins), TOL)
        for got, want in zip(inputs, twins):
            assert_same(got, want, TOL)
    assert into == [True] * written * 3


def test_an_input_a_library_call_reads_is_copied_back(monkeypatch):
    """The old value is read by a library call (a matmul operand, which may be read through a view of it): the
    final value goes to a buffer of its own and is copied back after the call."""
    def f(x, w):
        y = x @ w
        x.mul_(2)
        return (y * 3,)
    x, w = on_device(torch.randn(8, 4)), on_device(torch.randn(4, 6))
    xe = x.clone()
    compiled, into = _compile_writing(f, [x, w], monkeypatch)
    assert_same(compiled(x, w), f(xe, w), TOL)
    assert_same(x, xe, TOL)
    assert into == [False]


def test_autotuning_times_a_kernel_writing_inputs_on_copies(tmp_path, monkeypatch):
    """Each timing run of a kernel whose side outputs are written into inputs it reads runs on copies of them."""
    monkeypatch.setenv("FRAMEJIT_CACHE_DIR", str(tmp_path))
    torch.manual_seed(0)
    inputs = [on_device(torch.randn(6, 5)), on_device(torch.randn(6, 5)), on_device(torch.randn(6, 5)),
              on_device(torch.rand(6, 5))]
    twins = [x.clone() for x in inputs]
    compiled, into = _compile_writing(_adam_like, inputs, monkeypatch, autotune=True)
    assert_same(compiled(*inputs), _adam_like(*twins), TOL)
    for got, want in zip(inputs, twins):
        assert_same(got, want, TOL)
    assert into == [True] * 3
