"""CUDA graphs for fixed-shape Triton graphs (inductor/runtime/cuda_graphs.py): replays give eager's results whatever the
caller does with earlier results, new arguments, moved parameters. On the GPU the real recorder runs; without one,
a simulated recorder keeps the semantics that matter (a replay rewrites the recorded outputs in place, reading
the recorded input buffers), so every rule is checked under Triton's interpreter too."""
import pytest
import torch
import torch.nn as nn

from tests.inductor.triton.support import DEVICE, assert_same, check_fn, check_graph, on_device

from framejit.inductor.runtime import cuda_graphs

TOL = (1e-4, 1e-4)


def simulated_record(run, inputs, device):
    outputs = run(inputs)

    def replay():
        for old, new in zip(outputs, run(inputs)):
            if isinstance(old, torch.Tensor):
                old.copy_(new)
    return replay, outputs


@pytest.fixture(autouse=True)
def recorder(monkeypatch):
    monkeypatch.delenv("FRAMEJIT_CUDA_GRAPHS", raising=False)
    if DEVICE == "cpu":
        monkeypatch.setitem(cuda_graphs.RECORDERS, "cpu", simulated_record)


def mlp(x, w):
    return torch.tanh(x @ w) * 2 + 1


def _args(seed, n=8):
    g = torch.Generator().manual_seed(seed)
    return on_device(torch.randn(n, 16, generator=g)), on_device(torch.randn(16, 16, generator=g))


def _compiled(fn=mlp, args=None):
    args = args or _args(0)
    c = check_fn(fn, *args, tol=TOL)
    assert c.graphed is not None, "no CUDA graph for a fixed-shape graph of two launches"
    c.example = args  # kept alive: a later argument never lands at their address (which would read it in place)
    return c


def _never_replayed() -> str:
    """Calls a fresh compile with new arguments, each right; no call replays. Why recording was declined."""
    c = _compiled()
    for i in range(1, 4):
        x, w = _args(i)
        assert_same(c(x, w), mlp(x, w), TOL)
    assert c.graphed.replays == 0
    return c.graphed.why


def test_a_loop_alternates_between_two_recordings():
    c = _compiled()
    for i in range(1, 7):
        x, w = _args(i)
        out = c(x, w)  # the previous `out` is alive during this call: its recording is busy
        assert_same(out, mlp(x, w), TOL)
    # call 1 (the compile's check) ran as usual; every later one replayed, two recordings in turn
    assert len(c.graphed.recordings) == 2 and c.graphed.replays == 6


def test_results_held_by_the_caller_are_never_overwritten():
    c = _compiled()
    inputs = [_args(i) for i in range(1, 6)]
    outs = [c(x, w) for x, w in inputs]
    for (x, w), out in zip(inputs, outs):
        assert_same(out, mlp(x, w), TOL)
    assert c.graphed.replays == 2  # both recordings' results still held: later calls ran the launches


def test_a_view_of_a_result_keeps_its_recording_busy():
    c = _compiled()
    (x1, w1), (x2, w2), (x3, w3) = _args(1), _args(2), _args(3)
    row = c(x1, w1)[:1]  # the result itself is dropped, a view of it is kept
    other = c(x2, w2)
    again = c(x3, w3)
    assert_same(row, mlp(x1, w1)[:1], TOL)
    assert_same(other, mlp(x2, w2), TOL)
    assert_same(again, mlp(x3, w3), TOL)
    assert c.graphed.replays == 2
    del row, other
    assert_same(c(x1, w1), mlp(x1, w1), TOL)
    assert c.graphed.replays == 3


class Affine(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(16, 16))
        self.b = nn.Parameter(torch.randn(16))

    def forward(self, x):
        return torch.tanh(x @ self.w + self.b) * 2


def test_parameters_moved_to_new_storage_are_followed():
    torch.manual_seed(0)
    gm = torch.fx.symbolic_trace(Affine().to(DEVICE))  # the parameters are the graph's constants
    x = on_device(torch.randn(8, 16))
    with torch.no_grad():
        c = check_graph(gm, [x], tol=TOL)
        assert c.graphed is not None
        for i in range(cuda_graphs.MAX_RERECORDS + 3):
            gm.w.data = torch.randn_like(gm.w)  # other storage, same Parameter
            for _ in range(2):
                assert_same(c(x), gm(x), TOL)
    assert c.graphed.off is not None and "moved" in c.graphed.off  # stopped recording after a few moves


def test_an_output_sharing_memory_with_an_input_is_never_replayed():
    def f(x, w):
        return x.t(), torch.tanh(x @ w) + 1

    c = check_fn(f, *_args(0), tol=TOL)
    for i in range(1, 4):
        x, w = _args(i)
        got = c(x, w)
        assert_same(got, f(x, w), TOL)
        assert got[0].data_ptr() == x.data_ptr()  # still a view of the caller's tensor
    graphed = getattr(c, "graphed", None)
    assert graphed is None or (graphed.replays == 0 and "shares memory" in graphed.off)


def test_arguments_too_large_to_copy_are_not_recorded(monkeypatch):
    monkeypatch.setattr(cuda_graphs, "COPY_BYTES_PER_LAUNCH", 16)
    assert "copying the arguments" in _never_replayed()


def test_a_failed_recording_runs_the_launches(monkeypatch):
    def refuse(run, inputs, device):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setitem(cuda_graphs.RECORDERS, DEVICE, refuse)
    assert "recording failed" in _never_replayed()


@pytest.mark.parametrize("fn, why", [
    (lambda x, w: torch.tanh(x) * 2 + 1, "one launch"),
    (lambda x, w: torch.tanh(x @ w) + torch.rand_like(x), "random"),
])
def test_graphs_never_recorded(fn, why, caplog):
    c = check_fn(fn, *_args(0), tol=None) if why != "random" else None
    if c is not None:
        assert c.graphed is None
    gm = torch.fx.symbolic_trace(fn)
    x, w = _args(0)
    with caplog.at_level("INFO", logger="jit.inductor.triton"):
        assert cuda_graphs.graphed_call(None, [], x.device, gm, cuda_graphs.launches(_lowered(gm, x, w)), "g") is None
    assert any("CUDA graphs off for g" in r.message and why in r.message for r in caplog.records)


def _lowered(gm, x, w):
    from framejit.inductor.lowering import lower_graph
    from framejit.inductor.triton.dtypes import supported
    from framejit.graph.shape_prop import propagate
    propagate(gm, [x, w])
    return lower_graph(gm, [x, w], supported)


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("FRAMEJIT_CUDA_GRAPHS", "0")
    c = check_fn(mlp, *_args(0), tol=TOL)
    assert c.graphed is None


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.proj, self.norm = nn.Linear(16, 32), nn.Linear(32, 16), nn.LayerNorm(16)

    def forward(self, x):
        return self.norm(x + self.proj(torch.nn.functional.gelu(self.fc(x))))


def test_through_the_frame_hook(monkeypatch):
    import jit
    replays = []
    replay = cuda_graphs.Recording.__call__
    monkeypatch.setattr(cuda_graphs.Recording, "__call__", lambda self, inputs: replays.append(self) or
                        replay(self, inputs))
    torch.manual_seed(0)
    model = Block().to(DEVICE).eval()
    compiled = jit.compile(model, backend="triton")
    with torch.no_grad():
        outs = []
        for i in range(5):
            x = on_device(torch.randn(4, 16))
            out = compiled(x)
            assert_same(out, model(x), TOL)
            outs.append((x, out))
        for x, out in outs:
            assert_same(out, model(x), TOL)
    assert len(replays) == 2  # calls 2 and 3; later calls found both recordings' results held
    # the parameters come in as arguments, at the same address every call: read in place; only x is copied
    assert all(len(rec.copied) == 1 and len(rec.in_place) == 6 for rec in replays)


@pytest.mark.parametrize("norm", ["batch_norm", "instance_norm"])
def test_norms_updating_running_statistics_are_never_recorded(norm):
    """F.batch_norm in training mode writes its running statistics in place, though its meta kernel bumps no
    version counter: a recording would run that write again on every warm-up and replay (the H100 showed the
    statistics off by 370%). Through the frame hook, as users call it, the buffers stay eager's."""
    import jit
    import torch.nn.functional as F
    op = getattr(F, norm)
    fn = lambda x, m, v: op(x * 2, m, v, None, None, True, 0.25, 1e-3).relu()  # noqa: E731
    compiled = jit.compile(fn, backend="triton")
    stats = [on_device(torch.zeros(5)), on_device(torch.ones(5))]
    twins = [s.clone() for s in stats]
    for step in range(4):
        x = on_device(torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(step)))
        assert_same(compiled(x, *stats), fn(x, *twins), TOL)
        for got, want in zip(stats, twins):
            assert_same(got, want, TOL)


def test_an_argument_read_in_place_that_moves_is_copied_from_then_on():
    x, w = _args(1)
    c = _compiled(args=(x, w))
    for _ in range(3):  # x and w at the same address every call: both read in place
        assert_same(c(x, w), mlp(x, w), TOL)
    assert [len(r.copied) for r in c.graphed.recordings] == [0]
    xs = [_args(i)[0] for i in range(2, 6)]  # all alive: x is somewhere else each call now
    for x in xs:
        assert_same(c(x, w), mlp(x, w), TOL)
    assert [len(r.copied) for r in c.graphed.recordings] == [1] and c.graphed.rerecords == 1


def test_dynamic_sizes_are_recorded_per_size(monkeypatch):
    import jit
    replays = []
    replay = cuda_graphs.Recording.__call__
    monkeypatch.setattr(cuda_graphs.Recording, "__call__", lambda self, inputs: replays.append(
        tuple(self.outputs[0].shape)) or replay(self, inputs))
    w = on_device(torch.randn(16, 16))
    compiled = jit.compile(lambda x: torch.tanh(x @ w) * 2 + 1, backend="triton")
    sizes = [4, 6, 4, 6, 9, 4, 6, 9, 9, 4]
    for n in sizes:
        x = on_device(torch.randn(n, 16))
        assert_same(compiled(x), mlp(x, w), TOL)
    # the call at 6 recompiles with dynamic sizes; from then on each size's first call runs the launches and its
    # later calls replay a recording of that size
    assert [shape[0] for shape in replays] == [6, 4, 6, 9, 9, 4]


@pytest.mark.skipif(DEVICE != "cuda", reason="a user's own graph capture needs a GPU")
def test_inside_a_users_capture_the_launches_are_recorded_there():
    c = _compiled()
    x, w = _args(1)
    static_x = x.clone()
    for _ in range(3):
        c(static_x, w)
    before = c.graphed.replays
    g = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        c(static_x, w)
    torch.cuda.current_stream().wait_stream(s)
    with torch.cuda.graph(g):
        out = c(static_x, w)
    assert c.graphed.replays == before + 1  # the warm-up on stream s replayed; the capture did not
    static_x.copy_(_args(2)[0])
    g.replay()
    torch.cuda.synchronize()
    assert_same(out, mlp(static_x, w), TOL)


def test_callers_on_several_threads_get_their_own_results():
    import threading
    c = _compiled()
    w = _args(0)[1]
    failures = []

    def work(seed):
        for i in range(10):
            x = _args(100 * seed + i)[0]
            out = c(x, w)
            if not torch.allclose(out.cpu(), mlp(x, w).cpu(), rtol=1e-4, atol=1e-4):
                failures.append((seed, i))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures and c.graphed.replays > 0


@pytest.mark.skipif(DEVICE != "cuda", reason="CUDA streams need a GPU")
def test_replays_on_alternating_streams():
    c = _compiled()
    w = _args(0)[1]
    streams = [torch.cuda.Stream(), torch.cuda.Stream()]
    results = []
    for i in range(8):
        x = _args(i + 1)[0]
        with torch.cuda.stream(streams[i % 2]):
            results.append((x, c(x, w).sum()))  # the result itself is dropped: the next call may replay over it
    torch.cuda.synchronize()
    for x, total in results:
        assert_same(total, mlp(x, w).sum(), (1e-4, 1e-3))
    assert c.graphed.replays >= 6


@pytest.mark.skipif(DEVICE != "cuda", reason="device memory needs a GPU")
def test_a_recording_that_leaves_too_little_memory_is_dropped(monkeypatch):
    monkeypatch.setattr(cuda_graphs, "MEMORY_HEADROOM", 1.0)
    assert "allocated" in _never_replayed()


def test_a_recording_whose_outputs_hold_more_than_its_launches_are_worth_is_dropped(monkeypatch):
    # a training forward's outputs are its saved activations: two recordings held them twice over eager's step
    monkeypatch.setattr(cuda_graphs, "HELD_BYTES_PER_LAUNCH", 1)
    assert "keeps its outputs" in _never_replayed()


def _graphed(compiled):
    """The GraphedCall of a compiled graph, through the wrappers a backend may put around it."""
    while compiled is not None and not hasattr(compiled, "graphed"):
        compiled = getattr(compiled, "__wrapped__", None)
    return None if compiled is None else compiled.graphed


def test_a_training_backward_is_replayed_though_its_outputs_are_held(monkeypatch, fresh_jit):
    """The backward's outputs are the gradients, which .grad holds as eager's does: the held rule that drops a
    training forward's recording (its saved activations) leaves the backward's; and gradients accumulated over
    two backward calls without zeroing are right (the first call's gradients keep its recording busy)."""
    import jit
    from framejit.inductor.backends import triton_backend
    monkeypatch.setattr(cuda_graphs, "HELD_BYTES_PER_LAUNCH", 1)
    made = []

    def backend(gm, example_inputs):
        made.append(triton_backend(gm, example_inputs))
        return made[-1]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 4)).to(DEVICE)
    twin = [p.detach().clone().requires_grad_() for p in model.parameters()]
    step = jit.compile(lambda x: model(x).pow(2).mean(), backend=backend)

    def eager(x):
        h = torch.nn.functional.gelu(x @ twin[0].t() + twin[1])
        return (h @ twin[2].t() + twin[3]).pow(2).mean()
    for i in range(5):
        x = on_device(torch.randn(8, 16, generator=torch.Generator().manual_seed(i)))
        accumulate = i == 3  # steps 3 and 4 add into the same .grad
        step(x).backward()
        eager(x).backward()
        if not accumulate:
            for p, q in zip(model.parameters(), twin):
                assert_same(p.grad, q.grad, TOL)
                p.grad, q.grad = None, None
    for p, q in zip(model.parameters(), twin):
        assert_same(p.grad, q.grad, TOL)
    (region,) = made
    backward = _graphed(region.backward)
    assert backward is not None and backward.replays >= 2, getattr(backward, "why", None)
    forward = _graphed(region.forward)
    assert forward is None or forward.replays == 0
