"""torch.nn modules made inside the compiled function (`loss_fct = CrossEntropyLoss()` in every transformers
head): made once at compile time from constant arguments when they hold no parameters, so the graph goes on; a
module with parameters, or one the function hands out, still runs as eager does."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import jit


def head_loss(logits, labels):
    loss_fct = nn.CrossEntropyLoss(ignore_index=-100, label_smoothing=0.1)
    act = nn.GELU(approximate="tanh")
    return loss_fct(act(logits).view(-1, logits.shape[-1]), labels.view(-1))


@pytest.mark.parametrize("backend", ["eager", "inductor"])
def test_loss_module_made_inside_stays_in_the_graph(backend, fresh_jit):
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7, requires_grad=True)
    labels = torch.randint(0, 7, (2, 5))
    labels[0, 1] = -100
    exp = jit.explain(head_loss, logits, labels)
    assert exp.graph_count == 1 and exp.graph_break_count == 0, exp.break_reasons
    want = head_loss(logits, labels)
    (want_grad,) = torch.autograd.grad(want, logits)
    got = jit.compile(head_loss, backend=backend)(logits, labels)
    (got_grad,) = torch.autograd.grad(got, logits)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_grad, want_grad)


def made_with_parameters(x):
    torch.manual_seed(3)
    layer = nn.Linear(4, 2)  # draws its weights: eager's random stream, eager's values
    return layer(x) + torch.randn(2)


def handed_out(x):
    m = nn.ReLU()
    return m(x), m


def test_module_with_parameters_runs_as_eager(fresh_jit):
    x = torch.randn(3, 4)
    torch.testing.assert_close(jit.compile(made_with_parameters)(x), made_with_parameters(x))


def test_module_handed_out_is_a_new_one_each_call(fresh_jit):
    x = torch.randn(3)
    compiled = jit.compile(handed_out)
    (a, ma), (b, mb) = compiled(x), compiled(x)
    torch.testing.assert_close(a, F.relu(x))
    assert isinstance(ma, nn.ReLU) and ma is not mb
