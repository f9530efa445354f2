"""Per-kernel fallback: when the code generator cannot express one kernel, the FX nodes it came from run as torch
calls in the generated module's `call`, and every other kernel is still generated (torch.compile's inductor
does the same with its extern fallbacks). One unsupported op in a GPT graph costs one torch call, not every fused
kernel of the graph.

Where one kernel can fail, and what happens:
  * lowering (lowering.py, shared with NumPy): an op with no lowering, or a value of a dtype the kernels have no
    type for (complex, uint16, float8...), is a FallbackKernel from the start;
  * split reductions (triton/split.py): a long reduction that cannot be split (a length with no power-of-two
    factor) would run serially in one program;
  * code generation (triton/codegen.py, triton/ops.py, triton/reduce.py: NotImplementedError): an op without a
    rule (integer pow by a tensor), or a fused kernel its loop forms cannot walk (a reduction read through a
    permute in its own epilogue); triton/kernels.py reports every such kernel at once (UnsupportedKernels).

A failed kernel that fused several nodes is split before anything is given up: its nodes are lowered again, each
in a kernel of its own (the fusion plan's `keep`). If the fusion was the problem, every node now generates and
nothing runs in torch. Otherwise the nodes that still fail alone are the culprits: they run in torch, and the
others fuse again around them (a torch call in the middle of a chain leaves a fused kernel on each side). Each
round lowers the whole graph again: milliseconds, next to compiling kernels, and paid only by graphs with a gap.
The rounds run in triton/backend.py; this module holds their policy (`forced_by_env`, `respond`).

What stays a graph-wide fallback (triton/backend.py returns None, the graph runs as captured): values the module
cannot hold (non-tensor inputs or results), a host-side failure (an extern operand that is not a view), a graph
whose kernels all fell back (torch's own kernels for the whole graph are then as good), Triton not importable.

FRAMEJIT_TRITON_FALLBACK=aten.gelu,aten.pow.Tensor_Scalar (op packets or overloads, comma-separated) sends the
named ops to torch: a way to bisect a suspected miscompile without giving up the rest of the graph."""
import logging

import torch

from framejit.graph.index_checks import CHECK_INDEX

from ..config import SWITCHES, config
from ..lowering import kind_of
from .fusion import FUSIBLE, ROOTS
from .spelling import op_name

log = logging.getLogger("jit.inductor.triton")
FORCE_ENV = SWITCHES["triton_fallback"].variable
MAX_ROUNDS = 8  # a culprit costs two rounds after the first; more means something is wrong: the graph as is


# ops the Triton backend runs in torch, whatever their lowering, when its kernels run in Triton's interpreter (CPU
# tensors): an index check's exception must be eager's Python exception there, and the interpreter drops every
# tl.device_assert. On CUDA the check is part of the kernel reading the index (ops.py: a device-side assert, as
# eager's own index kernels raise; graph/index_checks.py)
RUN_IN_TORCH_ON_CPU = {CHECK_INDEX: "index bounds are checked by torch on the CPU (eager's exception)"}


def forced_by_env(graph: torch.fx.Graph, device: torch.device) -> dict:
    """{node: reason} for the call nodes FRAMEJIT_TRITON_FALLBACK names, and those of RUN_IN_TORCH_ON_CPU where
    `device` (the graph's) is not a GPU."""
    names = set(config.triton_fallback)
    found = {n: why for target, why in (RUN_IN_TORCH_ON_CPU.items() if device.type != "cuda" else ())
             for n in graph.find_nodes(op="call_function", target=target)}
    for node in graph.nodes if names else ():
        if node.op != "call_function":
            continue
        name = op_name(node.target)
        packet = name.rsplit(".", 1)[0] if isinstance(node.target, torch._ops.OpOverload) else name
        if name in names or packet in names:
            found[node] = f"{FORCE_ENV} names it"
    return found


def respond(failures: list, forced: dict, groups: list, keep: frozenset) -> list:
    """Split each failed fused kernel (a new group), or send the nodes of a kernel that failed alone to torch
    (`forced` grows). Returns the groups kept one node per kernel for the next round: a group whose culprit was
    found fuses again around it."""
    groups, culprits = list(groups), set()
    for kernels, why in failures:
        nodes = list(dict.fromkeys(n for k in kernels for n in k.nodes if kind_of(n) in FUSIBLE + ROOTS))
        if not nodes:
            raise NotImplementedError(why)
        if len(nodes) > 1 and not set(nodes) <= keep:
            groups.append(frozenset(nodes))
            log.info("Triton: kernel of %s cannot be generated (%s): lowered again one node per kernel",
                     ", ".join(n.name for n in nodes), why)
            continue
        for n in nodes:
            forced[n] = why
            culprits.add(n)
            log.info("Triton: %s (node %s) runs in torch: %s", op_name(n.target), n.name, why)
    return [g for g in groups if not g & culprits]
