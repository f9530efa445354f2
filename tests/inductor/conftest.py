import pytest


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's ~/.cache/framejit."""
    monkeypatch.setenv("FRAMEJIT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "framejit-cache"))
