import pytest


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path, monkeypatch):
    """Tests never read or write the user's ~/.cache/framejit, nor each other's compiled code: many patch the
    planner's thresholds or the device it plans for, which no cache key names, so each test starts with an empty
    cache of its own (on disk and in memory)."""
    from framejit.inductor import cache
    monkeypatch.setenv("FRAMEJIT_CACHE_DIR", str(tmp_path / "framejit-cache"))
    cache.clear_memory()
    yield
    cache.clear_memory()
