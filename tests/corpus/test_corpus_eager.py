"""Validates the corpus itself with the identity compile_fn, shows the runner can fail, and tests the GPT models.

The corpus is the acceptance test of the symbolic executor, so a flaky or vacuous case here would hide bugs
there: each case must run, be deterministic, leave the global RNG alone, and a wrong compiler must be caught.
"""
import dataclasses

import pytest
import torch

from benchmarks.models.gpt import GPT, GPTConfig, LoopGPT, gpt2_block_config, gpt_block, small_config

from .case import Case, ModuleCase
from .runner import all_cases, assert_same, case_id, check_case

CASES = all_cases()


def _call(case):
    args, kwargs = case.make_inputs()
    fn = case.make_module() if isinstance(case, ModuleCase) else case.fn
    return fn(*args, **kwargs), (args, kwargs)


def identity(f):
    return f


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_case_runs_deterministically(case):
    rng_before = torch.random.get_rng_state()
    first, inputs_first = _call(case)
    second, inputs_second = _call(case)
    # A case that reads the global RNG would differ between eager and compiled for reasons unrelated to the JIT.
    assert torch.equal(rng_before, torch.random.get_rng_state()), "case touched the global RNG"
    assert_same(first, second)
    assert_same(inputs_first, inputs_second, "inputs after the call")
    check_case(case, identity)


def test_corpus_shape():
    names = [(c.category, c.name) for c in CASES]
    assert len(names) == len(set(names)), "duplicate case names"
    functions = [c for c in CASES if isinstance(c, Case)]
    modules = [c for c in CASES if isinstance(c, ModuleCase)]
    assert len(functions) >= 300 and len(modules) >= 20
    for c in CASES:
        if c.graphs is None:
            assert c.category == "breaks", c.name
        else:
            assert isinstance(c.graphs, int) and c.graphs >= 0, c.name
    assert any(c.graphs == 0 for c in functions), "no zero-graph cases"


def _map_tensors(v, f):
    """Rebuild a result with f applied to every tensor, keeping every container type (namedtuples included)."""
    if isinstance(v, torch.Tensor):
        return f(v)
    if isinstance(v, tuple) and hasattr(type(v), "_fields"):
        return type(v)(*(_map_tensors(x, f) for x in v))
    if isinstance(v, (tuple, list)):
        return type(v)(_map_tensors(x, f) for x in v)
    if isinstance(v, dict):
        return {k: _map_tensors(x, f) for k, x in v.items()}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return dataclasses.replace(v, **{fl.name: _map_tensors(getattr(v, fl.name), f) for fl in dataclasses.fields(v)})
    return v


def _has_float_tensor(v):
    found = []
    _map_tensors(v, lambda t: found.append(t.is_floating_point() and t.numel() > 0) or t)
    return any(found)


def perturbing_compile(f):
    # Relative perturbation, so large-valued outputs are still moved well beyond assert_close's tolerance.
    def bump(t):
        return t + 1e-3 * (1 + t.detach().abs()) if t.is_floating_point() else t

    return lambda *a, **k: _map_tensors(f(*a, **k), bump)


def _float_output_cases():
    return [c for c in CASES if _has_float_tensor(_call(c)[0])]


def test_runner_catches_wrong_values():
    cases = _float_output_cases()
    assert len(cases) > 200
    for case in cases[::3]:
        with pytest.raises(AssertionError, match=rf"\[{case.name}\]"):
            check_case(case, perturbing_compile)


def test_runner_catches_lost_mutation():
    # A "compiler" that runs on copies of the inputs loses every in-place write and list.append.
    def on_copies(f):
        def run(*args, **kwargs):
            args = _map_tensors([*args], lambda t: t.clone())
            return f(*args, **kwargs)

        return run

    by_name = {c.name: c for c in CASES}
    for name in ("mutate_input_mul", "inplace_add", "return_none", "mutate_list_argument"):
        with pytest.raises(AssertionError, match="inputs after the call"):
            check_case(by_name[name], on_copies)


def test_runner_catches_type_and_alias_changes():
    by_name = {c.name: c for c in CASES}
    as_list = lambda f: lambda *a, **k: list(f(*a, **k))  # noqa: E731
    with pytest.raises(AssertionError, match="type list, expected tuple"):
        check_case(by_name["return_nested_tuple"], as_list)
    copy_all = lambda f: lambda *a, **k: _map_tensors(f(*a, **k), torch.clone)  # noqa: E731
    with pytest.raises(AssertionError, match="identity"):
        check_case(by_name["return_input_alias"], copy_all)
    to_tuple = lambda f: lambda *a, **k: tuple(f(*a, **k))  # noqa: E731
    with pytest.raises(AssertionError, match="Point"):
        check_case(by_name["namedtuple_return"], to_tuple)


def test_runner_catches_module_state_drift():
    case = next(c for c in CASES if c.name == "BufferMutation")

    def forward_twice(m):
        return lambda *a, **k: (m(*a, **k), m(*a, **k))[1]

    with pytest.raises(AssertionError):
        check_case(case, forward_twice)


# ---- GPT models -------------------------------------------------------------------------------------------


def _idx(b=2, t=10, vocab=64, seed=0):
    return torch.randint(0, vocab, (b, t), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cls", [GPT, LoopGPT])
def test_gpt_shapes_and_causality(cls):
    cfg = small_config()
    model = cls(cfg, seed=0).eval()
    idx = _idx()
    with torch.no_grad():
        logits = model(idx)
        assert logits.shape == (2, 10, cfg.vocab_size)
        changed = idx.clone()
        changed[:, 6] = (changed[:, 6] + 1) % cfg.vocab_size
        logits2 = model(changed)
    # Changing token 6 must leave positions 0..5 untouched and change position 6.
    torch.testing.assert_close(logits[:, :6], logits2[:, :6])
    assert not torch.allclose(logits[:, 6], logits2[:, 6])


def test_gpt_variants_agree_and_seed_is_deterministic():
    cfg = small_config()
    idx = _idx()
    with torch.no_grad():
        a = GPT(cfg, seed=3)(idx)
        b = LoopGPT(cfg, seed=3)(idx)
        c = GPT(cfg, seed=3)(idx)
        d = GPT(cfg, seed=4)(idx)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert torch.equal(a, c)
    assert not torch.allclose(a, d)


def test_gpt_untied_head_and_dropout_training():
    cfg = dataclasses.replace(small_config(), tied_head=False, dropout=0.1, bias=False)
    for cls in (GPT, LoopGPT):
        model = cls(cfg, seed=1)
        assert model.lm_head.weight is not model.wte.weight
        out = model.train()(_idx())
        out.sum().backward()
        assert model.wte.weight.grad is not None
    tied = GPT(small_config())
    assert tied.lm_head.weight is tied.wte.weight


def test_gpt_block_configs():
    assert isinstance(small_config(), GPTConfig)
    big = gpt2_block_config()
    assert (big.n_embd, big.n_head) == (768, 12)
    block = gpt_block(big, seed=0)
    x = torch.randn(1, 4, 768, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert block(x).shape == (1, 4, 768)
        naive = gpt_block(big, seed=0, naive=True)
        torch.testing.assert_close(naive(x), block(x), rtol=1e-4, atol=1e-4)
