"""What every backend does to a captured graph before lowering it: whether it must stay in torch at all
(`needs_torch_runtime`: autograd, grad-mode switches, inputs written in place), a copy of the graph as captured
for when the backend declines it (`as_captured`), the graph optimizer (`optimize`: graph/passes.py, to core
ops), and after compiling, outputs the optimizer made aliases copied back into new tensors as eager's are
(`copy_aliased_outputs`)."""
import torch
import torch.fx

from framejit.graph.functionalize import functionalize_intermediates
from framejit.graph.grad_mode import computes_without_grad, detach_no_grad_blocks


def as_captured(gm) -> "callable":
    """A callable running gm's graph as it was captured. The optimizer rewrites gm in place into core ops
    (relu -> lt, full, where), so a graph a backend then declines must not run those: eager's own kernels are
    faster. Only the Graph is copied now; the module is built if a backend declines."""
    graph = torch.fx.Graph()
    graph.output(graph.graph_copy(gm.graph, {}))
    return lambda: torch.fx.GraphModule(gm, graph)


def optimize(gm, example_inputs):
    """Run the graph optimizer (graph/passes.py) when it is available; it normalizes to the core aten op set."""
    try:
        from framejit.graph import passes
    except ImportError:
        return gm
    optimize = getattr(passes, "optimize", None)
    if optimize is None:
        return gm
    result = optimize(gm, example_inputs)
    return result if isinstance(result, torch.fx.GraphModule) else gm


def wants_training(gm: torch.fx.GraphModule, example_inputs: list) -> bool:
    """Grad mode is on and some input requires grad: the outputs must carry autograd history (training.py), unless
    every op runs with grad switched off inside the graph (graph/grad_mode.py: an optimizer's step)."""
    return torch.is_grad_enabled() and any(isinstance(x, torch.Tensor) and x.requires_grad for x in example_inputs) \
        and not computes_without_grad(gm, True)


_INFERENCE_SWITCHES = (torch.autograd.grad_mode._enter_inference_mode, torch.autograd.grad_mode._exit_inference_mode)


def needs_torch_runtime(gm: torch.fx.GraphModule, example_inputs: list) -> str | None:
    """Why a graph must run in torch rather than NumPy, if it must: NumPy code records no autograd history and
    writes results into new arrays, so graphs that need gradients or mutate their inputs stay in torch."""
    from framejit.graph.effects import has_mutation
    needs_grad = any(isinstance(x, torch.Tensor) and x.requires_grad for x in example_inputs)
    switches_grad = any(n.target is torch._C._set_grad_enabled for n in gm.graph.nodes)
    if needs_grad and (torch.is_grad_enabled() or switches_grad) and \
            not computes_without_grad(gm, torch.is_grad_enabled()):
        return "inputs require grad (autograd needs torch ops)"
    if switches_grad and detach_no_grad_blocks(gm, torch.is_grad_enabled()):
        switches_grad = False  # `with torch.no_grad():` blocks (rotary embeddings): nothing here tracks grad
    if switches_grad and torch.is_grad_enabled():
        return "grad mode changes inside the graph"
    if any(n.target in _INFERENCE_SWITCHES for n in gm.graph.nodes):
        return "inference mode changes inside the graph"  # its tensors must be inference tensors, made by torch
    if has_mutation(gm.graph) and (functionalize_intermediates(gm) == 0 or has_mutation(gm.graph)):
        # writes into the graph's own intermediates (ReLU(inplace=True), out += x) were made out of place
        # first; what is left writes to inputs or to aliased tensors
        return "the graph mutates a tensor in place"
    return None


def _over(storage, like: torch.Tensor) -> torch.Tensor:
    """A tensor over `storage` at `like`'s offset, sizes and strides."""
    return torch.empty((0,), dtype=like.dtype, device=like.device).set_(storage, like.storage_offset(), like.shape,
                                                                        like.stride())


def _same_walk(val, strides) -> bool:
    """Strides that walk `val`'s elements as val's own do (they may differ on size-1 dims), or none recorded."""
    return isinstance(val, torch.Tensor) and (strides is None or len(strides) == val.dim() and all(
        n == 1 or a == b for n, a, b in zip(val.shape, val.stride(), strides)))


def _view_of_output(a: torch.Tensor, b: torch.Tensor, ea, eb) -> torch.Tensor:
    """a as the view of b eager returns it as (EagerOutput ea of a, eb of b), or a itself where b is not laid out
    as eager's, the view would leave b's memory, or it would show other values than a's."""
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or a.dtype != b.dtype or \
            a is not b and a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr() or \
            None in (ea.offset, eb.offset) or ea.strides is None or tuple(b.stride()) != eb.strides:
        return a  # (a is b: one tensor where eager returns two over one memory, a new view of it is wanted)
    offset = b.storage_offset() - eb.offset + ea.offset
    last = offset + sum((n - 1) * s for n, s in zip(a.shape, ea.strides)) if a.numel() else offset
    if offset < 0 or last >= b.untyped_storage().nbytes() // max(b.element_size(), 1):
        return a
    view = b.as_strided(a.shape, ea.strides, offset)
    return view if torch.equal(view, a) else a


def copy_aliased_outputs(compiled, gm: torch.fx.GraphModule):
    """Outputs the optimizer reduced to an input or to a view of another output (x * 1 -> x; `y.expand(1, n) * 1`
    -> a view of y), or merged with an earlier output (CSE of `x / x` computed twice), must still be new tensors,
    as in eager: the optimized graph's aliasing (its meta values) against eager's (EagerOutput)."""
    from framejit.graph.normalize import EAGER_OUTPUTS, eager_outputs
    from framejit.graph.view_ops import alias_roots
    out = next(n for n in gm.graph.nodes if n.op == "output")
    single = not isinstance(out.args[0], (tuple, list))
    results = (out.args[0],) if single else out.args[0]
    eager = gm.meta.get(EAGER_OUTPUTS)
    now = eager_outputs(gm) if eager is not None else ()
    # which outputs may share memory now, from the ops (meta values of a rewritten node's readers can be stale)
    roots = [set(alias_roots(r)) if isinstance(r, torch.fx.Node) else set() for r in results]
    aliased = [i for i, r in enumerate(results) if isinstance(r, torch.fx.Node) and (
        r.op == "placeholder" or eager is not None and i < len(eager) and eager[i].alias is None and (
            any(results[j] is r and j not in eager[i].shares for j in range(i)) or
            any(roots[i] & roots[j] and j not in eager[i].shares for j in range(i)) or
            i < len(now) and (now[i].alias not in (None, "unknown") or
                              any(j not in eager[i].shares for j in now[i].shares))))]
    # outputs eager returns as views of an input (`x.detach()`, `x.transpose(-1, -1)`): where the module hands back
    # the input itself (an identity view, or the optimizer reduced the output to the input at its strides), a new
    # view of it, so writes through the result reach the input as in eager and `is` tells them apart (Triton
    # generator seeds 92, 110), not the same object and not a copy
    inputs = list(gm.graph.find_nodes(op="placeholder"))
    viewed = {i: (e.alias[1], e.strides) for i, e in enumerate(eager or ()) if i < len(results) and
              isinstance(e.alias, tuple) and e.alias[0] == "input"}
    aliased = [i for i in aliased if not (
        i in viewed and results[i].op == "placeholder" and inputs.index(results[i]) == viewed[i][0] and
        _same_walk(results[i].meta.get("val"), viewed[i][1]))]
    # outputs eager returns as views of an earlier output (`t.reshape(n, -1)` beside t) that the module computed
    # apart: rebuilt as that view where the earlier one is laid out as eager's and the view shows the same values
    linked = {i: e.shares[0] for i, e in enumerate(eager or ()) if i < len(results) and e.alias is None and
              e.shares and not e.same and i not in aliased}
    if not aliased and not viewed and not linked:
        return compiled

    def fresh_views(outputs: list, args: tuple) -> None:
        for i, j in linked.items():
            outputs[i] = _view_of_output(outputs[i], outputs[j], eager[i], eager[j])
        for i, (k, strides) in viewed.items():
            if k < len(args) and outputs[i] is args[k]:
                # a view at eager's very strides (size-1 dims too: an overlap check compares them; a reshape of a
                # (1, n) transpose to (1, n) has strides other than its input's there)
                t = outputs[i]
                outputs[i] = t.as_strided(t.shape, strides if strides is not None else t.stride(), t.storage_offset())

    if not aliased:
        def views(*args):
            result = compiled(*args)
            outputs = [result] if single else list(result)
            fresh_views(outputs, args)
            return outputs[0] if single else type(result)(outputs)
        views.source = getattr(compiled, "source", None)
        return views
    # outputs eager returns sharing memory with each other (`t = x.logsumexp(-1); return t.squeeze(-1), t` of a
    # 0-dim x, both reduced to x): copied together, over one new storage, each at its own place in it
    leader = {i: next((j for j in aliased if j < i and j in eager[i].shares), None) if eager is not None and
              i < len(eager) else None for i in aliased}
    leads = set(leader.values()) - {None}

    def run(*args):
        result = compiled(*args)
        if single:
            return result.clone()
        outputs, copies = list(result), {}
        fresh_views(outputs, args)
        for i in aliased:
            t, j = outputs[i], leader[i]
            if j in copies and result[j].untyped_storage().data_ptr() == t.untyped_storage().data_ptr():
                outputs[i] = _over(copies[j], t)
            elif i in leads:
                copies[i] = t.untyped_storage().clone()
                outputs[i] = _over(copies[i], t)
            else:
                outputs[i] = t.clone()
        return type(result)(outputs)

    run.source = getattr(compiled, "source", None)
    return run
