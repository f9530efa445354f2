"""WRITE kernels: the @triton.jit source of every kernel a finished plan (triton/plan.py) launches, one
KernelWriter run per `Launch` step (triton/codegen.py) and one fused matmul per `MatmulSite` (triton/matmul.py).
Twins, kernels that are the same code over other buffers, are kept once and launched at every call site
(triton/twins.py).

A kernel the code generator rejects (NotImplementedError from codegen / ops / reduce, or a dtype with no Triton
type) does not stop the others: every such kernel is collected and reported together in `UnsupportedKernels`, so
one more lowering round (triton/fallback.py) fixes them all."""
from framejit.graph import symbolic_sizes

from ..ir import Kernel, ScalarLayout, loads_in, ops_in
from . import matmul, twins
from .codegen import KernelSource, KernelWriter
from .dtypes import supported
from .plan import KernelCall, Launch, MatmulSite, ModulePlan, WrittenKernels, fresh_name


class UnsupportedKernels(NotImplementedError):
    """Kernels the code generator cannot express, each as (its buffer names, why): the module is not generated,
    triton/fallback.py runs their nodes in torch or splits their fusion and lowers again."""

    def __init__(self, failures: list):
        super().__init__("; ".join(f"{', '.join(bufs)}: {why}" for bufs, why in failures))
        self.failures = failures


def write_kernels(plan: ModulePlan) -> WrittenKernels:
    """The kernels of the plan, in the module's order; UnsupportedKernels naming every one that cannot be written."""
    with symbolic_sizes.rendering(symbolic_sizes.NameRenderer(plan.size_names.get)):
        return _Writer(plan).write()


class _Writer:
    def __init__(self, plan: ModulePlan):
        self.plan = plan
        self.used = set(plan.names)
        self.kernels, self.failures = [], []
        self.first_of: dict = {}  # twins.twin_key -> the kernel generated first, launched for its twins as well
        self.sites: dict = {}  # kernel name -> how many call sites launch it
        self.calls: dict = {}
        self.matmuls: dict = {}

    def write(self) -> WrittenKernels:
        for step in self.plan.steps:
            if isinstance(step, Launch):
                self._launch(step)
            elif isinstance(step, MatmulSite):
                self._site(step)
        if self.failures:
            raise UnsupportedKernels(self.failures)
        for ks in self.kernels:
            if self.sites.get(ks.name, 1) > 1:
                ks.source = twins.note_call_sites(ks.source, self.sites[ks.name])
        return WrittenKernels(self.kernels, self.calls, self.matmuls)

    def _launch(self, step: Launch):
        if step.empty:
            return
        k, layouts = step.kernel, self.plan.layouts
        try:
            _check_dtypes(k, layouts)
            writer = KernelWriter(k, layouts, "pending")
            writer.plan()
            name = _kernel_name(k, writer.mode, self.used)
            ks = KernelWriter(k, layouts, name).generate()
        except NotImplementedError as e:  # reported with the others once every kernel is written
            self.failures.append(([step.out] + [b.name for b, _ in k.side_outputs], str(e)))
            return
        # a host scalar's stand-in is a float (runtime/triton_graph.py's warm-up passes it as is)
        ks.arg_dtypes = [0.5 if isinstance(layouts[p], ScalarLayout) else layouts[p].dtype for p in ks.params] + \
            [e.value(self.plan.hints) for _, e in ks.sizes]
        first = self.first_of.setdefault(twins.twin_key(ks), ks)
        if first is ks:
            self.kernels.append(ks)
        self.sites[first.name] = self.sites.get(first.name, 0) + 1
        self.calls[id(step)] = KernelCall(first.name, ks)

    def _site(self, step: MatmulSite):
        cand, epilogue, ext = step.candidate, step.candidate.epilogue, step.extern
        name = _kernel_name(epilogue, "matmul", self.used)
        if isinstance(step.epilogue, Launch):
            self._launch(step.epilogue)  # the library path's epilogue kernel
        args = [step.a, step.b] + cand.epilogue_params + [step.out.name]
        self.matmuls[step.out.name] = KernelSource(
            name, matmul.kernel_source(name, cand), args, step.out.name, 0, 0, "matmul", {},
            list(ext.source + epilogue.source), launcher="matmul", mnk=(cand.m, cand.n, cand.k),
            dtype=ext.out.layout.dtype)
        self.kernels.append(self.matmuls[step.out.name])


def _check_dtypes(k: Kernel, layouts: dict) -> None:
    bufs = [layouts[b].dtype for b in loads_in(k.expr)] + [k.out.layout.dtype] + \
        [b.layout.dtype for b, _ in k.side_outputs]
    for dtype in bufs:
        if not supported(dtype):
            raise NotImplementedError(f"dtype {str(dtype).replace('torch.', '')} has no Triton type")


def _kernel_name(kernel, writer_mode: str, used: set) -> str:
    ops = ops_in(kernel.expr)
    if kernel.scatter is not None:  # the atomic half of an indexed store: named for it, then what it computes
        ops = ["scatter_add" if kernel.scatter.add else "scatter_store"] + ops
    prefix = {"pointwise": "pw", "persistent": "red", "looped": "red", "matmul": "mm"}[writer_mode]
    base = "_".join(ops[:4]) or "copy"
    return fresh_name(f"{prefix}_{'fused_' if len(ops) > 1 else ''}{base}", used)
