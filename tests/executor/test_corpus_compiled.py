"""The symbolic executor against the differential corpus (tests/corpus): every case returns what eager returns
(values, types, aliasing, input mutations), pure tensor code is captured as exactly one graph, and what the
executor does not model yet runs eagerly with the reason listed below.

KNOWN_EAGER lists the cases that are not captured whole today (they break the graph, or run eagerly), each with
a reason the executor gives. The test asserts that reason still appears, so a fix that captures one fails here
until the list is updated: the list can only shrink honestly. Cases of category "breaks" must break."""
import warnings

import pytest
import torch

import jit
from tests.corpus.case import ModuleCase
from tests.corpus.runner import all_cases, case_id, check_case

KNOWN_EAGER = {
    'builtins-builtin_min_max_constants': 'max(key=...) of values not known at compile time',
    'functions-decorator_wrapped': "attribute '__module__' of nested function decora",
    'classes-dunder_dict_and_vars': 'builtin vars',
    'classes-class_defined_inside': 'instruction LOAD_BUILD_CLASS',
    'classes-tensor_subclass_check': 'creating a Parameter inside the function',
    'grad_mode-requires_grad_result': 'tensor.grad_fn (autograd state)',
    'grad_mode-no_grad_decorated_helper': 'calling no_grad()',
    'modules-BufferMutation': "setting attribute 'count' on module BufferMutati",
    'modules-ParameterListDict': 'indexing ParameterDict',
}


@pytest.fixture(autouse=True)
def fresh():
    jit.reset()
    yield
    jit.reset()


def _compile_eager(fn):
    return jit.compile(fn, backend="eager")


@pytest.mark.parametrize("backend", ["eager", "inductor"])
@pytest.mark.parametrize("case", all_cases(), ids=case_id)
def test_compiled_matches_eager(case, backend):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an internal error would warn and fall back: fail instead
        check_case(case, lambda fn: jit.compile(fn, backend=backend))


@pytest.mark.parametrize("case", all_cases(), ids=case_id)
def test_capture(case):
    args, kwargs = case.make_inputs()
    fn = case.make_module() if isinstance(case, ModuleCase) else case.fn
    exp = jit.explain(fn, *args, **kwargs)
    cid = case_id(case)
    if case.graphs is None:  # needs graph breaks: today the frame runs eagerly, with a reason
        assert exp.graph_break_count >= 1 and exp.break_reasons[0].location
        return
    if cid in KNOWN_EAGER:
        assert exp.break_reasons, f"{cid} is captured now: remove it from KNOWN_EAGER"
        assert any(KNOWN_EAGER[cid] in r.reason for r in exp.break_reasons), [str(r) for r in exp.break_reasons]
        return
    assert not exp.break_reasons, f"fell back: {exp.break_reasons[0]}"
    assert exp.graph_count == case.graphs, str(exp)


def test_corpus_capture_rate():
    captured = [c for c in all_cases() if c.graphs is not None and case_id(c) not in KNOWN_EAGER]
    assert len(captured) >= 300


def test_second_call_hits_cache_and_new_shape_recompiles():
    def f(x, y):
        return torch.tanh(x) @ y + 1

    cf = _compile_eager(f)
    jit.counters.clear()
    x, y = torch.randn(4, 5), torch.randn(5, 3)
    torch.testing.assert_close(cf(x, y), f(x, y))
    torch.testing.assert_close(cf(x, y), f(x, y))
    assert jit.counters.frames_compiled == 1 and jit.counters.cache_hits == 1
    x2 = torch.randn(6, 5)
    torch.testing.assert_close(cf(x2, y), f(x2, y))
    assert jit.counters.frames_compiled == 2 and jit.counters.recompiles == 1
