import pytest


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's ~/.cache/framejit (compiled code, meta kernels' and eager checks'
    answers): one cache for the session (tests/inductor gives each test its own)."""
    monkeypatch.setenv("FRAMEJIT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "framejit-cache"))


@pytest.fixture
def fresh_jit():
    """No compiled entries, counters or log switches left over from another test, nor left behind."""
    import jit  # here, not at the top: tests/hook runs without torch under other Pythons
    jit.reset()
    jit.counters.clear()
    yield
    jit.reset()
    jit.set_logs()
