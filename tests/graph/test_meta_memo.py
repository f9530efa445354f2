"""torch's Python meta kernels answered from remembered results (graph/meta_memo.py): the same sizes, strides,
offsets and dtypes as the kernel, from memory or from disk; views, writes, arguments it cannot describe and calls
inside another dispatch mode left to the kernel."""
import json

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from framejit.graph import meta_memo

aten = torch.ops.aten


def _meta(*shape, dtype=torch.float32, stride=None):
    if stride is None:
        return torch.empty(shape, dtype=dtype, device="meta")
    return torch.empty_strided(shape, stride, dtype=dtype, device="meta")


CALLS = [
    ("softmax", lambda: torch.softmax(_meta(4, 6), -1)),
    ("softmax of a transpose", lambda: torch.softmax(_meta(6, 4).t(), 0)),
    ("half softmax to float", lambda: aten._softmax(_meta(3, 5, dtype=torch.float16), 1, True)),
    ("layer_norm", lambda: aten.native_layer_norm(_meta(2, 3, 8), [8], _meta(8), _meta(8), 1e-5)),
    ("arange", lambda: torch.arange(2, 11, 3, device="meta")),
    ("amax keepdim", lambda: _meta(5, 7, stride=(1, 5)).amax(-1, keepdim=True)),
    ("gelu tanh", lambda: F.gelu(_meta(3, 4, dtype=torch.bfloat16), approximate="tanh")),
    ("matmul", lambda: _meta(3, 5) @ _meta(5, 2)),
    ("max with indices", lambda: _meta(4, 9).max(1)),
    ("var_mean", lambda: torch.var_mean(_meta(4, 9), 1, correction=0)),
    ("cat", lambda: torch.cat([_meta(2, 3), _meta(4, 3)])),
    ("add with a number", lambda: _meta(3, dtype=torch.int32) + 2.5),
]


def _layout(value):
    if isinstance(value, (tuple, list)):
        return [_layout(v) for v in value]
    return (value.device.type, tuple(value.shape), value.stride(), value.storage_offset(), value.dtype,
            value.untyped_storage().nbytes())


@pytest.fixture
def memo(tmp_path):
    meta_memo.clear_memory()
    before = dict(meta_memo.stats)
    yield tmp_path, before
    meta_memo.clear_memory()


@pytest.mark.parametrize("name,call", CALLS, ids=[c[0] for c in CALLS])
def test_remembered_results_are_the_kernels(memo, name, call):
    directory, before = memo
    expected = _layout(call())  # the kernel itself, no mode active
    with meta_memo.remembering(directory):
        recorded = _layout(call())
        hits = meta_memo.stats["hits"]
        from_memory = _layout(call())
    assert meta_memo.stats["recorded"] > before["recorded"]
    assert meta_memo.stats["hits"] > hits
    assert recorded == expected and from_memory == expected
    meta_memo.clear_memory()  # as a new process: from the files
    disk = meta_memo.stats["disk_hits"]
    with meta_memo.remembering(directory):
        from_disk = _layout(call())
    assert meta_memo.stats["disk_hits"] > disk and from_disk == expected


def test_views_writes_and_other_types_run_the_kernel(memo):
    directory, before = memo
    assert not meta_memo._remembers(aten.add_.Tensor)       # writes its input
    assert not meta_memo._remembers(aten.transpose.int)     # a view of its input
    assert meta_memo._remembers(aten._softmax.default)

    class Size(int):  # an int subclass (as graph/symbolic_sizes.SymInt), whose comparisons a kernel may record
        pass

    with pytest.raises(meta_memo._Undescribable):  # (torch's argument parsing hands kernels plain ints anyway)
        meta_memo._describe([1, Size(2)])
    x = _meta(4, 6)
    with meta_memo.remembering(directory):
        x.add_(1)
        y = x.t()
        z = torch.softmax(torch.empty(4, 6), 1)  # a real tensor: not a meta kernel's call
    assert meta_memo.stats["recorded"] == before["recorded"] and meta_memo.stats["hits"] == before["hits"]
    assert y.shape == (6, 4) and z.device.type == "cpu"


def test_unreadable_file_is_a_miss(memo):
    directory, _ = memo
    with meta_memo.remembering(directory):
        torch.softmax(_meta(3, 3), 0)
    files = list((directory / "meta").glob("*.json"))
    assert len(files) == 1
    files[0].write_text("{not json")
    meta_memo.clear_memory()
    with meta_memo.remembering(directory):
        out = torch.softmax(_meta(3, 3), 0)
    assert out.shape == (3, 3) and json.loads(files[0].read_text())["result"]  # recorded again, whole


def test_inside_another_mode_nothing_is_remembered(memo):
    directory, before = memo

    class Count(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.calls += 1
            return func(*args, **(kwargs or {}))

    with Count(), meta_memo.remembering(directory):
        torch.softmax(_meta(2, 5), -1)
    assert Count.calls >= 1 and meta_memo.stats["recorded"] == before["recorded"]
