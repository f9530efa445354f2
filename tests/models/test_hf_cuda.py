"""Hugging Face models on a GPU under torch.autocast (bf16), against eager: the forward captured as one graph of
Triton kernels with autocast's casts as nodes, eager's dtypes, values within bf16 rounding, and a training step's
gradients. Needs CUDA (the lent GPU machine); tests/models/test_hf_models.py checks the same on the CPU."""
import pytest
import torch

import jit
from tests.models.test_hf_models import CASES, _ids, _model, _tensors

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="runs the models on a GPU")


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-12)).item()


@pytest.fixture(autouse=True)
def _fresh():
    jit.reset()
    jit.counters.clear()
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    jit.reset()


@pytest.mark.parametrize("name", ["gpt2", "llama", "bert"])
@pytest.mark.parametrize("where", ["outside", "inside"])
def test_autocast_forward_on_gpu(name, where):
    model = _model(name).cuda().eval()
    ids = _ids().cuda()

    def forward(ids):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return model(ids)

    with torch.no_grad():
        if where == "outside":  # the user's autocast around the compiled model
            fast = jit.compile(model)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                got, expected = _tensors(fast(ids)), _tensors(model(ids))
                exp = jit.explain(model, ids)
        else:  # the autocast block inside the compiled function
            got, expected = _tensors(jit.compile(forward)(ids)), _tensors(forward(ids))
            exp = jit.explain(forward, ids)
    assert exp.break_reasons == [] and exp.graph_count == 1, "\n".join(str(r) for r in exp.break_reasons)
    for key in expected:
        assert got[key].dtype == expected[key].dtype, key
        assert _rel(got[key], expected[key]) < 2e-2, (key, _rel(got[key], expected[key]))


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_autocast_training_step_gradients_on_gpu(name):
    model = _model(name).cuda().train()
    for module in model.modules():  # dropout draws differ between the runs; the comparison is of the math
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    ids = _ids().cuda()

    def loss_of(ids):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(ids).logits
        return torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), ids.flatten())

    loss = loss_of(ids)
    loss.backward()
    want = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    got_loss = jit.compile(loss_of)(ids)
    got_loss.backward()
    assert _rel(got_loss, loss) < 1e-2
    for n, p in model.named_parameters():
        if n in want:
            assert _rel(p.grad, want[n]) < 5e-2, (n, _rel(p.grad, want[n]))
    assert CASES[name].causal
