"""inductor/config.py: every switch read from its environment variable, typed overrides, typos rejected."""
from pathlib import Path

import pytest

from framejit.inductor.config import SWITCHES, config, unknown_variables


def test_switches_read_their_variables(monkeypatch):
    monkeypatch.setenv("FRAMEJIT_TRITON_MM", "1")
    monkeypatch.setenv("FRAMEJIT_CUDA_GRAPHS", "0")
    monkeypatch.setenv("FRAMEJIT_TRITON_FALLBACK", "aten.exp, aten.erf,")
    monkeypatch.setenv("FRAMEJIT_CACHE_DIR", "/tmp/somewhere")
    assert config.triton_mm is True and config.cuda_graphs is False
    assert config.triton_fallback == ("aten.exp", "aten.erf")
    assert config.cache_dir == Path("/tmp/somewhere")
    monkeypatch.delenv("FRAMEJIT_TRITON_MM")
    monkeypatch.delenv("FRAMEJIT_CUDA_GRAPHS")
    assert config.triton_mm is False and config.cuda_graphs is True  # the defaults


def test_override_wins_and_is_restored(monkeypatch):
    monkeypatch.setenv("FRAMEJIT_RESIDUAL_GEMM", "0")
    with config.override(residual_gemm=True, cpu_backend="torch"):
        assert config.residual_gemm is True and config.cpu_backend == "torch"
        with config.override(residual_gemm=False):
            assert config.residual_gemm is False
        assert config.residual_gemm is True
    assert config.residual_gemm is False and config.cpu_backend == "measure"


def test_typos_and_wrong_types_are_rejected(monkeypatch):
    with pytest.raises(AttributeError, match="no switch 'triton_mmm'"):
        config.triton_mmm
    with pytest.raises(AttributeError):
        config.triton_mmm = True
    with pytest.raises(TypeError):
        config.cuda_graphs = "0"
    with pytest.raises(ValueError):
        with config.override(cpu_backend="nunpy"):
            pass
    monkeypatch.setenv("FRAMEJIT_TRITN_MM", "1")
    assert "FRAMEJIT_TRITN_MM" in unknown_variables()


def test_repr_lists_every_switch_and_its_variable():
    text = repr(config)
    for name, switch in SWITCHES.items():
        assert name in text and switch.variable in text
