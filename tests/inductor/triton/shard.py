"""pytest plugin (-p tests.inductor.triton.shard) that keeps every N-th collected test: TRITON_SHARD=k/N. The GPU run starts N
pytest processes side by side, since most of a GPU test's time is compiling its kernel (one CPU core each)."""
import os


def pytest_collection_modifyitems(config, items):
    spec = os.environ.get("TRITON_SHARD")
    if not spec:
        return
    k, n = (int(v) for v in spec.split("/"))
    keep = [item for i, item in enumerate(items) if i % n == k]
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep
