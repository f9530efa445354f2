import pytest


@pytest.fixture(autouse=True)
def _shared_cache_dir(tmp_path, monkeypatch):
    """The ranks of a test share one cache directory (as ranks on one host do), never the user's; the default
    backend compiles on the CPU rather than timing NumPy code against torch (training runs are about the
    compiled side). Spawned ranks inherit the environment."""
    monkeypatch.setenv("FRAMEJIT_CACHE_DIR", str(tmp_path / "framejit-cache"))
    monkeypatch.setenv("FRAMEJIT_CPU_BACKEND", "numpy")
