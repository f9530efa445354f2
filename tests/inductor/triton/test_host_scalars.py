"""Scalar arithmetic on 0-dim CPU tensors computed in Python on the host, the values handed to kernels as scalar
arguments (inductor/triton/host_scalars.py): eager's numbers bit for bit, written inputs filled, optimizer steps
whose step counters live on the CPU. Under the interpreter every tensor is on the CPU, so the split applies to
any 0-dim float input; on a GPU it is what lets such graphs compile at all."""
import copy

import pytest
import torch

import jit
from framejit.inductor.triton import host_scalars
from tests.inductor.triton.support import on_device


@pytest.fixture
def splits(monkeypatch):
    """The HostSplits made while the test compiles."""
    made, real = [], host_scalars.split

    def spy(*args):
        result = real(*args)
        if result is not None:
            made.append(result)
        return result
    monkeypatch.setattr(host_scalars, "split", spy)
    jit.reset()
    yield made
    jit.reset()


def _exact(got, want):
    torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True)


SCALAR_FNS = {
    # float32 arithmetic, each op rounded to float32 (a Python float constant too)
    "f32 chain": lambda x, s: x * ((s + 0.1) * 3 / 7 - s),
    # float64: the bias correction of torch.optim's Adam
    "f64 pow": lambda x, s: x * (1 - 0.9 ** s.double()),
    "exponents": lambda x, s: x + s.double() ** 0.5 + s ** 2 + s ** -1 + s ** 3 + s ** -0.5 + s ** -2 + s ** 1.7,
    "to and from double": lambda x, s: x / (s.double() * 1e-3).float(),
    "negated reciprocal": lambda x, s: x * -(1 / s),
}
# 3.0742283: its float32 cube rounded once from double is an ulp from torch's (x * x rounded, then * x)
SCALARS = {"positive": 2.5, "zero": 0.0, "negative": -1.25, "huge": 3e38, "cube": 3.074228286743164}


@pytest.mark.parametrize("value", list(SCALARS))
@pytest.mark.parametrize("case", list(SCALAR_FNS))
def test_host_arithmetic_is_eagers(case, value, splits):
    fn = SCALAR_FNS[case]
    x, s = on_device(torch.randn(5, generator=torch.Generator().manual_seed(0))), torch.tensor(SCALARS[value])
    got = jit.compile(fn, backend="triton")(x, s)
    _exact(got, fn(x, s))
    assert splits and splits[0].source.count(".item()") == 1


def test_written_scalar_input_is_filled_and_a_returned_one_is_a_new_tensor(splits):
    def f(x, s, t):
        s.add_(1)
        u = t * 2
        return x * s * u, u
    x = on_device(torch.randn(4))
    s, t = torch.tensor(3.0), torch.tensor(0.5, dtype=torch.float64)
    s2, t2 = s.clone(), t.clone()
    compiled = jit.compile(f, backend="triton")
    for _ in range(3):
        got, want = compiled(x, s, t), f(x, s2, t2)
        _exact(got[0], want[0])
        _exact(got[1], want[1])
        _exact(s, s2)
    assert splits and splits[0].fills  # the counter's final value filled into it, no copy back
    assert got[1] is not t


OPTIMIZERS = {
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-2),
    "adamw amsgrad": lambda ps: torch.optim.AdamW(ps, lr=1e-2, amsgrad=True),
    "adamw for-loop": lambda ps: torch.optim.AdamW(ps, lr=1e-2, foreach=False),
    "nadam": lambda ps: torch.optim.NAdam(ps, lr=1e-2),
    "radam": lambda ps: torch.optim.RAdam(ps, lr=1e-2),
    "adamax": lambda ps: torch.optim.Adamax(ps, lr=1e-2),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_steps_with_cpu_step_counters(name, splits):
    """Each parameter's step count is a 0-dim CPU tensor (capturable=False): its bias corrections run in Python
    on the host, the updates in kernels; parameters after three steps are eager's."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).to(on_device(
        torch.zeros(1)).device)
    twin = copy.deepcopy(model)
    opt, ref = OPTIMIZERS[name](model.parameters()), OPTIMIZERS[name](twin.parameters())
    step = jit.compile(opt.step, backend="triton")
    for i in range(3):
        g = torch.Generator().manual_seed(i)
        for p, q in zip(model.parameters(), twin.parameters()):
            p.grad = on_device(torch.randn(p.shape, generator=g))
            q.grad = p.grad.clone()
        step()
        ref.step()
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
    for state, twin_state in zip(opt.state.values(), ref.state.values()):
        assert state["step"].device.type == "cpu" and torch.equal(state["step"], twin_state["step"])
    # RAdam branches on its rectification term (`rho_t > 5`), a tensor here: the graph breaks there
    assert splits or name == "radam"  # the steady-state step went through the host split


def test_a_scalar_a_torch_call_reads_stays_a_tensor(splits):
    """A 0-dim input a torch call takes (here igamma, which has no lowering) stays the tensor it is; the other
    scalar is still computed on the host."""
    def f(x, s, t):
        return torch.igamma(x.abs() + 1, s) * (t * 2)
    x, s, t = on_device(torch.randn(6)), torch.tensor(1.5), torch.tensor(0.25)
    got = jit.compile(f, backend="triton")(x, s, t)
    torch.testing.assert_close(got, f(x, s, t))
    assert splits and splits[0].source.count(".item()") == 1


def _traced(fn, inputs):
    from framejit.graph.shape_prop import propagate
    gm = torch.fx.symbolic_trace(fn)
    propagate(gm, inputs)
    from framejit.inductor import prepare
    return prepare.optimize(gm, inputs)


def test_split_beside_a_gpu_graph_declines_a_cpu_op_it_cannot_write():
    """On a GPU graph every CPU value must be the host's (a Triton kernel cannot compute one): an op the host
    does not write (exp) leaves the graph unsplit. The other device is the meta device here: only the split's
    rules are under test."""
    x, s = torch.randn(4, device="meta"), torch.tensor(0.5)
    assert host_scalars.split(_traced(lambda x, s: x * (s * 2), [x, s]), [x, s], x.device) is not None
    assert host_scalars.split(_traced(lambda x, s: x * s.exp(), [x, s]), [x, s], x.device) is None


def test_host_values_in_a_nested_output_or_alone_leave_the_graph_unsplit():
    x, s = torch.randn(4), torch.tensor(0.5)
    cpu = torch.device("cpu")
    assert host_scalars.split(_traced(lambda x, s: (x * s, (s * 2, x)), [x, s]), [x, s], cpu) is None
    split = host_scalars.split(_traced(lambda x, s: (x * s, s * 2), [x, s]), [x, s], cpu)
    assert split is not None and split.positions == [None, 0]
