"""Composite ops (tests/inductor/composite_cases.py) through the Triton backend: each equals eager (values, dtype,
shape) with every op in a generated kernel (no `# torch fallback:` in the module); a cross entropy reads its
logits in one row kernel; losses trained with both graphs compiled. Without a GPU the kernels run in Triton's
interpreter (small shapes)."""
import logging
import re

import pytest
import torch
import torch.nn.functional as F

import jit
from tests.inductor.composite_cases import cases, generated_on, grad_cases, randn, targets
from tests.inductor.triton.support import DEVICE, check_fn, on_device


def _fallbacks(source: str) -> list:
    """The module's torch fallbacks, but for index checks (a loss's labels: Triton's host checks them in torch, as
    eager's device-side assert on CUDA; graph/index_checks.py)."""
    return [line.strip() for line in source.splitlines() if line.strip().startswith("# torch fallback: ")
            and not line.strip().startswith("# torch fallback: framejit.check_index")]


@pytest.mark.parametrize("fn,make", cases())
def test_composite_op(fn, make, request):
    compiled = check_fn(fn, *make())
    generated = generated_on(request.node.callspec.id, DEVICE)
    assert (_fallbacks(compiled.source) == []) is generated


def test_cross_entropy_is_one_pass_over_the_logits():
    """max and sum of exponentials come from one kernel reading each row once; the batch mean is a second kernel
    over N values, which reads each row's target logit alone (graph/select_sum.py: the one-hot sum is a gather,
    not a third pass over the row)."""
    compiled = check_fn(lambda x, t: F.cross_entropy(x, t), randn(6, 10), targets(6, 10, ignored=[1]))
    kernels = compiled.source.split("@triton.jit")[1:]
    loads = [re.findall(r"tl\.load\(x_ptr \+ ([^,]*),", k) for k in kernels if "x_ptr" in k.split(")")[0]]
    assert len(loads) == 2 and all(len(a) == 1 for a in loads), loads
    row, picked = loads[0][0], loads[1][0]
    assert "xindex * 10 + rindex" in row  # the row kernel walks the logits
    assert "rindex * 10 + i" in picked  # the loss kernel reads row r at its target's index


@pytest.fixture
def triton_sources(caplog):
    caplog.set_level(logging.INFO, logger="jit.output_code")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "jit.output_code"]


@pytest.mark.usefixtures("fresh_jit")
@pytest.mark.parametrize("fn,make", grad_cases())
def test_composite_op_gradients(fn, make, triton_sources):
    inputs = [on_device(x) for x in make()]
    leaves = [x.clone().requires_grad_(i == 0) for i, x in enumerate(inputs)]
    refs = [x.clone().requires_grad_(i == 0) for i, x in enumerate(inputs)]
    compiled = jit.compile(fn, backend="triton")
    loss, expected = compiled(*leaves), fn(*refs)
    loss.backward()
    expected.backward()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(leaves[0].grad, refs[0].grad, rtol=1e-5, atol=1e-6)
    sources = triton_sources()
    assert len(sources) == 2 and jit.counters["backward_graphs"] == 1, sources
    assert not any(_fallbacks(s) for s in sources), [_fallbacks(s) for s in sources]
