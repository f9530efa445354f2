"""The finished plan of one generated Triton module, as the writers read it: what `call` does, step by step, in
launch order, every decision already taken (triton/planner.py takes them). triton/kernels.py writes the
kernels of its `Launch` and `MatmulSite` steps; triton/host.py writes `call` from the steps and the written
kernels, deciding nothing.

Steps:
  Allocate     the buffer of a kernel folded into a later one as a side output, allocated where it must exist by
  FallbackCall a torch fallback (an aten call, or one through the `fallbacks` table)
  LibraryCall  a library call (matmul, addmm, addmm_into, sdpa, conv...), its result used as returned,
               checked with `fixed_layout` or added into its first operand (`LibraryResult`)
  Alias        a kernel that needs no launch: a view, or a copy into the layout its input already has
  Launch       a generated kernel: its buffer allocated or written over an input read for the last time
  MatmulSite   a library product and its epilogue kernel, or one Triton matmul with the epilogue fused, chosen per
               call site at run time
  Return       the graph's outputs

A tuple-valued fallback's elements (ir.Item) are read through buffers of their own, `{buf}_{index}`
(`replace_items`); each step lists the elements laid out just before it (`items`). Slotted dataclasses: a field
not declared here cannot be attached later."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ..ir import Buffer, ExternKernel, FallbackKernel, Item, Kernel, Load, LoweredGraph, rebuild


@dataclass(slots=True)
class Allocate:
    buf: Buffer


@dataclass(slots=True)
class FallbackCall:
    kernel: FallbackKernel
    inputs: list              # its operands, tuple elements read through their buffers
    items: list = field(default_factory=list)


class LibraryResult(StrEnum):
    FRESH = "fresh"           # used as returned: laid out by its sizes alone, as probed
    FIXED = "fixed"           # checked per call by `fixed_layout`
    INTO = "into"             # added into its first operand's buffer in place (ExternKind.ADDMM_INTO)


@dataclass(slots=True)
class LibraryCall:
    kernel: ExternKernel      # operands with tuple elements read through their buffers
    result: LibraryResult
    items: list = field(default_factory=list)


@dataclass(slots=True)
class Alias:
    out: str
    expr: object              # the view chain the buffer is
    copy: bool                # a kernel that would only copy (else the graph's own view)
    source: str               # the FX node, for the comment
    items: list = field(default_factory=list)


@dataclass(slots=True)
class Launch:
    out: str                  # the kernel's buffer
    kernel: Kernel            # what to generate: its output is `over` where it writes over an input
    allocate: bool            # `call` allocates the buffer first
    over: str | None          # the input buffer read for the last time here that takes the result
    empty: bool               # no element to compute: allocated, no kernel
    items: list = field(default_factory=list)
    # (side output, input) for side outputs written into the input whose final value they are (planner._donated)
    donated_sides: list = field(default_factory=list)


@dataclass(slots=True)
class MatmulSite:
    out: Buffer               # the epilogue's buffer, allocated first for whichever path runs
    extern: ExternKernel      # the library call as the graph has it
    candidate: object         # triton/matmul.Candidate: what the fused Triton matmul is made of
    a: str                    # names of the product's operands, viewed once for either path
    b: str
    library: LibraryCall      # the library path: the call on `a`, `b`, then the epilogue
    epilogue: Launch | Alias


@dataclass(slots=True)
class Return:
    values: list              # per output, an IR expression or a Python constant
    items: list = field(default_factory=list)


@dataclass(slots=True)
class ModulePlan:
    lowered: LoweredGraph
    steps: list               # the steps above, in order, `Return` last
    layouts: dict             # buffer name -> Layout, every buffer `call` names
    items: dict               # tuple elements' buffer names -> ir.Item
    sizes: dict               # dynamic size symbol -> (input buffer, dim)
    size_names: dict          # dynamic size symbol -> its name in `call`
    hints: dict               # dynamic size symbol -> its value at the example inputs
    names: set                # every name taken in the module: kernels are named apart from these
    shortcuts: bool           # FRAMEJIT_TRITON_HOST_SHORTCUTS: the host's short spellings


@dataclass(slots=True)
class KernelCall:
    name: str                 # the kernel launched (a twin's: the first generated of its kind)
    kernel: object            # codegen.KernelSource of this call site: its parameters and size arguments


@dataclass(slots=True)
class WrittenKernels:
    kernels: list             # KernelSource of each distinct kernel, in the module's order
    calls: dict               # id() of each Launch step -> KernelCall (an indexed store launches twice into one buffer)
    matmuls: dict             # MatmulSite.out name -> the fused matmul's KernelSource


def replace_items(e, items: dict, memo: dict):
    """The tree with each Item (element of a tuple-valued fallback) replaced by a Load of its own buffer, recorded
    in `items`. The name is no other buffer's: lowering names a second fallback of one op `<op>_fallback_1`, which
    `<op>_fallback`'s item 1 once was too (the second cuDNN attention then read the first's logsumexp[1]: wrong
    gradients in every layer below it on the H100)."""
    def swap(n):
        if isinstance(n, Item):
            name = f"{n.buf}_item{n.index}"
            items[name] = n
            return Load(name, n.shape, n.dtype)
        return None
    return rebuild(e, swap, memo)


def fresh_name(base: str, used: set) -> str:
    """base, or base_2, base_3.. : the first name not in `used` (now added to it)."""
    name, i = base, 1
    while name in used:
        i += 1
        name = f"{base}_{i}"
    used.add(name)
    return name
