import pytest

import jit
from jit import eval_frame


@pytest.fixture(autouse=True)
def clean_hook():
    """Every test starts and ends with the hook off and no cache entries."""
    assert eval_frame.get_callback() is None
    jit.reset()
    yield
    assert eval_frame.get_callback() is None, "a test left the hook on"
    jit.reset()
