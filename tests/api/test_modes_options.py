"""jit.compile(mode=..., options=...) and jit.config as the one place for settings (issue 22, item 3): options are
the built-in backends' switches (inductor/config.py), checked at jit.compile time, in effect while this function's
graphs compile and run, and nowhere else."""
import pytest
import torch

import jit
from framejit.inductor.config import config as switches


def f(x):
    return (x * 2).relu() + 1


@pytest.fixture(autouse=True)
def _fresh():
    jit.reset()
    yield
    jit.reset()


def _seen_by_cpu_choice(monkeypatch) -> list:
    from framejit.inductor.numpy import cpu_choice
    seen, real = [], cpu_choice.choose

    def spy(*args, **kwargs):
        seen.append(switches.cpu_backend)
        return real(*args, **kwargs)
    monkeypatch.setattr(cpu_choice, "choose", spy)
    return seen


def test_options_reach_the_backend_while_it_compiles(monkeypatch):
    seen = _seen_by_cpu_choice(monkeypatch)
    x = torch.randn(8)
    torch.testing.assert_close(jit.compile(f, options={"cpu_backend": "torch"})(x), f(x))
    assert seen == ["torch"]
    assert switches.cpu_backend == "measure"  # only while this function's graphs compile and run


def test_functions_with_other_options_compile_apart(monkeypatch):
    seen = _seen_by_cpu_choice(monkeypatch)
    x = torch.randn(8)
    jit.compile(f, options={"cpu_backend": "numpy"})(x)
    jit.compile(f, options={"cpu_backend": "torch"})(x)
    jit.compile(f)(x)
    assert seen == ["numpy", "torch", "measure"]


def test_modes_set_their_switches():
    from jit.backends import compile_options
    assert dict(compile_options("inductor", "max-autotune", None)) == {"autotune": True, "cuda_graphs": True}
    assert dict(compile_options("inductor", "reduce-overhead", {"cuda_graphs": False})) == {"cuda_graphs": False}
    assert compile_options("inductor", None, None) == ()


def test_bad_modes_and_options_name_the_valid_ones():
    with pytest.raises(ValueError, match="unknown mode 'fast'; modes: default, reduce-overhead"):
        jit.compile(f, mode="fast")
    with pytest.raises(ValueError, match="unknown option 'cuda_graph'; options: .*cuda_graphs"):
        jit.compile(f, options={"cuda_graph": False})
    with pytest.raises(TypeError, match="cuda_graphs must be bool"):
        jit.compile(f, options={"cuda_graphs": "no"})
    with pytest.raises(TypeError, match="options must be a dict"):
        jit.compile(f, options=[("cuda_graphs", False)])
    with pytest.raises(ValueError, match="built-in backends"):
        jit.compile(f, backend=lambda gm, ex: gm.forward, options={"cuda_graphs": False})


def test_config_lists_and_sets_every_switch():
    text = repr(jit.config)
    for name in ("cache_size_limit", "cuda_graphs", "FRAMEJIT_CUDA_GRAPHS", "cpu_backend", "FRAMEJIT_CPU_BACKEND"):
        assert name in text
    try:
        jit.config.cpu_backend = "torch"
        assert switches.cpu_backend == "torch" and jit.config.cpu_backend == "torch"
    finally:
        del switches.cpu_backend
    with pytest.raises(AttributeError, match="no setting 'cuda_graph'.*cuda_graphs"):
        jit.config.cuda_graph = False
    with pytest.raises(TypeError):
        jit.config.cuda_graphs = "off"
