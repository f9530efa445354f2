"""The public API around the hook: compile, optimize, modules, disable, config, counters, logs, backends."""
import logging
import os
import subprocess
import sys

import pytest
import torch

import jit
from jit import eval_frame


@pytest.fixture(autouse=True)
def clean():
    jit.reset()
    yield
    assert eval_frame.get_callback() is None
    jit.reset()


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.register_buffer("scale", torch.tensor(2.0))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.lin(x) * self.scale

    def describe(self):
        return f"Net with {sum(p.numel() for p in self.parameters())} parameters"


def test_compiled_function_matches_eager_and_keeps_metadata():
    def f(x, y=1.0):
        """doc"""
        return torch.relu(x) + y

    cf = jit.compile(f, backend="eager")
    x = torch.randn(5)
    torch.testing.assert_close(cf(x), f(x))
    torch.testing.assert_close(cf(x, y=3.0), f(x, 3.0))
    assert cf.__name__ == "f" and cf.__doc__ == "doc"
    assert eval_frame.get_callback() is None


def test_decorator_forms():
    @jit.compile
    def a(x):
        return x + 1

    @jit.compile(backend="eager", fullgraph=False)
    def b(x):
        return x + 2

    @jit.optimize("eager")
    def c(x):
        return x + 3

    assert (a(1), b(1), c(1)) == (2, 3, 4)


def test_compiled_module_is_module_like():
    torch.manual_seed(0)
    net = Net()
    fast = jit.compile(net, backend="eager")
    assert isinstance(fast, Net) and isinstance(fast, torch.nn.Module)
    assert fast.state_dict().keys() == net.state_dict().keys()
    assert list(fast.parameters()) == list(net.parameters())
    assert fast._orig_mod is net
    assert fast.describe() == net.describe()
    x = torch.randn(2, 4)
    torch.testing.assert_close(fast(x), net(x))
    assert net.calls == 2  # shared state: forward ran on the same object

    # New weights through either view are seen by both.
    new = {k: torch.randn_like(v) for k, v in net.state_dict().items()}
    fast.load_state_dict(new)
    torch.testing.assert_close(net.lin.weight, new["lin.weight"])
    torch.testing.assert_close(fast(x), net(x))
    fast.eval()
    assert net.training is False
    fast.lin2 = torch.nn.Linear(1, 1)
    assert "lin2.weight" in net.state_dict()


def test_module_hooks_still_run():
    net = Net()
    seen = []
    net.register_forward_hook(lambda mod, inp, out: seen.append(out.shape))
    jit.compile(net, backend="eager")(torch.randn(2, 4))
    assert seen == [torch.Size([2, 3])]


def test_exceptions_propagate_and_hook_is_restored():
    @jit.compile(backend="eager")
    def bad(x):
        raise ValueError("user error")

    with pytest.raises(ValueError, match="user error"):
        bad(1)
    assert eval_frame.get_callback() is None


def test_disable_decorator_is_transparent():
    @jit.disable
    def g(x):
        return x * 2

    assert g(3) == 6 and g.__name__ == "g"


def test_config_rejects_typos_and_wrong_types():
    with pytest.raises(AttributeError, match="cache_size_limit"):
        jit.config.cache_size_limt = 3
    with pytest.raises(TypeError):
        jit.config.cache_size_limit = "8"
    with pytest.raises(TypeError):
        jit.config.suppress_errors = 1
    assert jit.config.cache_size_limit == 8 and jit.config.suppress_errors is True


def test_counters_clear_and_read():
    jit.counters.clear()
    assert jit.counters.frames_compiled == 0
    assert jit.counters["cache_hits"] == 0
    assert "cache_hits" in repr(jit.counters)


def test_backend_registry():
    seen = []

    def my_backend(gm, example_inputs):
        seen.append(gm)
        return gm.forward

    jit.register_backend("mine_for_test", my_backend)
    assert "mine_for_test" in jit.list_backends()
    assert {"eager", "inductor", "numpy", "triton"} <= set(jit.list_backends())
    jit.compile(lambda x: x, backend="mine_for_test")
    jit.compile(lambda x: x, backend=my_backend)
    with pytest.raises(TypeError):
        jit.register_backend("bad", 3)
    from jit.backends import lookup_backend
    assert lookup_backend("mine_for_test") is my_backend
    gm = torch.fx.symbolic_trace(lambda x: x + 1)
    assert torch.equal(lookup_backend("eager")(gm, [torch.ones(2)])(torch.ones(2)), torch.full((2,), 2.0))


def test_set_logs(caplog):
    with pytest.raises(ValueError, match="unknown log artifact"):
        jit.set_logs("recompile")
    jit.set_logs("recompiles")
    try:
        assert logging.getLogger("jit.recompiles").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("jit.guards").isEnabledFor(logging.DEBUG)
    finally:
        jit.set_logs()
    assert not logging.getLogger("jit.recompiles").isEnabledFor(logging.DEBUG)


def test_jit_logs_environment_and_recompile_line(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text(
        "import jit\n"
        "from jit import eval_frame\n"
        "from jit.calling_convention import as_replacement\n"
        "from jit.convert_frame import FrameConverter, Settings\n"
        "def forward(x):\n    return x\n"
        "class Info:\n    def __init__(self, v): self.v = v\n"
        "    def why_failed(self, x, fn): return f\"value of 'x' changed: expected {self.v}, got {x}\"\n"
        "def compile_frame(frame, settings):\n"
        "    v = frame.args[0]\n"
        "    return eval_frame.CacheEntry(lambda x, fn: x == v, as_replacement(forward.__code__), Info(v))\n"
        "with eval_frame.callback_installed(FrameConverter(Settings(), compile_frame)):\n"
        "    forward(8); forward(16)\n")
    env = dict(os.environ, JIT_LOGS="recompiles", PYTHONPATH=os.getcwd())
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, check=True)
    assert ("[jit] Recompiling forward (prog.py:5), compile 2 of this frame: value of 'x' changed: expected 8, "
            "got 16") in out.stderr


def test_import_jit_does_not_import_torch():
    code = "import sys, jit; f = jit.compile(lambda: 1); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert out.stdout.strip() == "False"


def test_internal_compiler_error_falls_back_to_eager_with_one_warning(monkeypatch):
    from jit import convert_frame

    def broken(frame, settings):
        raise RuntimeError("executor bug")

    monkeypatch.setattr(convert_frame, "_default_compiler", broken)

    def f(x):
        return x + 1

    cf = jit.compile(f, backend="eager")
    with pytest.warns(RuntimeWarning, match="internal error while compiling .*f.*executor bug"):
        assert cf(1) == 2
    assert cf(2) == 3  # SKIPped: no second warning, still correct
    assert eval_frame.get_mode(f.__code__) == "skip"

    strict = jit.compile(lambda x: x, backend="eager", fullgraph=True)
    with pytest.raises(RuntimeError, match="executor bug"):
        strict(1)


def test_graph_module_from_a_backend_runs_its_forward_unless_hooked():
    """A backend returning the GraphModule itself: compiled code calls its forward (no nn.Module.__call__ cost),
    except when the module carries hooks, which must then run."""
    from jit.backends import compile_graph
    gm = torch.fx.symbolic_trace(lambda x: x * 2)
    run = compile_graph(lambda g, ex: g, gm, [torch.randn(3)])
    assert run.__func__ is type(gm).forward and run.__self__ is gm
    seen = []
    gm.register_forward_hook(lambda m, args, out: seen.append(out))
    run = compile_graph(lambda g, ex: g, gm, [torch.randn(3)])
    assert run is gm
    x = torch.randn(3)
    assert torch.equal(run(x), x * 2) and len(seen) == 1


@pytest.mark.parametrize("bad", [1, 0, "yes", 1.0])
def test_compile_arguments_are_checked_by_type(bad):
    # `1 in (None, True, False)` is True: a membership check let dynamic=1 through
    with pytest.raises(TypeError, match="dynamic"):
        jit.compile(lambda x: x, dynamic=bad)
    with pytest.raises(TypeError, match="fullgraph"):
        jit.compile(lambda x: x, fullgraph=bad)
    with pytest.raises(TypeError, match="dynamic"):
        jit.optimize(dynamic=bad)


@pytest.mark.parametrize("dim", ["a", 1.5, True, [0, "b"], None])
def test_mark_dynamic_names_a_wrong_dim_argument(dim):
    with pytest.raises(TypeError, match="dim must be an int"):
        jit.mark_dynamic(torch.ones(2, 3), dim)


def test_mark_dynamic_out_of_range_is_an_index_error():
    with pytest.raises(IndexError, match="out of range"):
        jit.mark_dynamic(torch.ones(2, 3), 2)
    with pytest.raises(TypeError, match="expects a tensor"):
        jit.mark_dynamic([1, 2], 0)


def test_explain_and_set_logs_check_their_arguments():
    with pytest.raises(TypeError, match="expects a callable"):
        jit.explain(3, torch.ones(2))
    with pytest.raises(TypeError, match="recompiles= takes True or False"):
        jit.set_logs(recompiles=3)
    with pytest.raises(TypeError, match="artifact names are strings"):
        jit.set_logs(3)
    jit.set_logs()
