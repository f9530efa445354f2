"""A compiled module pickles, deep-copies and goes through torch.save / torch.load(weights_only=False) as the
module it shares its state with: it loads back as that module (an instance of the original class, not of the
compiled view's subclass), with the same parameters, buffers and attributes, and the pickle names no framejit
code, so loading it needs no framejit."""
import copy
import io
import pickle
import pickletools

import pytest
import torch

import jit


@pytest.fixture(autouse=True)
def clean(fresh_jit):
    yield


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.register_buffer("scale", torch.tensor(2.0))
        self.note = "kept"

    def forward(self, x):
        return torch.relu(self.lin(x)) * self.scale


class Parent(torch.nn.Module):
    def __init__(self, child):
        super().__init__()
        self.child = child
        self.head = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.head(self.child(x))


def _check_same_module(loaded, original, x):
    assert type(loaded) is type(original)
    assert loaded.state_dict().keys() == original.state_dict().keys()
    for (k, a), b in zip(loaded.state_dict().items(), original.state_dict().values()):
        assert torch.equal(a, b), k
    torch.testing.assert_close(loaded(x), original(x))


def _globals_named(data: bytes) -> set:
    """Every module a pickle imports from when loaded (GLOBAL / STACK_GLOBAL's module operand)."""
    names, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif op.name == "STACK_GLOBAL":
            names.add(strings[-2])
        elif op.name == "GLOBAL":
            names.add(arg.split(" ")[0])
    return names


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip_loads_the_original_class(protocol):
    net = Net()
    compiled = jit.compile(net, backend="eager")
    x = torch.randn(5, 4)
    torch.testing.assert_close(compiled(x), net(x))
    data = pickle.dumps(compiled, protocol=protocol)
    assert not any(m == "jit" or m.startswith(("jit.", "inductor", "graph", "guards")) for m in _globals_named(data))
    loaded = pickle.loads(data)
    _check_same_module(loaded, net, x)
    assert loaded.note == "kept" and not hasattr(loaded, "_orig_mod")


def test_torch_save_and_load_of_a_compiled_module():
    net = Net()
    compiled = jit.compile(net, backend="eager")
    x = torch.randn(2, 4)
    compiled(x)
    buffer = io.BytesIO()
    torch.save(compiled, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    _check_same_module(loaded, net, x)
    again = jit.compile(loaded, backend="eager")  # and it compiles again like any module
    torch.testing.assert_close(again(x), net(x))


def test_a_compiled_submodule_saves_inside_its_parent_and_deepcopies():
    child = Net()
    parent = Parent(jit.compile(child, backend="eager"))
    x = torch.randn(3, 4)
    expected = parent(x)
    buffer = io.BytesIO()
    torch.save(parent, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert type(loaded.child) is Net
    torch.testing.assert_close(loaded(x), expected)
    copied = copy.deepcopy(jit.compile(child, backend="eager"))
    _check_same_module(copied, child, x)
    assert copied.lin.weight is not child.lin.weight


def test_state_dict_save_and_load_still_work():
    net = Net()
    compiled = jit.compile(net, backend="eager")
    buffer = io.BytesIO()
    torch.save(compiled.state_dict(), buffer)
    buffer.seek(0)
    fresh = Net()
    fresh.load_state_dict(torch.load(buffer))
    x = torch.randn(2, 4)
    torch.testing.assert_close(fresh(x), net(x))
