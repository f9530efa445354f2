"""The program generator in CI: a fixed slice of seeds through the eager, default and Triton backends, plus tests
showing the generator, the oracle and the minimizer do what they claim (each one can fail).

The default backend chooses per graph, by timing at compile time, between the generated NumPy code and the
captured graph in torch; the choice can differ between machines, and so could a program's outcome. So CI checks
each arm forced (default-numpy, default-torch: deterministic), then the default itself (the measurement included)
on the programs where both arms agree that it is right.

A seed listed in known_failures.KNOWN fails today because of a compiler bug written up in the findings
(F-numbers); it runs as its own test, xfail(strict=True) with the category it fails with, so a fix turns it into a
failure here and the entry gets removed. A known seed failing with a *different* category fails the test
outright. To look at one: python -m tests.fuzz --backend default-numpy --seeds 3 --minimize
"""
from __future__ import annotations

import functools
import hashlib

import pytest
import torch

import tests.inductor.triton.support  # noqa: F401  (TRITON_INTERPRET=1 before triton loads, where no GPU)

from framejit.inductor.runtime import c_modules

from .known_failures import KNOWN, SLOW
from .generator import generate
from .minimize import minimize
from .oracle import Run, Verdict, check, compare
from .program import Assign, Call, ExprStmt, Lit, Name, Program, Return, TensorInput

CI_SEEDS = range(0, 250)
ARMS = ("default-numpy", "default-torch")
# default after its arms: it reads their verdicts. The Triton backend, the GPU path, runs the CPU programs in
# Triton's interpreter where there is no GPU (tests.inductor.triton.support switches it on before triton loads)
# numpy-c: the NumPy backend with every kernel C can express compiled (inductor/c/; the programs' small tensors
# stay NumPy code otherwise), where a C compiler exists
CI_BACKENDS = ("eager", *ARMS, "default") + (() if torch.cuda.is_available() else ("triton",)) + \
    (("numpy-c",) if c_modules.compiler() is not None else ())
CHUNK = 25
# sha256 of the CI slice's programs (their sources, inputs and calls): KNOWN names programs by seed, so it is only
# meaningful for this generator (see test_generator_is_the_one_known_failures_describe)
GENERATOR_DIGEST = "017bdbb897edefef399f87cb1497670d52ff3ec6dabc4bb4e81d16626ded3f76"


@pytest.fixture(autouse=True, scope="module")
def private_cache(tmp_path_factory):
    """Generated NumPy modules go to a fresh directory, not the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAMEJIT_CACHE_DIR", str(tmp_path_factory.mktemp("framejit-cache")))
        yield


@functools.lru_cache(maxsize=None)
def program(seed: int) -> Program:
    return generate(seed)


@functools.lru_cache(maxsize=None)
def verdict(backend: str, seed: int) -> Verdict:
    return check(program(seed), backend)


def _deterministic(backend: str, seed: int) -> bool:
    """Whether the seed's outcome on `backend` is the same on every machine: always, except for the timed default
    where an arm fails (which arm runs then depends on the timing; the arm's own test covers it)."""
    return backend != "default" or all(verdict(arm, seed).status == "ok" for arm in ARMS)


def _slices():
    for backend in CI_BACKENDS:
        known = {s for (b, s) in KNOWN if b == backend} | set(SLOW)
        for start in range(CI_SEEDS.start, CI_SEEDS.stop, CHUNK):
            seeds = tuple(s for s in range(start, min(start + CHUNK, CI_SEEDS.stop)) if s not in known)
            yield pytest.param(backend, seeds, id=f"{backend}-seeds-{start}-{start + CHUNK - 1}")


def _known():
    for (backend, seed), (category, finding) in sorted(KNOWN.items()):
        if backend in CI_BACKENDS and seed in CI_SEEDS:
            yield pytest.param(backend, seed, category, id=f"{backend}-seed-{seed}",
                               marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=finding))


def _describe(seed: int, backend: str, v: Verdict) -> str:
    return (f"seed {seed}, backend {backend}: {v}\n{program(seed).source()}"
            f"minimize: python -m tests.fuzz --backend {backend} --seeds {seed} --minimize\n")


@pytest.mark.parametrize("backend, seeds", list(_slices()))
def test_generated_programs(backend, seeds):
    failures = []
    for seed in seeds:
        if not _deterministic(backend, seed):
            continue
        v = verdict(backend, seed)
        # "skip" means two eager runs disagreed: the generator wrote a nondeterministic program, its bug
        if v.status != "ok":
            failures.append(_describe(seed, backend, v))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("backend, seed, category", list(_known()))
def test_known_failure(backend, seed, category):
    v = verdict(backend, seed)
    if v.status != "ok" and v.category != category:
        raise RuntimeError(f"seed {seed} now fails differently (update KNOWN): {_describe(seed, backend, v)}")
    assert v.status == "ok", _describe(seed, backend, v)


# ---- the generator ------------------------------------------------------------------------------------------------


def _digest() -> str:
    text = "".join(program(s).source() + repr(program(s).params) + repr(program(s).calls) for s in CI_SEEDS)
    return hashlib.sha256(text.encode()).hexdigest()


def test_generator_is_the_one_known_failures_describe():
    assert _digest() == GENERATOR_DIGEST, (
        "the generator now writes other programs for the CI seeds, so known_failures.KNOWN describes programs that "
        "no longer exist: recompute it (see its docstring), then set GENERATOR_DIGEST to " + _digest())


def test_same_seed_same_program():
    for seed in (0, 7, 123):
        assert generate(seed) == generate(seed)
    assert len({generate(s).source() for s in range(20)}) == 20


def test_programs_cover_what_the_issue_asks_for():
    programs = [program(s) for s in CI_SEEDS]
    text = "\n".join(p.source() for p in programs)
    for feature in ("try:", "except", "for ", "while ", "if ", "else:", "def h", "lambda", "nonlocal", "print(", ".item()",
                    ".tolist()", "_(", "] = ", " += ", "inplace=True", ".append(", "{'a'", ".items()", "torch.rand",
                    ".t()", "[::2]", ".expand(", "@", ".shape[", "callable(", "hasattr(", ".keys()", "gather(",
                    "index_add", "einsum("):
        assert feature in text, feature
    inputs = [x for p in programs for x in p.params if isinstance(x, TensorInput)]
    assert {x.dtype for x in inputs} == {"float16", "bfloat16", "float32", "float64", "int32", "int64", "bool"}
    assert {x.layout for x in inputs} == {"contiguous", "transpose", "step", "offset", "expand"}
    sizes = {v for p in programs for call in p.calls for v in call.values()}
    assert {0, 1} <= sizes
    assert all(p.calls[0] == p.calls[1] for p in programs)  # the second call hits the cache
    assert sum(p.calls[2] != p.calls[0] for p in programs) > len(programs) / 2  # the third recompiles


def test_inputs_are_fresh_identical_and_of_the_described_layout():
    x = TensorInput("x0", "float16", ("A", "B"), "transpose", seed=3)
    p = Program(0, (x,), (Return(Name("x0")),), ({"A": 2, "B": 3},))
    first, second = p.make_args(0)[0], p.make_args(0)[0]
    assert first is not second and torch.equal(first, second)
    assert first.shape == (2, 3) and first.dtype == torch.float16 and not first.is_contiguous()
    expanded = TensorInput("x0", "int32", ("A", "B"), "expand").expr({"A": 3, "B": 2}, 0)
    assert eval(expanded, {"torch": torch}).stride()[0] == 0


# ---- the oracle -----------------------------------------------------------------------------------------------


def _program(*body, dtype="float32"):
    return Program(0, (TensorInput("x0", dtype, ("A", "B"), seed=1),), body,
                   ({"A": 2, "B": 3}, {"A": 2, "B": 3}, {"A": 4, "B": 3}))


SIN = _program(Assign("t1", Call("torch.sin({0})", (Name("x0"),))), Return(Name("t1")))
MUTATES = _program(ExprStmt(Call("{0}.mul_(2)", (Name("x0"),))), Return(Call("({0} + 1)", (Name("x0"),))))
VIEW_OUT = _program(Assign("t1", Call("torch.sin({0})", (Name("x0"),))),
                    Return(Call("({0}, {1}.t())", (Name("t1"), Name("t1")))))


def _planted(change_outputs=None, change_inputs=None):
    """A backend with a bug: it runs the graph, with its inputs or outputs changed."""
    def backend(gm, example_inputs):
        def run(*args):
            if change_inputs:
                args = [change_inputs(a) if isinstance(a, torch.Tensor) else a for a in args]
            out = gm(*args)
            if change_outputs and isinstance(out, (tuple, list)):
                out = type(out)(change_outputs(o) if isinstance(o, torch.Tensor) else o for o in out)
            return out
        return run
    return backend


def test_oracle_passes_a_correct_backend():
    for p in (SIN, MUTATES, VIEW_OUT):
        assert check(p, "eager").status == "ok"


@pytest.mark.parametrize("planted, program_, category", [
    (_planted(change_outputs=lambda t: t + 1e-2 if t.is_floating_point() else t), SIN, "value"),
    (_planted(change_outputs=lambda t: t.double()), SIN, "dtype"),
    (_planted(change_outputs=lambda t: t[:1]), SIN, "shape"),
    (_planted(change_inputs=torch.clone), MUTATES, "mutation"),
    (_planted(change_outputs=torch.clone), VIEW_OUT, "aliasing"),
], ids=["value", "dtype", "shape", "mutation", "aliasing"])
def test_oracle_catches_a_planted_bug(planted, program_, category):
    verdict = check(program_, planted)
    assert (verdict.status, verdict.category) == ("wrong", category), verdict


def test_oracle_float16_tolerance_is_looser_but_not_blind():
    ok = _planted(change_outputs=lambda t: (t.float() * (1 + 2e-3)).to(t.dtype) if t.is_floating_point() else t)
    assert check(_program(*SIN.body, dtype="float16"), ok).status == "ok"
    assert check(SIN, ok).category == "value"  # the same error in float32 is wrong
    bad = _planted(change_outputs=lambda t: t * 1.1 if t.is_floating_point() else t)
    assert check(_program(*SIN.body, dtype="float16"), bad).category == "value"


def _run(value=None, raised=None, stdout="", internal=()):
    return Run(raised, value, [], stdout, list(internal))


def test_oracle_compares_exceptions_stdout_and_warnings():
    t = torch.ones(2)
    assert compare(_run(t), _run(t)) is None
    assert compare(_run(raised=ValueError()), _run(raised=ValueError("other text"))) is None
    assert compare(_run(t), _run(raised=RuntimeError()))[0] == "unexpected-exception"
    assert compare(_run(raised=RuntimeError()), _run(t))[0] == "missing-exception"
    assert compare(_run(raised=RuntimeError()), _run(raised=IndexError()))[0] == "exception-type"
    assert compare(_run(t, stdout="a\n"), _run(t, stdout="b\n"))[0] == "stdout"
    assert compare(_run(t), _run(t, internal=["framejit: internal error while ..."]))[0] == "internal-error"
    assert compare(_run(torch.tensor([float("nan")])), _run(torch.tensor([float("nan")]))) is None


def test_oracle_skips_a_nondeterministic_program():
    clock = _program(Return(Lit("torch.tensor(__import__('time').perf_counter_ns())")))
    assert check(clock, "eager").status == "skip"


# ---- the minimizer --------------------------------------------------------------------------------------------


def test_minimizer_keeps_the_exception_type():
    def raised(kind):
        return Verdict("crash", "unexpected-exception", f"compiled raised {kind}: ...", 0)

    assert raised("TypeError").signature() == raised("TypeError").signature()
    assert raised("TypeError").signature() != raised("IndexError").signature()
    assert Verdict("wrong", "value", "result: 1 of 2 values differ").signature() == ("wrong", "value", None)


def test_minimizer_keeps_the_failure_and_shrinks():
    # a program failing on a planted bug, kept only while it still uses one op: whatever else it does should go
    seed, marker = next((s, m) for s in CI_SEEDS for m in ("torch.sin(", "torch.cos(", "torch.exp(", "torch.tanh(")
                        if m in program(s).source() and len(program(s).body) > 6)
    planted = _planted(change_outputs=lambda t: t + 1)  # every graph output is off by one

    def fails(p):
        v = check(p, planted)
        return v if v.status != "ok" and marker in p.source() else None

    verdict = fails(program(seed))
    assert verdict, program(seed).source()
    small = minimize(program(seed), planted, verdict, budget_s=60, fails=fails)
    assert fails(small) and marker in small.source()
    assert len(small.source().splitlines()) <= 4, small.source()
    assert len(small.calls) == 1
    assert "jit.compile(f" in small.reproducer("numpy") and 'backend="numpy"' in small.reproducer("numpy")
