import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's ~/.cache/framejit."""
    monkeypatch.setenv("FRAMEJIT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "framejit-cache"))
