"""Differential corpus: small programs run eagerly and through a compile function, results compared.

Cases are data (`Case`, `ModuleCase` in case.py), grouped one category per `cases_*.py` file; `runner.py`
checks one case against any `compile_fn(f) -> callable`. Pointing it at the JIT:

    from tests.corpus.runner import all_cases, case_id, check_case

    @pytest.mark.parametrize("case", all_cases(), ids=case_id)
    def test_jit_matches_eager(case):
        check_case(case, jit.compile)

and, for capture quality, compare `jit.explain(fn, *args, **kwargs).graph_count` with `case.graphs`
(None: a graph break is expected, the count is not pinned).
"""
