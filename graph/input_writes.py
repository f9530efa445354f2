"""Writes to a graph's inputs made functional: the graph returns each written input's final value as an extra
output, and the caller copies it into the input after the call (`write_back`).

A training step of a CNN writes to its inputs: BatchNorm updates its running statistics in place and adds 1 to
`num_batches_tracked`. A graph that writes to an input cannot be differentiated by our joint trace nor fused by a
backend (both reason about values, not memory), so such a graph ran in torch as captured: every torchvision model
trained at eager speed. Made functional, the graph is pure and the write happens once, after it, where nothing
can observe the difference (the graph runs as one call: no Python code sees the input in between).

Rewritten, per written input (a placeholder):
  * an in-place op on it with an out-of-place twin (`x.add_(1)`, `x += y`, `x.mul_(m)`, a torch function's
    `out=x`): the twin (cast to x's dtype where it computes in a wider one), and later readers of x read its
    result;
  * `F.batch_norm(x, running_mean, running_var, w, b, training=True, momentum, eps)` with placeholders for the
    statistics: the normalization without statistics (the batch's own, as training uses), and the updated
    statistics computed beside it from the detached input: mean and unbiased variance over every dim but 1,
    `stat * (1 - momentum) + batch * momentum`, in float32 for half inputs (as torch's kernels accumulate).
Nothing is rewritten (None: the graph stays as it is) where eager's semantics would not survive: the written
input requires grad, or the value written into it would (eager's input would join autograd's graph: both stay
torch's), the input shares memory with another input, has a view in the graph (the view would miss the write),
or is returned (the caller must get the input itself); or where any other node writes to an input (`copy_`,
`index_put_`)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.fx as fx

from framejit.graph.effects import is_impure, is_random, may_raise_on_values
from framejit.graph.grad_mode import computes_without_grad
from framejit.graph.functionalize import out_of_place, place_twin, storage_id, twin_value
from framejit.graph.functionalize import written as written_tensor
from framejit.graph.shape_prop import eval_node, meta_tensor, propagate
from framejit.graph.size_variants import copy_module
from framejit.graph.view_ops import alias_roots

_F = torch.nn.functional

# gm.meta key of a functional graph made here: the input index of each of its last outputs, whose values are that
# input's final value (a backend may compute them into the input itself: `write_back` then copies nothing)
WRITTEN_INPUTS = "written_inputs"


@dataclass
class InputWrites:
    gm: fx.GraphModule   # pure: the original outputs (a tuple), then the final value of each written input
    written: tuple       # input index of each extra output
    num_outputs: int     # outputs before the extra ones
    rerun_draws: bool = False  # the graph may raise on its values and draws random numbers (see `writing_call`)


def writing_call(compiled, gm: fx.GraphModule, writes: InputWrites):
    """`compiled` (writes.gm's code) with the written inputs taking their values after each call. Where the call
    raises, nothing was written back, but eager would have written the inputs written before the failing op (an
    integer modulo by zero after `x.add_(1)`): gm, the graph as captured, then runs in torch from the same
    generator state, writing them and raising eager's error (or returning eager's values, where only the compiled
    code failed). gm is not changed by the backend, which compiles a copy."""
    def call(*args):
        state = _generator_state(args) if writes.rerun_draws else None
        try:
            results = compiled(*args)
        except Exception:
            if state is not None:
                torch.set_rng_state(state[0])
                if state[1] is not None:
                    torch.cuda.set_rng_state(state[1])
            return tuple(gm(*args))
        return write_back(results, args, writes)
    return call


def _generator_state(args) -> tuple:
    cuda = any(isinstance(a, torch.Tensor) and a.is_cuda for a in args)
    return torch.get_rng_state(), torch.cuda.get_rng_state() if cuda else None


def write_back(results, inputs, writes: InputWrites) -> tuple:
    """The graph's own outputs; the written inputs take their final values (outside autograd, as eager's
    in-place buffer updates under a module's forward leave no history on a buffer that needs no grad)."""
    results = tuple(results)
    with torch.no_grad():
        for i, value in zip(writes.written, results[writes.num_outputs:]):
            if value is not inputs[i]:  # else computed into the input itself (WRITTEN_INPUTS)
                inputs[i].copy_(value)
    return results[:writes.num_outputs]


def functionalize_input_writes(gm: fx.GraphModule, example_inputs: list) -> InputWrites | None:
    """gm with its input writes made functional (see the module's doc); None where there are none, or where one
    cannot be. gm's output must be a tuple."""
    placeholders = list(gm.graph.find_nodes(op="placeholder"))
    if len(placeholders) != len(example_inputs) or not any(_writes_input(n, set(placeholders))
                                                              for n in gm.graph.nodes):
        return None
    out = copy_module(gm)
    graph = out.graph
    inputs = {p: i for i, p in enumerate(graph.find_nodes(op="placeholder"))}
    if any("val" not in n.meta for n in graph.nodes if n.op != "output"):
        propagate(out, example_inputs)  # a graph traced without values (symbolic_trace)
    # an optimizer's step writes parameters that require grad, with grad off for all it computes: as in eager,
    # nothing it writes joins autograd's graph
    no_grad = computes_without_grad(gm, torch.is_grad_enabled())
    tracked = set() if no_grad else _grad_tracked(graph, example_inputs)
    current: dict = {}  # written placeholder -> the node holding its value now
    results: set = set()  # every value a write left (an in-place op's result is the written tensor itself)
    for node in list(graph.nodes):
        holders = {**{p: p for p in inputs}, **{v: p for p, v in current.items()}}  # a node -> its input
        if node.op in ("placeholder", "output") or not _writes_input(node, set(holders)):
            continue
        if _running_stats_update(node):
            targets = [_argument(node, 1, "running_mean"), _argument(node, 2, "running_var")]
        else:
            targets = [written_tensor(node)]
        if not all(t in holders and _writable(t, example_inputs[inputs[holders[t]]], example_inputs, no_grad)
                   for t in targets):
            return None
        if not _running_stats_update(node) and any(a in tracked for a in node.all_input_nodes):
            return None  # eager's written input would join autograd's graph (requires_grad, a grad_fn)
        targets = [holders[t] for t in targets]
        new = _functional_batch_norm(out, node, holders) if _running_stats_update(node) else \
            _functional_write(node, targets[0])
        if new is None:
            return None
        for target, value in new.items():
            _redirect(graph, current.get(target, target), value)
            current[target] = value
            results.add(value)
    result = next(n for n in graph.nodes if n.op == "output")
    outputs = result.args[0]
    if not isinstance(outputs, (tuple, list)) or any(r in current or r in results for o in outputs
                                                      for r in alias_roots(o)):
        return None  # a written input returned, or a view of it (`x *= x; return x[..., :1]`: fuzz seed 612904):
        #              the caller must get the tensor itself, or a view of it
    if _writes_left_to_inputs(graph, inputs):
        return None  # a write through a view of an input (`x.narrow(0, 0, 2).scatter_add_(...)`, fuzz seed
        #              789688) stays: the graph is not pure, and rerunning it after an error would write twice
    written = tuple(inputs[p] for p in current)
    result.args = (tuple(outputs) + tuple(current.values()),)
    graph.lint()
    out.recompile()
    nodes = gm.graph.nodes
    may_raise = any(may_raise_on_values(n) for n in nodes)
    if not may_raise:
        # a backend may write each final value straight into its input (no copy after the call): nothing can then
        # need the old value, as the rerun after an error would
        out.meta[WRITTEN_INPUTS] = written
    return InputWrites(out, written, len(outputs), may_raise and any(is_random(n) for n in nodes))


def _writes_left_to_inputs(graph: fx.Graph, inputs: dict) -> bool:
    """Some write left in the graph lands in an input's memory (through a view of it, `out=` a slice of it)."""
    storages = {storage_id(v) for p in inputs if (v := meta_tensor(p)) is not None}
    for node in graph.nodes:
        if node.op in ("call_function", "call_method") and is_impure(node):
            target = written_tensor(node)
            value = meta_tensor(target) if isinstance(target, fx.Node) else None
            if value is not None and storage_id(value) in storages:
                return True
    return False


def _grad_tracked(graph: fx.Graph, example_inputs: list) -> set:
    """Nodes whose values autograd may track: reachable from an input that requires grad, other than through
    `detach` (grad mode switched inside the graph is ignored: more nodes, never fewer)."""
    if not torch.is_grad_enabled():
        return set()
    tracked = {p for p, x in zip(graph.find_nodes(op="placeholder"), example_inputs)
               if isinstance(x, torch.Tensor) and x.requires_grad}
    for node in graph.nodes:
        if node.op in ("call_function", "call_method") and node.target != "detach" and \
                node.target is not torch.detach and any(a in tracked for a in node.all_input_nodes):
            tracked.add(node)
    return tracked


def _writes_input(node: fx.Node, placeholders: set) -> bool:
    """The node may write to a tensor and reads a placeholder directly (other writes are left to callers)."""
    if node.op not in ("call_function", "call_method") or not is_impure(node):
        return False
    read = set()
    fx.node.map_arg((node.args, node.kwargs), read.add)
    return bool(read & placeholders)


def _writable(p: fx.Node, value, inputs: list, no_grad: bool = False) -> bool:
    """A written input (`p`: its placeholder, or the node holding its value since an earlier write) whose write
    can move after the graph: no grad (or written with grad off: `no_grad`), its memory its own, and no view of it
    in the graph (a view read after the write would see it in eager)."""
    if not isinstance(value, torch.Tensor) or value.requires_grad and not no_grad or \
            torch._debug_has_internal_overlap(value) != 0:
        return False  # an expanded input: eager writes each memory location from several elements, `copy_` raises
    if value.untyped_storage().nbytes() and any(
            isinstance(x, torch.Tensor) and x is not value and x.device == value.device
            and x.untyped_storage().data_ptr() == value.untyped_storage().data_ptr() for x in inputs):
        return False
    val = meta_tensor(p)
    if val is None:
        return False
    storage = storage_id(val)
    for user in p.users:
        if user.op == "output" or is_impure(user) and written_tensor(user) is p:
            continue  # the output is checked by the caller; a write to p itself is rewritten
        uv = user.meta.get("val")
        if any(isinstance(t, torch.Tensor) and storage_id(t) == storage
               for t in (uv if isinstance(uv, (tuple, list)) else [uv])):
            return False
    return True


def _functional_write(node: fx.Node, placeholder: fx.Node) -> dict | None:
    """The out-of-place twin of in-place `node` put in its place (its own result's readers read the twin):
    {placeholder: the twin}."""
    twin = out_of_place(node, outs=True)
    if twin is None:
        return None
    value = twin_value(node, *twin)
    if value is None:
        return None
    new = place_twin(node, twin, value, f"{written_tensor(node).name}_new")
    node.replace_all_uses_with(new)
    node.graph.erase_node(node)
    return {placeholder: new}


def _running_stats_update(node: fx.Node) -> bool:
    if node.target is not _F.batch_norm:
        return False
    training = node.args[5] if len(node.args) > 5 else node.kwargs.get("training", False)
    return training is True and _argument(node, 1, "running_mean") is not None


def _argument(node: fx.Node, pos: int, key: str, default=None):
    return node.args[pos] if len(node.args) > pos else node.kwargs.get(key, default)


def _functional_batch_norm(gm: fx.GraphModule, node: fx.Node, holders: dict) -> dict | None:
    """F.batch_norm in training with its statistics passed in: the same call without them, and the updated
    statistics as new nodes ({running_mean placeholder: node, running_var placeholder: node})."""
    names = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
    defaults = (None, None, None, None, None, False, 0.1, 1e-5)
    a = {k: _argument(node, i, k, d) for i, (k, d) in enumerate(zip(names, defaults))}
    x, mean, var, momentum = a["input"], a["running_mean"], a["running_var"], a["momentum"]
    xv = meta_tensor(x)
    if xv is None or xv.dim() < 2 or not isinstance(momentum, (int, float)) or isinstance(momentum, bool):
        return None
    if any(meta_tensor(s) is None or meta_tensor(s).shape != (xv.shape[1],) for s in (mean, var)):
        return None
    graph = gm.graph

    def add(target, *args, kind="call_function", **kwargs):
        n = graph.create_node(kind, target, args, kwargs)
        n.meta["val"] = eval_node(gm, n)
        return n

    with graph.inserting_before(node):
        normalized = add(_F.batch_norm, x, None, None, a["weight"], a["bias"], True, momentum, a["eps"])
        data = add("detach", x, kind="call_method")
        if xv.dtype in (torch.float16, torch.bfloat16):
            data = add("float", data, kind="call_method")
        dims = [0] + list(range(2, xv.dim()))
        batch_var, batch_mean = (add(__import__("operator").getitem, pair, i)
                                 for pair in [add(torch.var_mean, data, dims, correction=1)] for i in (0, 1))
        updated = {}
        for stat, batch in ((mean, batch_mean), (var, batch_var)):
            kept = add("mul", stat, 1.0 - momentum, kind="call_method")
            moved = add("mul", batch, momentum, kind="call_method")
            total = add("add", kept, moved, kind="call_method")
            if meta_tensor(stat).dtype != meta_tensor(total).dtype:
                total = add("to", total, meta_tensor(stat).dtype, kind="call_method")
            updated[holders[stat]] = total
    node.replace_all_uses_with(normalized)
    graph.erase_node(node)
    return updated


def _redirect(graph: fx.Graph, old: fx.Node, new: fx.Node) -> None:
    """Readers of the input's value `old` that come after the write (now `new`, in the write's place) read `new`.
    The output keeps `old`: a returned written input is refused by the caller."""
    order = {n: i for i, n in enumerate(graph.nodes)}
    for user in list(old.users):
        if user.op != "output" and order[user] > order[new]:
            user.replace_input_with(old, new)
