"""The Triton backend's stages run one after the other (inductor/triton/backend.py): PLAN (planner.py, a
ModulePlan of plan.py), WRITE kernels (kernels.py), WRITE host code (host.py) from the finished plan alone."""
import pytest
import torch
import torch.nn.functional as F

from tests.inductor.triton.support import DEVICE, check_fn, on_device

from framejit.inductor import prepare
from framejit.inductor.ir import Buffer, ExternKernel, ExternKind, Kernel, Layout
from framejit.inductor.triton import backend, host, planner, probe
from framejit.inductor.triton.kernels import UnsupportedKernels, write_kernels
from framejit.inductor.triton.plan import Launch, LibraryCall, LibraryResult, MatmulSite, Return

TOL = (1e-4, 1e-4)


def _mlp(x, w, b, r):
    return r + F.gelu(F.linear(x, w, b)), torch.softmax(r, -1)


def _inputs():
    torch.manual_seed(0)
    return [on_device(t) for t in (torch.randn(16, 32), torch.randn(32, 32), torch.randn(32), torch.randn(16, 32))]


def _stages(fn, inputs, autotune=False):
    """(plan, written kernels, module source) through the stages one by one, as backend.py runs them."""
    gm = prepare.optimize(torch.fx.symbolic_trace(fn), inputs)
    backend._rewrite(gm, inputs, torch.device(DEVICE))
    lowered, _, failures = planner.lower_round(gm, inputs, frozenset(), {})
    assert failures == []
    probe.probe_extern_layouts(lowered, inputs, gm, True)
    plan = planner.plan_module(lowered, autotune, True)
    written = write_kernels(plan)
    return plan, written, host.write_module(plan, written)


def test_the_stages_make_the_module_the_backend_makes():
    inputs = _inputs()
    plan, written, source = _stages(_mlp, inputs)
    assert isinstance(plan.steps[-1], Return)
    assert [type(s) for s in plan.steps[:-1]] == [LibraryCall, Launch, Launch]
    assert plan.steps[0].result == LibraryResult.FRESH and plan.steps[0].kernel.kind == ExternKind.ADDMM
    assert set(written.calls) == {id(s) for s in plan.steps if isinstance(s, Launch)}
    assert host.write_module(plan, written) == source  # the host writer decides nothing: the same plan, the same code
    compiled = check_fn(_mlp, *inputs, tol=TOL)
    assert compiled.source == source


def test_fused_matmul_sites_are_planned_only_for_autotuning():
    inputs = _inputs()
    plan, written, source = _stages(_mlp, inputs, autotune=True)
    sites = [s for s in plan.steps if isinstance(s, MatmulSite)]
    assert len(sites) == 1 and sites[0].out.name in written.matmuls
    assert f"def library_{written.matmuls[sites[0].out.name].name}()" in source
    plan, _, _ = _stages(_mlp, inputs, autotune=False)
    assert not any(isinstance(s, MatmulSite) for s in plan.steps)


def test_a_kernel_the_writer_rejects_is_reported_with_its_buffer():
    inputs = _inputs()
    gm = prepare.optimize(torch.fx.symbolic_trace(lambda x: (x * 2).exp()), inputs[:1])
    lowered, _, _ = planner.lower_round(gm, inputs[:1], frozenset(), {})
    plan = planner.plan_module(lowered, False, True)
    launch = next(s for s in plan.steps if isinstance(s, Launch))
    k = launch.kernel  # its output said to be complex: a dtype with no Triton type
    complex_out = Buffer(k.out.name, Layout(k.out.layout.shape, k.out.layout.strides, torch.complex64))
    launch.kernel = Kernel(complex_out, k.expr, k.source)
    with pytest.raises(UnsupportedKernels) as e:
        write_kernels(plan)
    assert e.value.failures == [([launch.out], "dtype complex64 has no Triton type")]


def test_plan_fields_are_declared():
    inputs = _inputs()
    plan, _, _ = _stages(_mlp, inputs)
    with pytest.raises(AttributeError):
        plan.steps[0].launcher = "kernel"  # slotted: an undeclared field cannot be attached later
    with pytest.raises(ValueError):
        ExternKernel(plan.steps[0].kernel.out, "matmull", [], {})  # an unknown library call kind

