"""benchmarks/broad.py on the CPU at its --quick sizes: the workload table builds and runs, a run measures and
writes its table, and the cross-check of ours against eager stops a wrong answer from being timed. No timings
are asserted: they only have to be there."""
import json

import pytest
import torch

from benchmarks import broad, harness

QUICK = {k: v[1] for k, v in broad.SIZES.items()}
FEW = ["softmax", "max with indices", "cross_entropy ignore_index", "rotary interleaved (stack)", "scatter"]


def _workloads(*names):
    by_name = {w.name: w for w in broad.WORKLOADS}
    return [by_name[n] for n in names]


def _opts(**kw):
    return broad.Options("cpu", QUICK, rounds=1, cpu_calls=1, torch_compile=False, **kw)


def test_table_has_one_entry_per_name_and_the_issue_s_breadth():
    names = [w.name for w in broad.WORKLOADS]
    assert len(names) == len(set(names)) >= 30


@pytest.mark.parametrize("w", broad.WORKLOADS, ids=lambda w: w.name)
def test_every_workload_runs_eagerly_at_quick_sizes(w):
    torch.manual_seed(0)
    inputs = w.inputs(broad.Make(QUICK, torch.float32, "cpu"))
    out = w.fn(*inputs)
    assert all(torch.isfinite(t.float()).all() for t in broad._tensors(out))
    assert (w.flops(QUICK) if w.flops else (w.nbytes or broad.io_bytes)(inputs, out)) > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_few_workloads_are_measured_and_match_eager(fresh_jit, dtype):
    rows = broad.run(_workloads(*FEW), [dtype], _opts())
    assert [r["workload"] for r in rows] == FEW
    for r in rows:
        assert "status" not in r, r["status"]
        assert r["err_ours"] <= broad.TOLERANCE[dtype]
        assert r["eager_ms"] > 0 and r["ours_ms"] > 0 and r["speedup_ours"] > 0
        assert r["graphs"] == "1 graph"
        assert ("eager_GBs" in r) != ("eager_TFLOPs" in r)
    softmax, scatter = rows[0], rows[-1]
    item = torch.empty((), dtype=dtype).element_size()
    assert softmax["MB"] == 2 * QUICK["N"] * QUICK["C"] * item / 1e6  # read once, written once
    assert softmax["ours_GBs"] == pytest.approx(softmax["MB"] / softmax["ours_ms"])
    # scatter: the source tensor read and written, the indices (int64) and the values read
    assert scatter["MB"] == (2 * QUICK["N"] * QUICK["C"] * item + QUICK["N"] * QUICK["K"] * (8 + item)) / 1e6


def _wrong(change):
    """An "ours" that compiles nothing and returns eager's answer changed by `change`."""
    def compile_(fn):
        return lambda *args: change(fn(*args))
    return compile_


def _nudge_first_float(out):
    if isinstance(out, tuple):
        return (_nudge_first_float(out[0]), *out[1:])
    return out * 1.01 if out.is_floating_point() else out


@pytest.mark.parametrize("name, change, message", [
    ("softmax", lambda out: out * 1.01, "relative error"),
    ("softmax", lambda out: out.double(), "torch.float64"),
    ("softmax", lambda out: out[:-1], "eager torch.float32"),
    ("softmax", lambda out: out.clone().fill_(float("nan")), "NaN or inf"),
    ("max with indices", lambda out: (out[0], out[1] + 1), "entries differ"),
    ("max with indices", lambda out: _nudge_first_float(out), "output 0: relative error"),
    ("max with indices", lambda out: out[0], "eager returned 2"),
])
def test_a_wrong_answer_of_ours_stops_the_run(fresh_jit, name, change, message):
    with pytest.raises(broad.Mismatch, match=message):
        broad.run(_workloads(name), [torch.float32], _opts(ours=_wrong(change), stop_on_mismatch=True))


@pytest.mark.parametrize("got, ref", [([float("nan"), 1.0], [float("-inf"), 1.0]),
                                      ([float("inf"), 1.0], [float("-inf"), 1.0]),
                                      ([float("nan"), 1.0], [0.0, 1.0])])
def test_non_finite_entries_must_be_eager_s(got, ref):
    with pytest.raises(broad.Mismatch, match="NaN or inf"):
        broad.check(torch.tensor(got), torch.tensor(ref), torch.float32)
    assert broad.check(torch.tensor(ref), torch.tensor(ref), torch.float32) == 0.0


def test_a_wrong_row_is_reported_untimed_and_the_others_still_run(fresh_jit):
    cumsum, softmax = _workloads("cumsum", "softmax")

    def ours(fn):  # wrong on cumsum only
        return (lambda x: fn(x) + 1e-3) if fn is cumsum.fn else fn
    bad, good = broad.run([cumsum, softmax], [torch.float32], _opts(ours=ours))
    assert bad["status"].startswith("MISMATCH: Mismatch: output 0: relative error") and "eager_ms" not in bad
    assert "**MISMATCH" in broad.line(bad)
    assert "status" not in good and good["ours_ms"] > 0
    assert broad.failures([bad, good]) == [f"cumsum float32: {bad['status']}"]
    assert "float32 | | | | - | " in broad.geomean_lines([bad, good])[0]  # the geomean is over the good row


def test_an_error_of_ours_is_reported_as_such(fresh_jit):
    def broken(fn):
        def call(*args):
            raise RuntimeError("no kernel for this")
        return call
    row, = broad.run(_workloads("softmax"), [torch.float32], _opts(ours=broken))
    assert row["status"] == "ERROR: RuntimeError: no kernel for this"


def test_main_writes_its_table_and_exits_0(fresh_jit, tmp_path):
    argv = ["--device", "cpu", "--quick", "--no-torch-compile", "--dtypes", "float32", "--rounds", "1",
            "--only", "cumsum,gather", "--out", str(tmp_path)]
    assert broad.main(argv) == 0
    data = json.loads((tmp_path / "broad_cpu_quick_float32.json").read_text())
    assert [r["workload"] for r in data["rows"]] == ["cumsum", "gather"] and data["failures"] == []
    md = (tmp_path / "broad_cpu_quick_float32.md").read_text()
    assert "| **geomean** | float32 |" in md and "| gather | float32 |" in md


def test_rows_past_the_budget_are_listed_as_skipped_not_as_failures(fresh_jit):
    rows = broad.run(_workloads("softmax", "cumsum"), [torch.float32], _opts(), budget=0.0)
    assert [r["status"] for r in rows] == [broad.SKIPPED] * 2
    assert broad.failures(rows) == [] and broad.line(rows[0]).startswith("| softmax | float32 | **skipped")


def test_check_only_compiles_and_checks_without_timing(fresh_jit, tmp_path):
    argv = ["--device", "cpu", "--quick", "--check-only", "--dtypes", "float32", "--only", "scatter",
            "--backend", "numpy", "--out", str(tmp_path)]
    assert broad.main(argv) == 0
    row, = json.loads((tmp_path / "broad_cpu_quick_float32.json").read_text())["rows"]
    assert row["err_ours"] == 0.0 and row["graphs"] == "1 graph" and "eager_ms" not in row


def test_results_files_are_named_after_the_device_and_any_dtype_subset():
    assert broad.file_tag("cpu", False, broad.DTYPES) == "cpu"
    assert broad.file_tag("cpu", True, "bfloat16") == "cpu_quick_bfloat16"


def test_an_output_as_accurate_as_eagers_passes_where_eager_itself_is_off():
    """bfloat16 cumsum on CUDA: eager rounds each partial sum (0.027 from the float64 sums), ours sums in float32
    (0.0023): against eager the two differ by more than bf16's tolerance, against float64 ours is the closer one,
    so the row is right. A result further from float64 than eager's still fails."""
    g = torch.Generator().manual_seed(0)
    exact = torch.randn(4, 4096, generator=g, dtype=torch.float64)
    off = lambda scale: (exact * (1 + scale * torch.randn(exact.shape, generator=g, dtype=torch.float64))).bfloat16()  # noqa: E731
    eager, ours, worse = off(0.03), exact.bfloat16(), off(0.06)
    assert harness.rel_error(ours, eager) > broad.TOLERANCE[torch.bfloat16]
    assert broad.check(ours, eager, torch.bfloat16, lambda: exact) <= broad.TOLERANCE[torch.bfloat16]
    with pytest.raises(broad.Mismatch):
        broad.check(worse, eager, torch.bfloat16, lambda: exact)
    with pytest.raises(broad.Mismatch):  # without the float64 result, eager's is the reference
        broad.check(ours, eager, torch.bfloat16)
