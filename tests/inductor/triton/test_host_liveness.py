"""Generated host code frees each intermediate after its last use (inductor/triton/host.free_dead): a training
graph's buffers then come and go as eager's do, and its peak is not the sum of everything it made."""
import torch

from tests.inductor.triton.support import on_device  # first: sets TRITON_INTERPRET=1 without a GPU
from framejit.inductor.triton.host import free_dead  # noqa: I001


def test_each_intermediate_is_deleted_after_its_last_use():
    body = ["    a = torch.empty(4)",
            "    launch['k1'](x, a)  # reads x, writes a",
            "    b = torch.empty(4)",
            "    launch['k2'](a, b)",
            "    c = torch.empty(4)",
            "    launch['k3'](b, c)",
            "    return [c]"]
    out = free_dead(body)
    assert out.index("    del a") == out.index("    launch['k2'](a, b)") + 1
    assert out.index("    del b") == out.index("    launch['k3'](b, c)") + 1
    assert not any("del c" in line or "del x" in line for line in out)  # returned; an input


def test_comments_and_strings_are_no_uses():
    body = ["    a = torch.empty(4)",
            "    b = a + 1  # %a is read here",
            "    launch['a'](b)  # the kernel is named like a buffer: b read, a not",
            "    return [b]"]
    out = free_dead(body)
    assert out[2] == "    del a"


def test_names_a_nested_function_reads_are_kept():
    body = ["    bias = torch.empty(4)",
            "    out = torch.empty(4)",
            "    def library_mm():  # the library call, then the epilogue kernel",
            "        torch.addmm(bias, x, w, out=out)",
            "    launch['mm'](library_mm, out)",
            "    return [out]"]
    out = free_dead(body)
    assert not any(line.strip().startswith("del bias") for line in out)
    assert "    del library_mm" not in out[:4]


def test_several_names_assigned_at_once():
    body = ["    a, b = x.t(), x",
            "    c = a + b",
            "    return [c]"]
    out = free_dead(body)
    assert out[2] == "    del a, b"


def test_a_boxed_call_lets_go_of_its_inputs():
    """call_boxed (the backward of a training region): the list comes back empty and the module holds no input
    after it returns, so an input the caller dropped is freed (inside the call, after its last use)."""
    import weakref

    from framejit.inductor.backends import triton_backend
    from framejit.inductor.runtime.triton_graph import CompiledTritonGraph

    def f(a, b):
        return ((a * 2 + b).sum(),)

    a, b = on_device(torch.randn(64)), on_device(torch.randn(64))
    want = f(a, b)[0]
    compiled = triton_backend(torch.fx.symbolic_trace(f), [a, b])
    assert isinstance(compiled, CompiledTritonGraph)
    gone = weakref.ref(a)
    args = [a, b]
    del a
    got = compiled.call_boxed(args)[0]
    assert args == [] and gone() is None
    torch.testing.assert_close(got, want)
