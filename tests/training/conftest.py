import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's ~/.cache/framejit."""
    monkeypatch.setenv("FRAMEJIT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "framejit-cache"))


@pytest.fixture(autouse=True)
def _compiled_on_the_cpu(monkeypatch):
    """The default backend keeps, per training graph on the CPU, the faster of the compiled forward + backward and
    torch's autograd over the captured graph (numpy/cpu_choice.choose_training): a timing. These tests are about
    the compiled side, so they ask for it; test_training_cpu_choice.py tests the choice."""
    monkeypatch.setenv("FRAMEJIT_CPU_BACKEND", "numpy")
