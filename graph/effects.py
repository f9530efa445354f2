"""Which FX nodes have effects beyond their result: the one place DCE, CSE and constant folding ask.

A node is *impure* when removing or merging it could change what the program observes: in-place ops, ops
writing an `out=` tensor, Python-level mutation (operator.setitem, augmented assignment), grad-mode switches,
calls into modules we cannot see, and any call the capture saw write to one of its arguments (it marks the node
`meta["mutates"]`: `F.relu(y, True)` is in-place through a positional flag no name reveals). Random ops are pure in data flow but advance the generator, so removing, merging or
folding one would change every later random number: they are classed separately and kept by all passes.
"""

from __future__ import annotations

import operator

import torch
import torch.fx as fx

# Augmented assignment on a tensor mutates it in place (x += y calls Tensor.__iadd__).
_MUTATING_OPERATORS = {
    operator.setitem, operator.delitem, operator.iadd, operator.isub, operator.imul, operator.itruediv,
    operator.ifloordiv, operator.imod, operator.ipow, operator.iand, operator.ior, operator.ixor,
    operator.imatmul, operator.ilshift, operator.irshift,
}

# Names (function, method or aten packet) whose results draw from the random generator.
_RANDOM_NAMES = {
    "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout", "native_dropout",
    "rand", "randn", "randint", "rand_like", "randn_like", "randint_like", "randperm", "bernoulli",
    "multinomial", "normal", "poisson", "uniform", "exponential", "geometric", "cauchy", "log_normal",
    "rrelu", "gumbel_softmax",
}


def _name(target: object) -> str:
    if isinstance(target, str):
        return target
    if isinstance(target, torch._ops.OpOverload):
        return target.overloadpacket.__name__
    return getattr(target, "__name__", "")


# Ops that draw only for some arguments: name -> (position, keyword names, default, whether a value draws nothing)
_TRAINING = (2, ("training", "train"), True, lambda v: v is False)  # eval-mode dropout is the identity
_NO_DROPOUT = lambda pos: (pos, ("dropout_p",), 0.0, lambda v: type(v) in (int, float) and v == 0)  # noqa: E731
_DRAWS_UNLESS = {
    "dropout": _TRAINING, "alpha_dropout": _TRAINING, "feature_alpha_dropout": _TRAINING,
    "native_dropout": _TRAINING,  # train=None means training
    "scaled_dot_product_attention": _NO_DROPOUT(4), "_scaled_dot_product_flash_attention": _NO_DROPOUT(3),
    "_scaled_dot_product_efficient_attention": _NO_DROPOUT(5), "_scaled_dot_product_cudnn_attention": _NO_DROPOUT(5),
}


# Attention backward ops tagged as seeded: they regenerate the forward's dropout mask from the philox seed and
# offset the forward returned (tensor arguments), drawing nothing from the generator.
_REPLAYS_SEED = {"_scaled_dot_product_cudnn_attention_backward", "_scaled_dot_product_efficient_attention_backward"}


def is_random(node: fx.Node) -> bool:
    """True when `node` draws from the random number generator."""
    if node.op not in ("call_function", "call_method"):
        return False
    name = _name(node.target).rstrip("_")
    if name in _REPLAYS_SEED:
        return False
    if name in _DRAWS_UNLESS:
        pos, keys, default, inert = _DRAWS_UNLESS[name]
        return not inert(_argument(node, pos, keys, default))  # sdpa with dropout_p > 0 draws though its name is not a random one
    if isinstance(node.target, torch._ops.OpOverload) and torch.Tag.nondeterministic_seeded in node.target.tags:
        return True
    return name in _RANDOM_NAMES


def random_target(target: object) -> bool:
    """Whether ops of this target (function, method name or aten overload) may draw random numbers."""
    if _name(target).rstrip("_") in _REPLAYS_SEED:
        return False
    if isinstance(target, torch._ops.OpOverload) and torch.Tag.nondeterministic_seeded in target.tags:
        return True
    return _name(target).rstrip("_") in _RANDOM_NAMES | set(_DRAWS_UNLESS)


_PURE_BUILTINS = {getattr, len, int, float, bool, abs, min, max, isinstance, tuple, list, range, slice}


def _known_pure_family(target: object) -> bool:
    """torch functions, Tensor methods, operator.* and a few builtins: pure unless named in-place (checked next)."""
    module = getattr(target, "__module__", None) or ""
    if module.startswith("torch") or module in ("_operator", "operator", "math"):
        return True
    if getattr(target, "__objclass__", None) in (torch.Tensor, torch._C.TensorBase):
        return True
    try:
        return target in _PURE_BUILTINS
    except TypeError:
        return False


# Calls that switch interpreter state rather than compute a value.
_STATE_SWITCHES = {torch._C._set_grad_enabled, torch.autograd.grad_mode._enter_inference_mode,
                   torch.autograd.grad_mode._exit_inference_mode}


# Python-level norms that update running statistics in place when training (their meta kernels may not bump
# the statistics' version counters, so the capture's check cannot see the write): target -> (positions of
# running_mean and running_var, position of the training flag, its keyword, its default).
_F = torch.nn.functional
_RUNNING_STATS = {
    _F.batch_norm: ((1, 2), ("running_mean", "running_var"), 5, "training", False),
    _F.instance_norm: ((1, 2), ("running_mean", "running_var"), 5, "use_input_stats", True),
    torch.batch_norm: ((3, 4), ("running_mean", "running_var"), 5, "training", None),
    torch.instance_norm: ((3, 4), ("running_mean", "running_var"), 5, "use_input_stats", None),
}


def _argument(node: fx.Node, pos: int, keys: tuple, default: object) -> object:
    """Argument `pos` of a call, passed by position or by one of the keyword names `keys`."""
    if len(node.args) > pos:
        return node.args[pos]
    return next((node.kwargs[k] for k in keys if k in node.kwargs), default)


def _updates_running_stats(node: fx.Node) -> bool:
    try:
        rule = _RUNNING_STATS.get(node.target)
    except TypeError:  # an unhashable target
        return False
    if rule is None:
        return False
    positions, keys, flag_pos, flag_key, default = rule
    if _argument(node, flag_pos, (flag_key,), default) is False:
        return False  # eval mode reads the statistics only
    return any(_argument(node, p, (k,), None) is not None for p, k in zip(positions, keys))


def is_impure(node: fx.Node) -> bool:
    """True when `node` mutates state, so it must stay and must not be merged or folded."""
    if node.op in ("placeholder", "output", "call_module"):
        return True
    if node.op == "get_attr":
        return False
    if node.meta.get("mutates") or "out" in node.kwargs or node.kwargs.get("inplace", False):
        return True
    target = node.target
    if target in _MUTATING_OPERATORS or target in _STATE_SWITCHES or _updates_running_stats(node):
        return True
    if isinstance(target, torch._ops.OpOverload):
        return target._schema.is_mutable
    if node.op == "call_function" and not _known_pure_family(target):
        return True  # an arbitrary Python callable may print, mutate globals or do I/O: keep it where it is
    if getattr(target, "__module__", None) in ("_operator", "operator"):
        return False  # its in-place functions are listed above; and_, or_, not_ merely avoid keywords
    name = _name(target)
    # torch's naming convention: a trailing underscore marks the in-place variant (add_, relu_, copy_).
    return name.endswith("_") and not name.endswith("__")


def is_removable(node: fx.Node) -> bool:
    """True when `node` may be deleted, merged or folded: neither impure nor random."""
    return not is_impure(node) and not is_random(node)


def has_mutation(graph: fx.Graph) -> bool:
    """True when some node may write to a tensor. Rewrites that turn a fresh result into an alias of its input
    (x * 1 -> x) are only safe without mutation: `y = x * 1; y.add_(1)` must leave x alone."""
    return any(node.op in ("call_function", "call_method", "call_module") and is_impure(node) for node in graph.nodes)


# Ops whose success depends on tensor values, not only on shapes and dtypes: an index out of range, a mask
# selecting a number of elements the assigned value does not fit, a class label past the class count, an integer
# division by a zero element, a singular matrix. Capture cannot know; inside a `try` they must run eagerly.
_VALUE_CHECKED = {
    "index_select", "gather", "scatter", "scatter_add", "scatter_reduce", "index_add", "index_copy", "index_fill",
    "index_put", "index_reduce", "take", "take_along_dim", "embedding", "embedding_bag", "one_hot", "nll_loss",
    "cross_entropy", "multinomial", "bincount", "repeat_interleave", "masked_scatter", "inverse", "inv",
    "cholesky", "cholesky_inverse", "solve", "lu_factor", "multi_margin_loss", "multilabel_margin_loss",
    "ctc_loss", "unique_consecutive", "histc", "searchsorted",
    "check_index",  # graph/index_checks.py: the bounds check the indexing rules put in front of an index
}
# the classes those value checks raise (TORCH_CHECK: RuntimeError, TORCH_CHECK_INDEX: IndexError, _VALUE: ValueError,
# _TYPE: TypeError; Python-side arithmetic: ArithmeticError): a try none of whose clauses catches them cannot see one
VALUE_ERRORS = (RuntimeError, IndexError, ValueError, TypeError, ArithmeticError)
_INTEGER_DIVISIONS = {"div", "floor_divide", "remainder", "fmod", "floordiv", "mod", "truediv", "__floordiv__",
                      "__mod__", "__rfloordiv__", "__rmod__", "ifloordiv", "imod"}


def _tensor_arg(value: object) -> bool:
    found: list = []
    fx.node.map_arg(value, lambda n: found.append(n) if isinstance(n.meta.get("val"), torch.Tensor) else None)
    return bool(found)


def may_raise_on_values(node: fx.Node) -> bool:
    """True when `node` may raise depending on the values in its tensor arguments (see _VALUE_CHECKED)."""
    if node.op not in ("call_function", "call_method"):
        return False
    name = _name(node.target)
    base = name if name.endswith("__") else name.rstrip("_")
    if node.target in (operator.getitem, operator.setitem, operator.delitem) or base in (
            "__getitem__", "__setitem__", "getitem", "setitem"):
        return len(node.args) > 1 and _tensor_arg(node.args[1])  # x[idx], x[mask] = v
    if base in _VALUE_CHECKED:
        return True
    if base in _INTEGER_DIVISIONS and len(node.args) > 1:
        divisor = node.args[1].meta.get("val") if isinstance(node.args[1], fx.Node) else None
        return isinstance(divisor, torch.Tensor) and not divisor.is_floating_point() and not divisor.is_complex()
    return False


def is_droppable(node: fx.Node) -> bool:
    """True when an unused `node` may be deleted: removable, and not an op that may raise on its values (eager
    raises even when the result is never read: an integer division by zero, an index out of range)."""
    return is_removable(node) and not may_raise_on_values(node)
