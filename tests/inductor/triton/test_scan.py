"""Scans as Triton kernels (triton/scan.py): cumsum / cumprod whose rows fit one persistent tile are one generated
kernel (tl.cumsum / tl.cumprod along the row, or down columns), their pointwise operand and epilogue in the same
kernel, with eager's
values and dtypes; longer rows and dynamic sizes keep torch's scan. Without a GPU the kernels run in Triton's
interpreter."""
import pytest
import torch

from tests.inductor.triton.support import check_fn
from tests.inductor.generated import run


def _call(fn) -> str:
    return fn.source.split("\ndef call(")[1]


def _kernels(fn) -> int:
    return fn.source.count("\n@triton.jit\n")


def randn(*shape, dtype=torch.float32, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


CASES = {
    "rows": (lambda x: x.cumsum(-1), lambda: [randn(5, 37)]),
    "rows_3d_middle_dim": (lambda x: torch.cumsum(x, 1), lambda: [randn(2, 9, 3)]),
    "columns": (lambda x: x.cumsum(0), lambda: [randn(6, 33)]),
    "transposed_operand": (lambda x: x.t().cumsum(1), lambda: [randn(7, 4)]),
    "bf16": (lambda x: x.cumsum(-1), lambda: [randn(3, 50, dtype=torch.bfloat16)]),
    "int32_to_int64": (lambda x: x.cumsum(1), lambda: [torch.arange(-12, 12, dtype=torch.int32).view(3, 8)]),
    "bool_mask": (lambda x: (x > 0).cumsum(1), lambda: [randn(4, 11)]),
    "dtype_argument": (lambda x: torch.cumsum(x, 1, dtype=torch.float64), lambda: [randn(3, 6)]),
    "cumprod": (lambda x: torch.cumprod(x * 0.5 + 1, -1), lambda: [randn(4, 10)]),
    "cumprod_inf_nan": (lambda x: x.cumprod(-1),
                        lambda: [torch.tensor([[1., float("inf"), 0., 2.], [float("nan"), 1., 2., 3.]])]),
    "position_ids_epilogue": (lambda m: m.long().cumsum(-1) - 1, lambda: [torch.tensor([[0, 1, 1, 1], [1, 1, 0, 1]])]),
    "operand_and_epilogue": (lambda x, y: (x * 2).cumsum(1) / (y.abs() + 1), lambda: [randn(3, 9), randn(3, 9, seed=1)]),
}


@pytest.mark.parametrize("name", CASES)
def test_scan_is_one_generated_kernel(name):
    fn, make = CASES[name]
    compiled = check_fn(fn, *make())
    assert "cumsum(" not in _call(compiled) and "cumprod(" not in _call(compiled), _call(compiled)
    assert "tl.cumsum(" in compiled.source or "tl.cumprod(" in compiled.source
    assert _kernels(compiled) == 1, compiled.source  # the operand's arithmetic inlined, no buffer for it


def test_operand_that_is_also_an_output_is_stored_by_the_scan_kernel():
    """The operand is also an output: not inlined away, but stored as a side output of the scan's kernel
    (triton/side_outputs.py), which computes it once; both values eager's."""
    compiled = check_fn(lambda x: ((x * 2).cumsum(1), x * 2), randn(3, 8))
    assert "cumsum(" not in _call(compiled) and _kernels(compiled) == 1
    assert compiled.source.count("tl.store(") == 2


def test_rows_longer_than_a_tile_keep_torchs_scan():
    compiled = check_fn(lambda x: x.cumsum(-1), randn(2, 20000))
    assert "cumsum(" in _call(compiled) and "tl.cumsum(" not in compiled.source


def test_epilogue_reading_the_scan_transposed_stays_a_kernel_of_its_own():
    """A consumer reading the scan's result through a transpose reads it at other coordinates than the scan's
    tile holds: the scan keeps its buffer, the values are eager's."""
    compiled = check_fn(lambda x, y: x.cumsum(1).t() + y, randn(4, 6), randn(6, 4, seed=1))
    assert "cumsum(" not in _call(compiled) and _kernels(compiled) == 2


def test_packed_sequence_mask_of_an_arange():
    """transformers' packed-sequence check (`diff(position_ids, prepend=position_ids[:, :1] - 1) != 1`, then a
    cumsum) over position ids made by arange: the prepended piece is one column thick, read at coordinate 0, and
    its arange value there was `(0 * 1 + 0).to(tl.int64)`, a Python int with no `.to` (a compile error on the
    H100 that sent Hugging Face GPT-2's whole training step to torch)."""
    def f(x):
        pos = torch.arange(x.shape[1]).unsqueeze(0).expand(x.shape[0], -1)
        full = torch.cat([pos[:, :1] - 1, pos], -1)
        return ((full[:, 1:] - full[:, :-1]) != 1).cumsum(-1) + x

    run("triton", f, torch.zeros(2, 16, dtype=torch.long))
