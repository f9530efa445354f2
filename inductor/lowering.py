"""FX graph -> loop-level IR (ir.py). Each supported op has one small lowering registered in LOWERINGS with
its kind; anything else becomes a FallbackKernel that runs the op in eager torch, so every graph compiles.

Shapes and dtypes come from node.meta["val"] (meta tensors); graphs without them get them from
`propagate_meta`, which runs each node on meta tensors. In a graph with dynamic sizes, shapes come from
node.meta["sym_shape"] (graph/symbolic_shapes.py): ints and SymInts, which generated code computes per call."""
import dataclasses
import operator
from collections import Counter
from typing import Callable

import torch
import torch.fx
from torch.utils._pytree import tree_flatten

from framejit.graph.attention import causal_attention
from framejit.graph.effects import is_impure, is_random, random_target
from framejit.graph.index_checks import CHECK_INDEX

from framejit.graph import meta_memo, symbolic_shapes, symbolic_sizes
from framejit.graph.input_writes import WRITTEN_INPUTS
from framejit.graph.normalize import EAGER_OUTPUTS
from framejit.graph.shape_prop import fetch_attr, to_meta

from .cache import cache_dir
from .eager_rejects import eager_rejects
from .ir import (HOST_SCALARS, Buffer, Operand, Const, ExternKernel, FallbackKernel, Item, Kernel, Layout, Load,
                 LoweredGraph, Op, Reduce, ScalarLayout, View, ViewKind, Expr, contiguous_strides, loads_in,
                 view_base)
from .fusion import cap_depth, plan_fusion

aten = torch.ops.aten
LOWERINGS = {}  # target -> (kind, fn(node, *args, **kwargs) -> Expr | extern (kind, args, params))


def register(kind, *targets):
    def wrap(fn):
        for t in targets:
            LOWERINGS[t] = (kind, fn)
        return fn
    return wrap


def meta(node):
    return node.meta["val"]


def shape(node) -> tuple:
    """The node's shape: symbolic (ints and SymInts, graph/symbolic_shapes.py) in a graph with dynamic sizes."""
    sym = node.meta.get(symbolic_shapes.KEY)
    return sym if sym is not None else tuple(meta(node).shape)


def _layout(node, val) -> Layout:
    sym = node.meta.get(symbolic_shapes.KEY)
    if sym is None:
        return Layout.of(val)
    return Layout(sym, symbolic_shapes.layout_strides(sym, tuple(val.stride())), val.dtype)


def _norm_dim(d, ndim):
    return d + max(ndim, 1) if d < 0 else d


def _scalar_meta(a):
    """Argument as torch.result_type sees it: a meta tensor for tensors, the Python number otherwise."""
    if isinstance(a, (Const,)):
        return a.value
    return torch.empty(a.shape, dtype=a.dtype, device="meta")


# ---- pointwise ------------------------------------------------------------------------------------------------
UNARY = ["abs", "neg", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "reciprocal", "sin", "cos", "tanh",
         "sigmoid", "erf", "floor", "ceil", "round", "trunc", "sign", "bitwise_not", "relu"]
BINARY = ["add", "sub", "mul", "div", "remainder", "maximum", "minimum", "atan2", "bitwise_and", "bitwise_or",
          "bitwise_xor"]
COMPARE = ["eq", "ne", "lt", "le", "gt", "ge"]
LOGICAL = ["logical_and", "logical_or", "logical_xor"]


def pointwise(name, node, *args, compute=None, params=()):
    out = meta(node)
    args = [_c(a) for a in args]
    return Op(name, args, shape(node), out.dtype, compute if compute is not None else out.dtype, params)


def _unary(name):
    def lower(node, x):
        out = meta(node)
        if name in ("floor", "ceil", "round", "trunc") and not out.dtype.is_floating_point:
            return View(ViewKind.IDENTITY, x, (), x.shape, x.dtype)  # integer rounding is the identity in torch
        if name in ("sign", "abs") and x.dtype == torch.bool:
            return View(ViewKind.IDENTITY, x, (), x.shape, x.dtype)  # NumPy has no bool loop for these
        return pointwise(name, node, x)
    return lower


def _binary(name):
    def lower(node, a, b, alpha=None):
        if alpha is not None and alpha != 1:  # a + alpha * b: the product has b's shape, not the result's
            b, dtype = _c(b), meta(node).dtype
            b = Const(b.value * alpha) if isinstance(b, Const) else Op("mul", [b, Const(alpha)], b.shape, dtype, dtype)
        return pointwise(name, node, a, b)
    return lower


def _compare(name):
    def lower(node, a, b):
        return pointwise(name, node, a, b, compute=torch.result_type(_scalar_meta(_c(a)), _scalar_meta(_c(b))))
    return lower


def _c(a):
    return a if hasattr(a, "shape") else Const(a)


for _n in UNARY:
    register("pointwise", getattr(aten, _n).default)(_unary(_n))
for _n in BINARY:
    _ops = [getattr(aten, _n).Tensor] if _n in ("add", "sub", "mul", "div", "remainder") else []
    _ops += [getattr(aten, _n).Scalar] if _n in ("add", "sub", "mul", "div", "remainder") else []
    _ops += [getattr(aten, _n).Tensor] if _n in ("bitwise_and", "bitwise_or", "bitwise_xor") else []
    _ops += [getattr(aten, _n).default] if _n in ("maximum", "minimum", "atan2") else []
    register("pointwise", *_ops)(_binary(_n))
for _n in COMPARE:
    register("pointwise", getattr(aten, _n).Tensor, getattr(aten, _n).Scalar)(_compare(_n))
for _n in LOGICAL:
    register("pointwise", getattr(aten, _n).default)(
        lambda node, a, b, _n=_n: pointwise(_n, node, a, b, compute=torch.bool))
register("pointwise", aten.logical_not.default)(lambda node, x: pointwise("logical_not", node, x,
                                                                          compute=torch.bool))
register("pointwise", aten.isnan.default)(lambda node, x: pointwise("isnan", node, x, compute=x.dtype))


@register("pointwise", aten.div.Tensor_mode, aten.div.Scalar_mode)
def _div_mode(node, a, b, *, rounding_mode=None):
    return pointwise({None: "div", "floor": "floordiv", "trunc": "truncdiv"}[rounding_mode], node, a, b)


@register("pointwise", aten.pow.Tensor_Tensor, aten.pow.Tensor_Scalar, aten.pow.Scalar)
def _pow(node, a, b):
    return pointwise("pow", node, a, b)


@register("pointwise", aten.where.self)
def _where(node, c, a, b):
    out = meta(node)
    return Op("where", [_c(c), _c(a), _c(b)], shape(node), out.dtype, out.dtype)


@register("pointwise", aten._to_copy.default)
def _to_copy(node, x, *, dtype=None, **_ignored):
    return pointwise("cast", node, x)


@register("pointwise", aten.clone.default)
def _clone(node, x, *, memory_format=None):
    # a copy, not an identity view: a clone that reaches an output or an eager fallback unchanged must be a new
    # buffer (the caller may write to the original afterwards); fused into a computing kernel it costs nothing
    return pointwise("cast", node, x)


@register("pointwise", aten.gelu.default)
def _gelu(node, x, *, approximate="none"):
    return pointwise("gelu_tanh" if approximate == "tanh" else "gelu", node, x)


@register("pointwise", aten.full.default)
def _full(node, size, value, **_kw):
    out = meta(node)
    return Op("full", [Const(value)], shape(node), out.dtype, out.dtype)


@register("pointwise", aten.arange.start_step, aten.arange.start, aten.arange.default)
def _arange(node, start, end=None, step=1, **_kw):
    if end is None:
        start, end = 0, start
    out = meta(node)
    return Op("arange", [], shape(node), out.dtype, out.dtype, (start, end, step))


@register("pointwise", aten.cat.default)
def _cat(node, tensors, dim=0):
    out = meta(node)
    parts = [t for t in tensors if not (len(t.shape) == 1 and t.shape[0] == 0 and len(out.shape) != 1)]
    return Op("cat", parts, shape(node), out.dtype, out.dtype, (_norm_dim(dim, len(out.shape)),))


# ---- views: index arithmetic, expressed as NumPy strided views --------------------------------------------------
def _view_of(kind, node, x, params):
    return View(kind, x, params, shape(node), x.dtype)


register("view", aten.view.default, aten.reshape.default, aten._unsafe_view.default, aten.squeeze.dims,
         aten.squeeze.dim, aten.squeeze.default)(
    lambda node, x, *a: _view_of(ViewKind.RESHAPE, node, x, (shape(node),)))
register("view", aten.permute.default)(
    lambda node, x, dims: _view_of(ViewKind.PERMUTE, node, x, (tuple(_norm_dim(d, len(x.shape)) for d in dims),)))
register("view", aten.t.default)(lambda node, x: _view_of(ViewKind.PERMUTE, node, x, (tuple(range(len(x.shape)))[::-1],)))
register("view", aten.expand.default)(
    lambda node, x, size, implicit=False: _view_of(ViewKind.EXPAND, node, x, (shape(node),)))
register("view", aten.unsqueeze.default)(
    lambda node, x, dim: _view_of(ViewKind.UNSQUEEZE, node, x, (_norm_dim(dim, len(x.shape) + 1),)))
register("pointwise", aten.relu.default)(_unary("relu"))
register("view", aten.alias.default, aten.detach.default)(lambda node, x: _view_of(ViewKind.IDENTITY, node, x, ()))


@register("view", aten.slice.Tensor)
def _slice(node, x, dim=0, start=None, end=None, step=1):
    return _view_of(ViewKind.SLICE, node, x, (_norm_dim(dim, len(x.shape)), start, end, step))


@register("view", aten.select.int)
def _select(node, x, dim, index):
    return _view_of(ViewKind.SELECT, node, x, (_norm_dim(dim, len(x.shape)), index))


# ---- reductions -----------------------------------------------------------------------------------------------
def _axes(x, dim):
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return None
    dims = [dim] if isinstance(dim, int) else list(dim)
    return tuple(sorted(_norm_dim(d, len(x.shape)) for d in dims))


def _reduce(kind):
    def lower(node, x, dim=None, keepdim=False, *, dtype=None):
        out = meta(node)
        # torch accepts dim 0 / -1 on a 0-d tensor; NumPy wants no axis there
        axes = None if len(x.shape) == 0 else _axes(x, dim)
        return Reduce(kind, x, axes, keepdim, shape(node), out.dtype)
    return lower


register("reduction", aten.sum.dim_IntList, aten.sum.default)(_reduce("sum"))
register("reduction", aten.mean.dim, aten.mean.default)(_reduce("mean"))
register("reduction", aten.prod.dim_int, aten.prod.default)(_reduce("prod"))
register("reduction", aten.amax.default)(_reduce("amax"))
register("reduction", aten.amin.default)(_reduce("amin"))
register("reduction", aten.argmax.default)(_reduce("argmax"))
register("reduction", aten.argmin.default)(_reduce("argmin"))
register("reduction", aten.any.default, aten.any.dim, aten.any.dims)(_reduce("any"))
register("reduction", aten.all.default, aten.all.dim, aten.all.dims)(_reduce("all"))


# ---- extern library calls -------------------------------------------------------------------------------------
def _scan(kind):
    def lower(node, x, dim, *, dtype=None):
        return (kind, [x], {"dim": _norm_dim(dim, len(x.shape)) if len(x.shape) else None})
    return lower


register("extern", aten.cumsum.default)(_scan("cumsum"))
register("extern", aten.cumprod.default)(_scan("cumprod"))
register("extern", aten.mm.default)(lambda node, a, b: ("matmul", [a, b], {}))
register("extern", aten.bmm.default)(lambda node, a, b: ("matmul", [a, b], {}))
register("extern", aten.addmm.default)(
    lambda node, bias, a, b, *, beta=1, alpha=1: ("addmm", [bias, a, b], {"beta": beta, "alpha": alpha}))


@register("extern", aten.scaled_dot_product_attention.default)
def _sdpa(node, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, *, scale=None, enable_gqa=False):
    if dropout_p != 0.0 or enable_gqa:
        return None  # random dropout must come from torch's generator: fall back
    args = [q, k, v] + ([attn_mask] if attn_mask is not None else [])
    return ("sdpa", args, {"is_causal": is_causal, "scale": scale, "has_mask": attn_mask is not None})


@register("extern", causal_attention)
def _causal_attention(node, q, k, v, mask, *, scale_op, constant, kind, mask_first=False):
    # graph/attention.py's rewrite of a naive attention whose mask comes from outside: SDPA while it is causal
    return ("causal_attention", [q, k, v, mask], {"scale_op": scale_op, "constant": constant, "kind": kind,
                                                  "mask_first": mask_first})


@register("extern", aten.convolution.default)
def _conv(node, x, w, bias, stride, padding, dilation, transposed, output_padding, groups):
    if transposed or len(x.shape) not in (3, 4):
        return None
    args = [x, w] + ([bias] if bias is not None else [])
    return ("conv", args, {"stride": tuple(stride), "padding": tuple(padding), "dilation": tuple(dilation),
                           "groups": groups, "has_bias": bias is not None})


# ---- indexing (issue 20): indexed loads and stores as Ops both code generators spell -------------------------
# check_index (graph/index_checks.py) raises eager's exception for an index out of range and returns indices in
# [0, size): the ops after it read and write only inside their buffers. Params: take (dim,): the index's dims
# replace dim `dim` of the source (index_select, embedding, x[idx]); gather (dim,): the index has the output's
# rank (np.take_along_axis); scatter (dim, mode "add" | "set", take): a copy of operand 0 with operand 2 added or
# written at the indices (take: the index replaces dim `dim`, else along it as gather). Scatters are their own kind:
# always a kernel of their own (a Triton one is a copy, then a kernel of atomic adds), their operands fused in.
# Not probed by eager_rejects: its ones-tensors are indices out of range of its one-element sources.
INDEXING_OPS = {CHECK_INDEX, aten.gather.default, aten.index_select.default, aten.embedding.default,
                aten.index.Tensor, aten.scatter.src, aten.scatter.value, aten.scatter_add.default,
                aten.scatter_reduce.two, aten.index_add.default, aten.index_put.default,
                aten.embedding_dense_backward.default}


@register("pointwise", CHECK_INDEX)
def _check_index(node, idx, size, dim, wrap, kind):
    return Op("check_index", [idx], shape(node), torch.int64, torch.int64, (size, dim, wrap, kind))


def _take(node, x, dim, idx):
    out = meta(node)
    if len(idx.shape) == 0 and len(shape(node)) == len(x.shape):  # index_select's 0-d index keeps the dim
        idx = View(ViewKind.RESHAPE, idx, ((1,),), (1,), idx.dtype)
    return Op("take", [x, idx], shape(node), out.dtype, out.dtype, (_norm_dim(dim, len(x.shape)),))


register("pointwise", aten.index_select.default)(lambda node, x, dim, idx: _take(node, x, dim, idx))
register("pointwise", aten.embedding.default)(
    lambda node, weight, idx, padding_idx=-1, scale_grad=False, sparse=False: _take(node, weight, 0, idx))


def _single_index(indices):
    """(dim, index) of an index list holding one tensor, the rest None; None otherwise."""
    found = [(k, i) for k, i in enumerate(indices) if i is not None]
    return found[0] if len(found) == 1 and hasattr(found[0][1], "shape") else None


@register("pointwise", aten.index.Tensor)
def _index(node, x, indices):
    one = _single_index(indices)
    return None if one is None else _take(node, x, one[0], one[1])


def _fit(src, like_shape, skip_dim):
    """`src` sliced to `like_shape` on every dim but `skip_dim` (gather and scatter read only the index's extent)."""
    for d, (n, m) in enumerate(zip(src.shape, like_shape)):
        if d != skip_dim and n != m:
            src = View(ViewKind.SLICE, src, (d, 0, m, 1), tuple(src.shape[:d]) + (m,) + tuple(src.shape[d + 1:]),
                       src.dtype)
    return src


@register("pointwise", aten.gather.default)
def _gather(node, x, dim, idx, *, sparse_grad=False):
    dim = _norm_dim(dim, len(x.shape))
    out = meta(node)
    return Op("gather", [_fit(x, idx.shape, dim), idx], shape(node), out.dtype, out.dtype, (dim,))


def _scatter(node, x, dim, idx, src, mode, take):
    if len(x.shape) == 0:
        return None  # a 0-d target (dim 0 of a scalar): torch's kernel (the Triton writer indexes dims)
    out = meta(node)
    dim = _norm_dim(dim, len(x.shape))
    if hasattr(src, "shape") and not take:
        src = _fit(src, idx.shape, -1)
    return Op("scatter", [x, idx, _c(src)], shape(node), out.dtype, out.dtype, (dim, mode, take))


register("scatter", aten.scatter_add.default)(lambda node, x, dim, idx, src: _scatter(node, x, dim, idx, src,
                                                                                         "add", False))
register("scatter", aten.scatter.src, aten.scatter.value)(
    lambda node, x, dim, idx, src: _scatter(node, x, dim, idx, src, "set", False))


@register("scatter", aten.scatter_reduce.two)
def _scatter_reduce(node, x, dim, idx, src, reduce, *, include_self=True):
    return _scatter(node, x, dim, idx, src, "add", False) if reduce == "sum" and include_self else None


@register("scatter", aten.index_add.default)
def _index_add(node, x, dim, idx, src, *, alpha=1):
    if alpha != 1:
        src = Op("mul", [src, Const(alpha)], src.shape, src.dtype, src.dtype)
    return _scatter(node, x, dim, idx, src, "add", True)


@register("scatter", aten.index_put.default)
def _index_put(node, x, indices, values, accumulate=False):
    one = _single_index(indices)
    if one is None or values.dtype != x.dtype:
        return None  # several index tensors; eager raises for a dtype mismatch: torch runs it
    k, idx = one
    if idx.dtype == torch.bool:
        return None  # a mask picks a data-dependent number of places (joint.py respells the one-value form)
    taken = tuple(x.shape[:k]) + tuple(idx.shape) + tuple(x.shape[k + 1:])
    if tuple(values.shape) != taken:
        values = View(ViewKind.EXPAND, values, (taken,), taken, values.dtype)
    return _scatter(node, x, k, idx, values, "add" if accumulate else "set", True)


@register("scatter", aten.embedding_dense_backward.default)
def _embedding_backward(node, grad, idx, num_weights, padding_idx, scale_grad_by_freq):
    """The weight's gradient: zeros, each gradient row added at its index, but those of padding_idx (the
    forward checked the indices)."""
    if scale_grad_by_freq:
        return None  # divided by each index's count: torch computes it
    out = meta(node)
    if padding_idx >= 0:
        pad = Op("eq", [idx, Const(padding_idx)], tuple(idx.shape), torch.bool, idx.dtype)
        pad = View(ViewKind.UNSQUEEZE, pad, (len(idx.shape),), tuple(idx.shape) + (1,), torch.bool)
        grad = Op("where", [pad, Const(0), grad], tuple(grad.shape), grad.dtype, grad.dtype)
    zeros = Op("full", [Const(0)], shape(node), out.dtype, out.dtype)
    return Op("scatter", [zeros, idx, grad], shape(node), out.dtype, out.dtype, (0, "add", True))


# ---- torch-level spellings, for graphs that did not go through graph/ normalization ----------------------------
TORCH_LEVEL = {
    operator.add: aten.add.Tensor, operator.sub: aten.sub.Tensor, operator.mul: aten.mul.Tensor,
    operator.truediv: aten.div.Tensor, operator.neg: aten.neg.default, torch.add: aten.add.Tensor,
    torch.sub: aten.sub.Tensor, torch.mul: aten.mul.Tensor, torch.div: aten.div.Tensor,
    torch.relu: aten.relu.default, torch.nn.functional.relu: aten.relu.default, torch.exp: aten.exp.default,
    torch.tanh: aten.tanh.default, torch.sigmoid: aten.sigmoid.default, torch.nn.functional.gelu:
    aten.gelu.default, torch.mm: aten.mm.default, torch.bmm: aten.bmm.default, torch.where: aten.where.self,
    torch.maximum: aten.maximum.default, torch.minimum: aten.minimum.default,
}


def _resolve(node):
    """The aten overload a node computes, or None. torch-level calls pass Python scalars where aten's .Tensor
    overload wants a tensor; the lowerings accept scalars, so the mapping only has to keep argument order."""
    if node.op != "call_function" or not _hashable(node.target):
        return None
    target = TORCH_LEVEL.get(node.target, node.target)
    return target if _hashable(target) and target in LOWERINGS else None


def _hashable(t):
    try:
        hash(t)
        return True
    except TypeError:
        return False


# ---- driver ---------------------------------------------------------------------------------------------------
def propagate_meta(gm: torch.fx.GraphModule, example_inputs) -> None:
    """Fill node.meta["val"] with meta tensors where a caller did not (graphs built by hand or by torch.fx)."""
    env = {}
    inputs = iter(example_inputs)
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            env[node] = to_meta(next(inputs))
        elif node.op == "get_attr":
            env[node] = to_meta(fetch_attr(gm, node.target))
        elif node.op in ("call_function", "call_method"):
            if "val" in node.meta:
                env[node] = node.meta["val"]
                continue
            args, kwargs = torch.fx.node.map_arg((node.args, node.kwargs), lambda n: env[n])
            fn = node.target if node.op == "call_function" else getattr(torch.Tensor, node.target)
            env[node] = fn(*args, **kwargs)
        else:
            continue
        node.meta.setdefault("val", env[node])


def kind_of(node) -> str:
    """pointwise / view / reduction / scatter / extern, or fallback for a node with no lowering."""
    target = _resolve(node)
    return "fallback" if target is None else LOWERINGS[target][0]


# library calls whose dtype support is probed on one-element operands (an embedding's index must stay in range,
# a convolution's window inside its input: those are not probed)
PROBED_EXTERNS = (aten.mm.default, aten.bmm.default, aten.addmm.default)


def _eager_rejects(node) -> str | None:
    """Why eager raises for this call at any values (eager_rejects.py), for calls with tensor operands."""
    args, kwargs = torch.fx.node.map_arg((node.args, node.kwargs), lambda a: a.meta.get("val"))
    if not _tensors_in((args, kwargs)):
        return None  # constructors: meta raises where eager does, and a probe of arange(10**9) would cost
    target = node.target if node.op == "call_function" else getattr(torch.Tensor, node.target, None)
    return None if target is None else eager_rejects(target, args, kwargs)


def _tensors_in(value):
    return [v for v in tree_flatten(value)[0] if isinstance(v, torch.Tensor)]


def _aliases(node: torch.fx.Node, target) -> bool:
    """The op's result is a view of one of its tensor operands (detach, a transpose), asked of the op itself on
    the operands' meta values (the traced values do not share storage). In-place and random ops are not asked."""
    name = getattr(target, "__name__", "")
    if name.endswith("_") or random_target(target):
        return False
    args, kwargs = torch.fx.node.map_arg((node.args, node.kwargs), lambda n: n.meta.get("val"))
    ins = [v for v in tree_flatten((args, kwargs))[0] if isinstance(v, torch.Tensor)]
    if not ins or any(v.device.type != "meta" for v in ins):
        return False
    try:
        out = target(*args, **kwargs)
    except Exception:  # noqa: BLE001 (an op meta tensors cannot run: taken as making new tensors)
        return False
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return any(torch._C._is_alias_of(o, v) for o in outs if isinstance(o, torch.Tensor) for v in ins)


def lower_graph(gm: torch.fx.GraphModule, example_inputs, supported: Callable[[torch.dtype], bool],
                plan=plan_fusion, fallback: dict | None = None) -> LoweredGraph:
    """`supported(dtype)`: the backend's dtype rules, whether its code can hold the dtype (numpy/dtypes.py,
    triton/dtypes.py); an op reading or making any other runs in torch. `plan(graph, kinds) -> stored nodes` is the
    backend's fusion policy (fusion.plan_fusion for NumPy, triton/fusion.plan_triton_fusion for Triton, which also
    fuses values read several times in one kernel). `fallback` {node: reason}: nodes the backend cannot generate
    code for, run in torch whatever their lowering (the Triton backend's per-kernel fallback, triton/fallback.py)."""
    # node texts in comments name sizes `s0`; torch's Python meta kernels answered from an earlier run's results
    with symbolic_sizes.rendering(symbolic_sizes.NameRenderer()), meta_memo.remembering(cache_dir()):
        return _lower_graph(gm, example_inputs, supported, plan, fallback or {})


def _lower_graph(gm: torch.fx.GraphModule, example_inputs, supported, plan, forced: dict) -> LoweredGraph:
    propagate_meta(gm, example_inputs)
    if symbolic_shapes.is_dynamic(gm):
        symbolic_shapes.propagate(gm)
    graph = gm.graph
    kinds = {n: kind_of(n) for n in graph.nodes if n.op in ("call_function", "call_method")}
    reasons = {n: "no lowering" for n, k in kinds.items() if k == "fallback"}
    for n in list(kinds):
        out = n.meta.get("val")
        # a torch call may return Python values beside its tensors (CUDA attention's sizes): items torch alone reads
        # (triton/host.py's untouched items: its backward, the graph's outputs), as the call returned them
        if _python_item(n, kinds) or kinds[n] == "fallback" and isinstance(out, (tuple, list)) and \
                any(isinstance(v, torch.Tensor) for v in out) and \
                all(isinstance(v, torch.Tensor) or type(v) in PYTHON_ITEMS for v in out):
            continue
        if not (isinstance(out, torch.Tensor) or (isinstance(out, (tuple, list)) and out and
                                                  all(isinstance(v, torch.Tensor) for v in out))):
            # sizes, Python numbers, None: values the generated code cannot hold; the caller runs gm as is
            raise NotImplementedError(f"node {n.name!r} produces a non-tensor value ({type(out).__name__})")
        vals = _tensors_in(out) + [v for a in n.all_input_nodes for v in _tensors_in(a.meta.get("val"))]
        odd = [v.dtype for v in vals if not supported(v.dtype)]
        if odd:
            kinds[n] = "fallback"  # complex, unsigned 16/32/64, float8...: no type for them, run eager
            reasons[n] = f"dtype {str(odd[0]).replace('torch.', '')} not supported"
        elif (kinds[n] in ("pointwise", "reduction") and _resolve(n) not in INDEXING_OPS) or \
                _resolve(n) in PROBED_EXTERNS:
            rejected = _eager_rejects(n)
            if rejected:
                kinds[n], reasons[n] = "fallback", rejected  # torch raises at run time, as eager does
        if n in forced:
            kinds[n], reasons[n] = "fallback", forced[n]
    stored = cap_depth(graph, kinds, plan(graph, kinds))
    env, inputs, kernels, counter = {}, [], [], {}

    def fresh(base):
        counter[base] = counter.get(base, -1) + 1
        return f"{base}_{counter[base]}" if counter[base] else base

    for node in graph.nodes:
        if node.op in ("placeholder", "get_attr"):
            val = meta(node)
            if not isinstance(val, torch.Tensor):
                raise NotImplementedError(f"non-tensor graph input {node.name!r}")
            layout = ScalarLayout((), (), val.dtype) if node.op == "placeholder" and \
                node.name in gm.meta.get(HOST_SCALARS, ()) else _layout(node, val)
            buf = Buffer(fresh(node.name), layout, attr=node.target if node.op == "get_attr" else None)
            inputs.append(buf)
            env[node] = Load(buf.name, shape(node), val.dtype)
            continue
        if node.op == "output":
            outs, spec = torch.utils._pytree.tree_flatten(node.args[0])
            outputs = [env[o] if isinstance(o, torch.fx.Node) else o for o in outs]
            if any(isinstance(o, tuple) for o in outputs):  # torch.max(x, 0) returned as it is: a named tuple
                raise NotImplementedError("a graph output is the tuple a torch op returned")
            continue
        kind = kinds[node]
        args, kwargs = torch.fx.node.map_arg((node.args, node.kwargs), lambda n: env[n])
        out = meta(node)
        if node.op == "call_function" and node.target is operator.getitem and isinstance(
                env.get(node.args[0]), tuple):
            env[node] = env[node.args[0]][node.args[1]]
            continue
        expr = None
        if kind != "fallback":
            target = _resolve(node)
            try:
                expr = LOWERINGS[target][1](node, *args, **kwargs)
            except TypeError:
                if target is node.target:
                    raise  # an aten call our lowering rejects is a bug in the lowering: surface it
                expr = None  # a torch-level call with arguments aten's overload lacks (out=, inplace=...)
                reasons[node] = "arguments its aten overload lacks"
            if expr is None:
                kind = "fallback"
                reasons.setdefault(node, "its lowering declines these arguments")
        if kind == "fallback":
            flat, stored_as = tree_flatten((args, kwargs))[0], {}
            if kinds[node] != "fallback":  # planned as fused, its lowering declined: its operands were inlined
                for a in flat:
                    if id(a) not in stored_as:  # an operand read twice is stored once
                        stored_as[id(a)] = _stored_operand(a, node, kernels, fresh)
                flat = [stored_as[id(a)] for a in flat]
            operands = [a for a in flat if hasattr(a, "shape") and not isinstance(a, Const)]
            index = {id(a): i for i, a in enumerate(operands)}
            slots = torch.fx.node.map_aggregate(
                (node.args, node.kwargs), lambda a: Operand(index[id(stored_as.get(id(env[a]), env[a]))])
                if isinstance(a, torch.fx.Node) else a)
            target = node.target if node.op == "call_function" else getattr(torch.Tensor, node.target)
            name = fresh(getattr(target, "__name__", "op").split(".")[0] + "_fallback")
            multi = isinstance(out, (tuple, list))
            layout = _layout(node, out) if isinstance(out, torch.Tensor) else None
            kernels.append(FallbackKernel(Buffer(name, layout), target, operands, slots[0], slots[1], multi,
                                          [node.format_node()], reasons[node], _aliases(node, target),
                                          pure=not is_random(node) and not is_impure(node)))
            if multi:  # a Python value's Item has no dtype: only torch may read it (`_python_item`)
                env[node] = tuple(Item(name, i, tuple(v.shape), v.dtype) if isinstance(v, torch.Tensor)
                                  else Item(name, i, (), None) for i, v in enumerate(out))
            else:
                env[node] = Load(name, shape(node), out.dtype)
        elif kind == "extern":
            ext_kind, ext_args, params = expr
            name = fresh(node.name)
            kernels.append(ExternKernel(Buffer(name, _layout(node, out)), ext_kind, ext_args, params,
                                        [node.format_node()]))
            env[node] = Load(name, shape(node), out.dtype)
        elif node in stored:
            name = fresh(node.name)
            nodes = _fused_nodes(node, env)
            kernels.append(Kernel(Buffer(name, _layout(node, out)), expr, [n.format_node() for n in nodes],
                                  is_view=kind == "view", nodes=nodes))
            env[node] = Load(name, shape(node), out.dtype)
        else:
            env[node] = expr
            expr.fx_node = node
    return LoweredGraph(inputs, kernels, outputs, spec, symbolic_sizes.text(graph),
                        eager_outputs=gm.meta.get(EAGER_OUTPUTS), donated=_donated(gm, inputs, outputs))


def _donated(gm, inputs: list, outputs: list) -> dict:
    """{kernel buffer: input buffer} for the graph's last outputs that are written inputs' final values
    (WRITTEN_INPUTS), each a buffer no other output returns."""
    written = gm.meta.get(WRITTEN_INPUTS) or ()
    if not written or len(outputs) < len(written):
        return {}
    placeholders = [b.name for b in inputs if b.attr is None]
    tail = outputs[len(outputs) - len(written):]
    returned = Counter(o.buf for o in outputs if isinstance(o, Load))
    names = {b.name for b in inputs}
    return {o.buf: placeholders[i] for o, i in zip(tail, written)
            if isinstance(o, Load) and o.buf not in names and returned[o.buf] == 1
            and not any(isinstance(x, View) and o.buf in loads_in(x) for x in outputs)}


def _stored_operand(a, node, kernels: list, fresh):
    """A torch call's operand as a buffer (under its views): arithmetic the fusion plan inlined into a node whose
    lowering then declined (aten.index with several index tensors of aranges, in Hugging Face's mask code) gets a
    kernel of its own, since generated host code hands torch buffers, not expressions."""
    base = view_base(a)
    if not isinstance(base, (Op, Reduce)):
        return a
    name = fresh(f"{node.name}_operand")
    kernels.append(Kernel(Buffer(name, Layout(tuple(base.shape), contiguous_strides(base.shape), base.dtype)), base,
                          [node.format_node()]))
    return _rebased(a, Load(name, tuple(base.shape), base.dtype))


def _rebased(e, load):
    return load if not isinstance(e, View) else dataclasses.replace(e, arg=_rebased(e.arg, load))


PYTHON_ITEMS = (int, float, bool, type(None))


def _python_item(n, kinds: dict) -> bool:
    """n picks a Python value out of a torch fallback's tuple, and only torch fallbacks and the graph's output read
    it (generated code has nowhere to hold it)."""
    if not (n.op == "call_function" and n.target is operator.getitem and type(n.meta.get("val")) in PYTHON_ITEMS):
        return False
    source = n.args[0]
    return isinstance(source, torch.fx.Node) and kinds.get(source) == "fallback" and \
        all(u.op == "output" or kinds.get(u) == "fallback" for u in n.users)


def input_sizes(lg: LoweredGraph) -> dict:
    """symbol -> (input buffer, dim) holding it, for each dynamic size (generated code reads them there)."""
    found = {}
    for b in lg.inputs:
        for d, n in enumerate(b.layout.shape):
            if isinstance(n, symbolic_sizes.SymInt) and len(n.expr.symbols()) == 1:
                name = next(iter(n.expr.symbols()))
                if n.expr == symbolic_sizes.Expr.symbol(name):
                    found.setdefault(name, (b.name, d))
    return found


def _fused_nodes(node, env) -> list:
    """FX nodes fused into this kernel: the node and every producer inlined into it, in graph order."""
    seen, order = set(), []

    def walk(n):
        for a in n.all_input_nodes:
            e = env.get(a)
            if isinstance(e, Expr) and e.fx_node is a and a not in seen:
                seen.add(a)
                walk(a)
        order.append(n)
    walk(node)
    return order
