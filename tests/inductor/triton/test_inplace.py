"""Kernel outputs written over an input read for the last time (inductor/triton/host.py, `_reads_in_place`):
only buffers the module owns alone (not graph inputs, not viewed, not returned), read element for element at
the place the output is stored, of the output's dtype; results always eager's."""
import torch
import torch.nn.functional as F

from tests.inductor.triton.support import check_fn

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
