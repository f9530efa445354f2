"""Guards that explain themselves and dynamic sizes: every result is compared with eager, and the number of frames
compiled is what a user of automatic dynamic shapes expects."""
import logging
import random
import warnings

import pytest
import torch

import jit
from benchmarks.models.gpt import GPT, GPTConfig

BACKENDS = ["eager", "inductor"]


pytestmark = pytest.mark.usefixtures("fresh_jit")


def close(got, expected):
    if isinstance(expected, torch.Tensor):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        return
    assert type(got) is type(expected), (got, expected)
    if isinstance(expected, (tuple, list)):
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            close(g, e)
    else:
        assert got == expected


def flatten_tokens(x, w):
    b, t = x.shape[0], x.shape[1]
    y = (x @ w).reshape(b * t, -1)
    return torch.relu(y) + t, x.shape, b * t


@pytest.mark.parametrize("backend", BACKENDS)
def test_growing_length_compiles_twice(backend):
    w = torch.randn(8, 4)
    fn = jit.compile(flatten_tokens, backend=backend)
    for t in range(2, 14):
        x = torch.randn(3, t, 8)
        close(fn(x, w), flatten_tokens(x, w))
    assert jit.counters["frames_compiled"] == 2


def cache_step(keys, new):
    # transformers' DynamicLayer: an empty cache asked through numel(), a length checked with isinstance
    seen = keys.shape[-2] if keys.numel() != 0 else 0
    keys = torch.cat([keys, new], -2)
    n = keys.shape[-2]
    if not isinstance(n, int):
        raise TypeError("a length is an int")
    return keys * 2, n + seen


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_growing_cache_read_through_numel_and_isinstance_compiles_twice(backend):
    # each decoding step recompiled: isinstance() pinned the length, numel() of a computed tensor had no expression
    fn = jit.compile(cache_step, backend=backend)
    for t in range(2, 12):
        keys, new = torch.randn(2, 4, t, 8), torch.randn(2, 4, 1, 8)
        close(fn(keys, new), cache_step(keys, new))
    assert jit.counters["frames_compiled"] == 2


def test_changing_batch_marks_dim_0_only(caplog):
    jit.set_logs("recompiles")
    w = torch.randn(8, 4)
    fn = jit.compile(flatten_tokens, backend="eager")
    with caplog.at_level(logging.DEBUG, logger="jit"):
        for b in (2, 3, 4, 5):
            x = torch.randn(b, 6, 8)
            close(fn(x, w), flatten_tokens(x, w))
        x = torch.randn(5, 7, 8)  # now the length changes too: one more compile, with dim 1 dynamic as well
        close(fn(x, w), flatten_tokens(x, w))
        x = torch.randn(9, 11, 8)
        close(fn(x, w), flatten_tokens(x, w))
    assert jit.counters["frames_compiled"] == 3
    messages = [r.getMessage() for r in caplog.records if r.name == "jit.recompiles"]
    assert "tensor 'x' size mismatch at dim 0: expected 2, got 3" in messages[0]
    assert "now compiling dim 0 of 'x' (2 -> 3) as dynamic" in messages[0]
    assert "dim 1 of 'x' (6 -> 7)" in messages[1]


def test_gpt_generation_loop_compiles_at_most_two_frames():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, block_size=32, n_layer=2, n_head=2, n_embd=32), seed=0).eval()
    compiled = jit.compile(model)
    idx = torch.randint(0, 64, (1, 3))
    with torch.no_grad():
        for _ in range(12):
            expected, got = model(idx), compiled(idx)
            close(got, expected)
            logits = expected[0] if isinstance(expected, tuple) else expected
            idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], 1)
    assert jit.counters["frames_compiled"] <= 2


def test_mark_dynamic_compiles_dynamic_from_the_first_call():
    w = torch.randn(8, 4)
    fn = jit.compile(flatten_tokens, backend="eager")
    x = torch.randn(3, 5, 8)
    jit.mark_dynamic(x, 1)
    close(fn(x, w), flatten_tokens(x, w))
    for t in (6, 9, 30):
        x = torch.randn(3, t, 8)
        close(fn(x, w), flatten_tokens(x, w))
    assert jit.counters["frames_compiled"] == 1


def test_mark_dynamic_rejects_bad_arguments():
    with pytest.raises(IndexError, match="out of range"):
        jit.mark_dynamic(torch.ones(2, 3), 2)
    with pytest.raises(TypeError, match="expects a tensor"):
        jit.mark_dynamic([1, 2], 0)


def test_dynamic_true_and_false():
    w = torch.randn(8, 4)
    dyn = jit.compile(flatten_tokens, backend="eager", dynamic=True)
    for b, t in ((2, 3), (4, 5), (7, 2)):
        x = torch.randn(b, t, 8)
        close(dyn(x, w), flatten_tokens(x, w))
    assert jit.counters["frames_compiled"] == 1
    jit.reset()
    jit.counters.clear()
    static = jit.compile(flatten_tokens, backend="eager", dynamic=False)
    for t in (3, 4, 5):
        x = torch.randn(2, t, 8)
        close(static(x, w), flatten_tokens(x, w))
    assert jit.counters["frames_compiled"] == 3


def scale_by_length(x):
    return x * 2 + x.shape[1], x.shape


def test_sizes_zero_and_one_stay_specialized():
    fn = jit.compile(scale_by_length, backend="eager", dynamic=True)
    for t in (1, 4, 0, 6, 1):
        x = torch.randn(2, t, 8)
        close(fn(x), scale_by_length(x))
    assert jit.counters["frames_compiled"] == 3  # t=1, t>=2 (dynamic), t=0


def branch_on_length(x):
    if x.size(0) > 4:
        return x * 2, "long"
    return x - 1, "short"


def test_branch_on_a_dynamic_size_is_guarded():
    fn = jit.compile(branch_on_length, backend="eager", dynamic=True)
    for n in (6, 9, 3, 2, 5, 4, 12):
        x = torch.randn(n)
        close(fn(x), branch_on_length(x))
    assert jit.counters["frames_compiled"] == 2  # one per branch


def loop_over_rows(x):
    total = x[0] * 0
    for i in range(x.shape[0]):
        total = total + x[i] * i
    return total


def test_python_loop_over_a_dynamic_size_is_pinned_and_correct():
    fn = jit.compile(loop_over_rows, backend="eager", dynamic=True)
    for n in (3, 5, 3, 7):
        x = torch.randn(n, 4)
        close(fn(x), loop_over_rows(x))
    assert jit.counters["frames_compiled"] == 3  # the range needs the number: one entry per length


def add_pair(x, y):
    return x + y, x.shape[0] + y.shape[0]


def test_equal_dynamic_sizes_share_a_symbol_guarded_to_stay_equal():
    fn = jit.compile(add_pair, backend="eager", dynamic=True)
    for n in (4, 6, 9):
        x, y = torch.randn(n, 3), torch.randn(n, 3)
        close(fn(x, y), add_pair(x, y))
    assert jit.counters["frames_compiled"] == 1
    x, y = torch.randn(5, 3), torch.randn(1, 3)  # broadcasting: a different entry, still correct
    close(fn(x, y), add_pair(x, y))


def test_code_relying_on_a_size_falls_back_to_static_sizes(caplog):
    def relies(x):
        return x + torch.ones(6, 3)  # only works while x has 6 rows

    jit.set_logs("dynamic")
    fn = jit.compile(relies, backend="eager", dynamic=True)
    with caplog.at_level(logging.DEBUG, logger="jit"):
        x = torch.randn(6, 3)
        close(fn(x), relies(x))
    assert any("compiling for static sizes" in r.getMessage() for r in caplog.records)
    with pytest.raises(RuntimeError, match="must match"):
        fn(torch.randn(4, 3))


def test_cache_limit_warns_once_and_keeps_running_correctly(monkeypatch):
    monkeypatch.setattr(jit.config, "cache_size_limit", 2)

    def scaled(x, k):
        return x * k

    fn = jit.compile(scaled, backend="eager")
    x = torch.randn(3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in (2, 3, 4, 5, 6, 2, 3):
            close(fn(x, k), scaled(x, k))
    limit = [w for w in caught if "cache_size_limit" in str(w.message)]
    assert len(limit) == 1
    text = str(limit[0].message)
    assert "value of 'k' changed: expected" in text and "pass it as a tensor" in text and "'k'" in text
    assert jit.counters["frames_compiled"] == 2 and jit.counters["cache_hits"] >= 2


def test_cache_limit_suggests_mark_dynamic_for_changing_sizes(monkeypatch):
    monkeypatch.setattr(jit.config, "cache_size_limit", 2)
    fn = jit.compile(flatten_tokens, backend="eager", dynamic=False)
    w = torch.randn(8, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for t in (2, 3, 4, 5):
            x = torch.randn(2, t, 8)
            close(fn(x, w), flatten_tokens(x, w))
    (limit,) = [str(w.message) for w in caught if "cache_size_limit" in str(w.message)]
    assert "tensor 'x' size mismatch at dim 1" in limit and "jit.mark_dynamic(x, 1)" in limit


def test_failure_reasons_in_user_terms(caplog):
    class Config:
        scale = 2.0

    def uses_cfg(x, cfg):
        return x * 2 if isinstance(cfg, Config) else x * 3

    jit.set_logs("recompiles")
    fn = jit.compile(uses_cfg, backend="eager")
    x = torch.randn(3)
    with caplog.at_level(logging.DEBUG, logger="jit"):
        fn(x, Config())
        fn(x, {"scale": 2.0})
        fn(x.double(), {"scale": 2.0})
        with torch.no_grad():
            fn(x.double(), {"scale": 2.0})
    messages = " | ".join(r.getMessage() for r in caplog.records if r.name == "jit.recompiles")
    assert "type of 'cfg' changed: expected" in messages and "got dict" in messages
    assert "tensor 'x' dtype mismatch: expected torch.float32, got torch.float64" in messages
    assert "grad mode changed: expected enabled" in messages


def test_guards_log_lists_dynamic_guards(caplog):
    jit.set_logs("guards")
    with caplog.at_level(logging.DEBUG, logger="jit"):
        jit.compile(branch_on_length, backend="eager", dynamic=True)(torch.randn(7))
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "jit.guards")
    assert "x: Tensor torch.float32 cpu size=[*] contiguous" in text
    assert "(x.size(0) > 4) is True" in text


# ---- fuzz: an entry never runs on inputs it was not compiled for ---------------------------------------------------

def fuzz_target(x, y, k, flag):
    z = x * k + y.sum()
    if flag:
        z = z.relu()
    if x.shape[-1] > 3:
        z = z[..., :3]
    return z, x.shape, y.dtype


@pytest.mark.parametrize("dynamic", [None, True])
def test_fuzz_entries_only_run_on_inputs_they_fit(dynamic, monkeypatch):
    monkeypatch.setattr(jit.config, "cache_size_limit", 1000)  # exercise many entries side by side
    rng = random.Random(1234)
    fn = jit.compile(fuzz_target, backend="eager", dynamic=dynamic)
    specs = []  # argument kinds; calls pick among them so entries are both reused and missed
    for _ in range(16):
        shape = tuple(rng.choice((1, 2, 3, 4, 5)) for _ in range(rng.choice((1, 2))))
        specs.append((shape, rng.choice((torch.float32, torch.float64)), rng.random() < 0.3, rng.random() < 0.2,
                      rng.choice((1, 3)), rng.choice((torch.float32, torch.float64)), rng.choice((1, 2, 2.5)),
                      rng.random() < 0.5))
    for _ in range(80):
        shape, dtype, grad, transpose, y_len, y_dtype, k, flag = rng.choice(specs)
        x = torch.randn(shape, dtype=dtype, requires_grad=grad)
        if transpose and x.dim() == 2 and not grad:
            x = x.t()  # non-contiguous
        y = torch.randn(y_len, dtype=y_dtype)
        close(fn(x, y, k, flag), fuzz_target(x, y, k, flag))
    assert jit.counters["cache_hits"] > 10 and jit.counters["frames_compiled"] > 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_sizes_of_intermediates_read_in_python_stay_dynamic(backend):
    # transformers' Conv1D: x.size()[:-1] + (nf,) of an intermediate, and a comparison of an intermediate's size
    # with a constant: the size equals an input dim (or that dim plus a constant) at both traced sizes, so it is
    # that dim, guarded; a growing sequence compiles twice (static, then dynamic), never once per length
    weight = torch.randn(4, 6)

    def conv1d(x):
        h = x * 2
        size_out = h.size()[:-1] + (6,)
        y = torch.addmm(torch.zeros(6), h.view(-1, h.size(-1)), weight).view(size_out)
        z = torch.cat([y, y[:, :1]], dim=1)  # T + 1
        if z.shape[1] == 1 or h.shape[1] > 100:
            return y
        return z * z.shape[1]

    fast = jit.compile(conv1d, backend=backend)
    jit.counters.clear()
    for t in range(3, 10):
        x = torch.randn(2, t, 4)
        close(fast(x), conv1d(x))
    assert jit.counters.frames_compiled == 2, jit.counters
    x = torch.randn(2, 101, 4)  # the other side of the comparison guarded
    close(fast(x), conv1d(x))


def test_ordering_a_tuple_of_sizes_against_a_number_raises_as_eager():
    # fuzz seed 491633: with dynamic sizes the comparison raised inside the compiler (an internal error, the
    # frame then run eagerly with a warning) instead of in the user's code, as eager's TypeError
    def f(x):
        if (tuple(x.shape) > 0).any():
            return x + 1
        return x

    compiled = jit.compile(f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for shape in ((3, 1), (2, 1), (4, 1)):
            with pytest.raises(TypeError, match="not supported between instances of 'tuple' and 'int'"):
                compiled(torch.randn(shape))
