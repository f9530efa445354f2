import pytest


@pytest.fixture
def fresh_jit():
    """No compiled entries, counters or log switches left over from another test, nor left behind."""
    import jit  # here, not at the top: tests/hook runs without torch under other Pythons
    jit.reset()
    jit.counters.clear()
    yield
    jit.reset()
    jit.set_logs()
