"""Kernels that store more than one buffer: a value another kernel already has in registers is stored by that
kernel as a second output ("side output") instead of by a kernel of its own that reads its inputs again.

Two directions, over a Triton module's plan (kernels in launch order; an `("allocate", kernel)` entry allocates
the buffer of a kernel folded into another, at the place the buffer must exist by):
- `merge_side_outputs`: a pointwise kernel folded into its first reader (a residual add feeding a layer_norm).
- `hoist`: a pointwise kernel computed by an earlier kernel over the same elements that already reads (or
  computes) its inputs (triton/residual.py's addend of a product: `h + b` by the layer_norm that reads h).
- `merge_sibling_reductions`: two reductions of one input into outputs of one shape (torch.max with indices
  lowers to amax then argmax; a cross entropy's row max and its sum of exponentials, which reads the max) as
  one kernel storing both, the input read from memory once.
`drop_dead_side_outputs` removes stores nobody reads any more, once folding has inlined their readers.
Every fold is kept only if the combined kernel still generates (KernelWriter), so a fold never sends a kernel
to torch."""
import math

from ..ir import (Kernel, Load, Op, Reduce, View, kernel_loads, loads_in, readers_of, rebuild, reduces_in,
                  side_outputs, walk)
from .codegen import KernelWriter


def scans_in(e) -> bool:
    """Whether an expression holds a scan (cumsum, cumprod: triton/scan.py): like a reduction, its value at one
    element depends on others, so it cannot be computed again under another index map (a consumer reading
    `c[0]` of `c = x.cumsum(0)` computed the scan of x[0] alone)."""
    return any(isinstance(n, Op) and n.name in ("cumsum", "cumprod") for n in walk(e))


def _inline(e, values: dict, memo):
    """e with every Load of a buffer in `values` replaced by that buffer's expression (shared, so it is computed
    once)."""
    return rebuild(e, lambda n: values.get(n.buf) if isinstance(n, Load) else None, memo)


class Probes:
    """Results of generating kernels to see whether they can be (each a KernelWriter run), kept by the identity
    of the kernels they were made from. triton/residual.py tries many plans made of the same kernel objects; with
    one Probes for all of them, each fold and each shape walk is generated once rather than once per plan."""

    def __init__(self):
        self._seen: dict = {}

    def get(self, kernels: tuple, compute):
        key = tuple(map(id, kernels))
        hit = self._seen.get(key)
        if hit is None:  # the kernels are kept with the result: their ids stay theirs
            hit = self._seen[key] = (kernels, compute())
        return hit[1]


def walked_shape(k, layouts: dict):
    """The shape a generated kernel visits every element of once (its output's; a normalization's input's), or
    None (a plain reduction, a view, a kernel the writer cannot plan)."""
    if not isinstance(k, Kernel) or k.is_view:
        return None
    probe = KernelWriter(k, layouts, "probe")
    try:
        probe.plan()
    except (NotImplementedError, KeyError):  # KeyError: reads a fallback's tuple item, laid out later
        return None
    if probe.case == "full":
        return tuple(probe.signature[0])
    return tuple(k.out.layout.shape) if probe.case == "pointwise" else None


def _generates(k, layouts: dict) -> bool:
    try:
        KernelWriter(k, layouts, "probe").generate()
    except (NotImplementedError, KeyError):
        return False
    return True


def merge_sibling_reductions(kernels: list, layouts: dict, probes: Probes | None = None) -> list:
    """Each reduction kernel folded as a side output into the nearest earlier one that reads a buffer it reads
    into an output of the same shape, where everything else it reads exists by then (`("allocate", later)`
    allocates its buffer there): max(x, dim) lowers to amax and argmax, x.mean((0, 2, 3)) and x.var((0, 2, 3))
    to a kernel of chunk sums and one of chunk deviations, which then load x once. A later reduction may read
    the earlier one's result (the sum of exp(x - max)): the merged kernel computes it in registers. Kept only where the pair generates as one
    kernel (one reduction signature)."""
    probes = probes or Probes()
    out, j = list(kernels), 1
    while j < len(out):
        b, i = out[j], _sibling_before(out, j, layouts)
        merged = None if i is None else probes.get((out[i], b), lambda: _sibling_merged(out[i], b, layouts))
        if merged is not None:
            del out[j]
            out[i:i + 1] = [("allocate", b), merged]
        j += 1
    return out


def _plain_reduction(k, siblings: bool = False) -> bool:
    """A kernel storing only a reduction's result (not a normalization, whose output has its input's size); with
    `siblings`, also one storing reductions merged into it already (each its output's shape)."""
    if not isinstance(k, Kernel) or k.is_view or k.scatter is not None or any(s == 0 for s in k.out.layout.shape):
        return False
    if k.side_outputs and not (siblings and all(tuple(buf.layout.shape) == tuple(k.out.layout.shape) and
                                                reduces_in(e) for buf, e in k.side_outputs)):
        return False
    reduces = reduces_in(k.expr)
    return bool(reduces) and math.prod(k.out.layout.shape) < math.prod(reduces[0].arg.shape)


def _sibling_before(plan: list, j: int, layouts: dict):
    """The index of the entry plan[j] can be folded into (see merge_sibling_reductions), or None. Only a shared
    read of a buffer as large as the reduction's input counts (two reductions that share a small weight gain
    nothing from one kernel)."""
    b = plan[j]
    if not _plain_reduction(b):
        return None
    size = math.prod(reduces_in(b.expr)[0].arg.shape)
    reads = {buf for buf in kernel_loads(b) if buf in layouts and math.prod(layouts[buf].shape) >= size}
    for i in range(j - 1, -1, -1):
        a = plan[i]
        made = {k.out.name for k in [a] if not isinstance(k, tuple)} | {buf.name for buf, _ in side_outputs(a)}
        if isinstance(a, tuple):
            made = {a[1].out.name}
        if _plain_reduction(a, siblings=True) and tuple(a.out.layout.shape) == tuple(b.out.layout.shape) and \
                reads & set(kernel_loads(a)):
            return i  # b may read a's results: merged, b computes them from a's reductions in registers
        if made & set(kernel_loads(b)):
            return None  # b reads what this entry makes: it cannot run before it
    return None


def _sibling_merged(a: Kernel, b: Kernel, layouts: dict):
    """a storing b's value too, b's reads of the input and reductions shared with a's where they are the same
    trees (the same Load, View and Reduce nodes: the code generator loads and reduces each once), or None where
    the two do not generate as one kernel."""
    reads, made = {}, {a.out.name: a.expr, **{buf.name: e for buf, e in a.side_outputs}}
    for e in made.values():
        for n in _nodes(e):
            if isinstance(n, (Load, View, Reduce)):
                reads.setdefault(repr(n), n)
    def share(n):
        if isinstance(n, Load) and n.buf in made:
            return made[n.buf]  # a's result, which b reads (a softmax's max under its sum of exponentials)
        return reads.get(repr(n)) if isinstance(n, (Load, View, Reduce)) else None
    shared = rebuild(b.expr, share)
    merged = Kernel(a.out, a.expr, a.source + b.source, False, list(a.side_outputs) + [(b.out, shared)])
    return merged if _generates(merged, layouts) else None


def _nodes(e):
    yield e
    for c in e.children():
        yield from _nodes(c)


def merge_side_outputs(kernels: list, layouts: dict, probes: Probes | None = None) -> list:
    """A pointwise kernel whose buffer's first reader is a later generated kernel walking exactly its shape is
    folded into that kernel as a second output: rmsnorm(x + r) returning x + r, a residual add feeding the next
    layer_norm. The consumer computes the value once in registers and stores it too: one read of x and r instead
    of a write and a read back. Readers after the first (the next residual add, a graph output) read the stored
    buffer, which the merged kernel has written by then (torch.compile fuses a GPT's residual adds the same way).
    Only where the consumer walks exactly the producer's shape, so each element is stored once."""
    probes = probes or Probes()
    kernels = merge_sibling_reductions(kernels, layouts, probes)
    readers = readers_of(kernels)
    out, dropped = list(kernels), set()
    for i in range(len(out)):
        a = out[i]  # a kernel merged into earlier (it has side outputs) is not folded on
        if not isinstance(a, Kernel) or a.is_view or reduces_in(a.expr) or scans_in(a.expr) or side_outputs(a) or \
                any(s == 0 for s in a.out.layout.shape):
            continue
        j = min(readers.get(a.out.name, ()), default=i)
        if j <= i:
            continue
        merged = probes.get((a, out[j]), lambda: _merged(a, out[j], layouts))
        if merged is None:
            continue
        out[j] = merged
        dropped.add(i)
        for buf in loads_in(a.expr):  # a's inputs are now read by the merged kernel
            readers[buf] = [j if r == i else r for r in readers.get(buf, [])]
    return [k if i not in dropped else ("allocate", k) for i, k in enumerate(out)]


def _merged(a: Kernel, b: Kernel, layouts: dict):
    """b storing a as a side output, or None where b does not walk a's shape or the two do not generate as one
    (both generate alone; merged, a failure would take both to torch)."""
    if walked_shape(b, layouts) != tuple(a.out.layout.shape):
        return None
    merged = Kernel(b.out, _inline(b.expr, {a.out.name: a.expr}, {}), a.source + b.source, b.is_view,
                    b.side_outputs + [(a.out, a.expr)])
    return merged if _generates(merged, layouts) else None


def _hoisted(k: Kernel, c: Kernel, computed: dict, layouts: dict):
    """k storing c too, computed from k's values, or None where k does not walk c's shape or does not generate."""
    if walked_shape(k, layouts) != tuple(c.out.layout.shape):
        return None
    merged = Kernel(k.out, k.expr, k.source + c.source, k.is_view,
                    k.side_outputs + [(c.out, _inline(c.expr, computed, {}))])
    return merged if _generates(merged, layouts) else None


def hoist(plan: list, j: int, layouts: dict, probes: Probes | None = None):
    """The plan with the pointwise kernel plan[j] stored by an earlier generated kernel walking the same elements,
    or None. That kernel must already read, or compute, every buffer of plan[j]'s size that plan[j] reads (so
    the fold adds one store and no read), and everything else plan[j] reads must exist before it runs; buffers it
    computes are inlined. The latest such kernel is taken. Its buffer is allocated just before that kernel."""
    probes = probes or Probes()
    c = plan[j]
    need = loads_in(c.expr)
    produced = {}  # buffer -> index of the plan entry that stores it
    for i, k in enumerate(plan):
        if isinstance(k, tuple):
            continue
        produced[k.out.name] = i
        for buf, _ in side_outputs(k):
            produced[buf.name] = i
    size = c.out.layout.nbytes
    big = [b for b in need if b in layouts and layouts[b].nbytes >= size]
    for p in range(j - 1, -1, -1):
        k = plan[p]
        if not isinstance(k, Kernel) or k.is_view or not big:
            continue
        computed = {k.out.name: k.expr} | {b.name: e for b, e in side_outputs(k)}
        if any(scans_in(computed[b]) for b in need if b in computed):
            continue  # a scan's value is only its own kernel's, at its own coordinates
        read = set(kernel_loads(k))
        if any(b not in computed and b not in read for b in big) or \
                any(b not in computed and produced.get(b, -1) >= p for b in need):
            continue
        merged = probes.get((k, c), lambda: _hoisted(k, c, computed, layouts))
        if merged is None:
            continue
        return plan[:p] + [("allocate", c), merged] + plan[p + 1:j] + plan[j + 1:]
    return None


def drop_dead_side_outputs(plan: list, keep: set) -> list:
    """Side outputs no entry reads and the graph does not return, removed with their allocations: a value
    stored only for a reader that folding has since computed from registers."""
    readers = readers_of(plan)
    dead = set()
    for k in plan:
        for buf, _ in side_outputs(k):
            if buf.name not in readers and buf.name not in keep:
                dead.add(buf.name)
    if not dead:
        return plan
    out = []
    for k in plan:
        if isinstance(k, tuple):
            if k[1].out.name not in dead:
                out.append(k)
            continue
        if isinstance(k, Kernel) and any(buf.name in dead for buf, _ in side_outputs(k)):
            k = Kernel(k.out, k.expr, k.source, k.is_view,
                       [(buf, e) for buf, e in k.side_outputs if buf.name not in dead])
        out.append(k)
    return out
