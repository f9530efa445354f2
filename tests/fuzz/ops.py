"""The expressions a generated program is made of, as a table: one line per operation.

Each `Op` is a template over its operands ({0}, {1}..) plus named holes the generator fills from the operand
values it picked ({dim}: a dim of operand 0, {num}: a Python number, ...; see generator.FILLERS). `kinds` says
what each operand is:

    T tensor   I Python int   N Python int or float   B Python bool   L list of tensors   D dict of tensors
    C a one-argument function defined by the program

`dtype` is the tensor operands' preferred dtype class ("float", "int", "intbool", "any"): preferred, not
required -- the generator sometimes picks another on purpose, so ops that raise for bool or integer tensors
test that compiled code raises too. `pick` says how operand 1 relates to operand 0 (broadcastable, matmul,
same shape). `weight` is the relative chance of being drawn within its group.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Op:
    template: str
    kinds: str = "T"
    dtype: str = "any"
    pick: str = "broadcast"
    weight: float = 1.0


def _ops(dtype: str, kinds: str, *templates: str, weight: float = 1.0, pick: str = "broadcast") -> list[Op]:
    return [Op(t, kinds, dtype, pick, weight) for t in templates]


# Tensor -> tensor, elementwise.
POINTWISE = [
    *_ops("float", "T", "torch.sin({0})", "torch.cos({0})", "torch.exp({0})", "torch.log({0})", "torch.sqrt({0})",
          "torch.tanh({0})", "torch.sigmoid({0})", "torch.rsqrt({0})", "torch.expm1({0})", "torch.log1p({0})",
          "torch.erf({0})", "F.gelu({0})", "F.silu({0})", "F.softplus({0})", "F.leaky_relu({0}, 0.1)",
          "torch.reciprocal({0})", "torch.floor({0})", "torch.ceil({0})", "torch.round({0})", "torch.trunc({0})",
          "{0}.exp()", "torch.nan_to_num({0})", "F.elu({0})", "F.hardtanh({0})", "torch.atan({0})"),
    *_ops("any", "T", "torch.abs({0})", "torch.neg({0})", "(-{0})", "F.relu({0})", "torch.relu({0})",
          "torch.sign({0})", "torch.square({0})", "({0} ** 2)", "{0}.pow(2)", "torch.clamp({0}, min=-1, max=1)",
          "{0}.clamp(min=0)", "torch.isnan({0})", "torch.isfinite({0})", "{0}.clone()", "{0}.detach()",
          "{0}.contiguous()", "torch.logical_not({0})", "(~{0})", "torch.bitwise_not({0})"),
    *_ops("any", "T", "{0}.float()", "{0}.double()", "{0}.half()", "{0}.bfloat16()", "{0}.int()", "{0}.long()",
          "{0}.bool()", "{0}.to({dtype})", weight=0.6),
]

# Tensor -> tensor of fewer dims (or the same with keepdim), and reductions returning tuples.
REDUCTIONS = [
    *_ops("any", "T", "{0}.sum()", "{0}.sum(dim={dim})", "{0}.sum({dim}, keepdim=True)", "{0}.amax({dim})",
          "{0}.amin(dim={dim})", "{0}.max()", "{0}.min()", "{0}.argmax(dim={dim})", "{0}.argmin()",
          "{0}.prod({dim})", "{0}.all()", "{0}.any({dim})", "{0}.count_nonzero()", "{0}.cumsum({dim})",
          "torch.max({0}, {dim})[0]", "torch.min({0}, dim={dim}, keepdim=True).indices"),
    *_ops("float", "T", "{0}.mean()", "{0}.mean({dim}, keepdim=True)", "{0}.var({dim})", "{0}.std()",
          "{0}.norm()", "torch.logsumexp({0}, {dim})", "torch.softmax({0}, {dim})",
          "F.log_softmax({0}, dim={dim})", "F.normalize({0}, dim={dim})"),
    *_ops("any", "T", "{0}.max(dim={dim})", "torch.sort({0}, dim={dim}, stable=True)", "torch.var_mean({0}, {dim})",
          "torch.std_mean({0}, {dim}, keepdim=True)", weight=0.4),
]

# Views and layout: results share memory with their operand (what aliasing checks are about). Nothing whose result
# is implementation-defined: bit casts (x.view(torch.int32)) expose NaN sign bits, as_strided and .stride() /
# .is_contiguous() of an intermediate expose a memory layout a compiler may choose, an unstable sort orders ties.
VIEWS = [
    *_ops("any", "T", "{0}.t()", "{0}.transpose({dim}, {dim2})", "{0}.permute({perm})", "{0}.unsqueeze({dimp})",
          "{0}.squeeze()", "{0}.squeeze({dim})", "{0}.flatten()", "{0}.reshape(-1)", "{0}.view(-1)",
          "{0}[::2]", "{0}[1:]", "{0}[..., :1]", "{0}[0]", "{0}[:, None]", "{0}[-1:]", "{0}.narrow({dim}, 0, 1)",
          "{0}.select({dim}, 0)", "{0}.expand(2, *{0}.shape)", "{0}.flip({dim})", "{0}.roll(1, {dim})",
          "{0}.movedim(0, -1)", "{0}.diagonal()", "{0}.tril()", "{0}.triu(1)", "{0}.mT", "{0}.unflatten(0, (1, -1))",
          "{0}.view({0}.shape)", "{0}.reshape({0}.shape[0], -1)", "{0}.repeat(2, 1)", "{0}[{0} > 0]",
          "torch.nonzero({0})", "{0}[..., ::-1]"),
    *_ops("any", "T", "{0}.unbind({dim})", "{0}.chunk(2, {dim})", "{0}.split(1, {dim})", weight=0.4),
]

# Two tensors (or a tensor and a Python number).
BINARY = [
    *_ops("any", "TT", "({0} + {1})", "({0} - {1})", "({0} * {1})", "({0} / {1})", "({0} // {1})", "({0} % {1})",
          "torch.maximum({0}, {1})", "torch.minimum({0}, {1})", "torch.where({0} > 0, {0}, {1})",
          "({0} > {1})", "({0} <= {1})", "torch.add({0}, {1}, alpha=2)", "torch.sub({0}, {1})",
          "torch.mul({0}, {1})", "torch.div({0}, {1}, rounding_mode='floor')", "torch.fmod({0}, {1})",
          "torch.remainder({0}, {1})", "({0} ** {1})", "{0}.expand_as({1})", "{0}.type_as({1})",
          "torch.broadcast_tensors({0}, {1})[0]", "{0}.masked_fill({1} > 0, 0.5)", "torch.where({1}, {0}, 0)"),
    *_ops("float", "TT", "torch.atan2({0}, {1})", "torch.lerp({0}, {1}, 0.3)", "torch.hypot({0}, {1})"),
    *_ops("intbool", "TT", "({0} & {1})", "({0} | {1})", "({0} ^ {1})", "({0} == {1})", "({0} != {1})",
          "torch.logical_and({0}, {1})"),
    *_ops("any", "TT", "({0} @ {1})", "torch.matmul({0}, {1})", pick="matmul"),
    *_ops("any", "TT", "torch.cat([{0}, {1}], dim={dim})", "torch.stack([{0}, {1}])", "{0}.reshape({1}.shape)",
          pick="same", weight=0.7),
    *_ops("any", "TN", "({0} + {1})", "({0} * {1})", "({1} - {0})", "({0} / {1})", "({0} > {1})",
          "({0} ** {1})", "{0}.clamp(max={1})", "torch.full_like({0}, {1})", "{0}.masked_fill({0} > 0, {1})",
          "torch.add({0}, {1}, alpha={num})", "({0} // {1})"),
]

# New tensors: creation, randomness (the program seeds torch's generator before every run).
CREATION = [
    *_ops("any", "T", "torch.zeros_like({0})", "torch.ones_like({0}, dtype={dtype})", "torch.full_like({0}, {num})",
          "torch.zeros({0}.shape, dtype={dtype})", "torch.arange({0}.numel())", "torch.empty_like({0}).fill_(2)",
          "torch.ones({0}.shape[-1:])", "torch.tensor({num})", "torch.linspace(0, 1, {0}.shape[0])",
          "torch.eye({0}.shape[0])", "{0}.new_zeros(2, 3)", "{0}.new_tensor([1, 2])"),
    *_ops("float", "T", "torch.rand_like({0})", "torch.randn({0}.shape)", "torch.randint(0, 5, {0}.shape)",
          "F.dropout({0}, 0.5, training=True)", "torch.bernoulli(torch.full_like({0}, 0.5))",
          "({0} + torch.rand(1))", weight=0.5),
]

# Indexing with index tensors; only ops whose result is defined with repeated indices (no scatter_ / index_put_
# without accumulate, whose order of writes torch leaves open).
INDEXING = [
    *_ops("any", "T", "{0}.gather({dim}, torch.zeros_like({0}, dtype=torch.long))",
          "{0}.index_select(0, torch.arange({0}.shape[0]).flip(0))", "{0}[torch.tensor([0, -1])]", "{0}[..., [0]]",
          "{0}.flatten()[{0}.flatten().argsort(stable=True)]", "torch.take({0}, torch.tensor([0]))",
          "{0}.scatter_add(0, torch.zeros_like({0}, dtype=torch.long), {0})", "{0}.index_fill(0, torch.tensor([0]), -1)",
          "{0}.masked_select({0} > 0)", "{0}.unique()", "torch.searchsorted({0}.flatten().sort().values, 0.5)"),
    *_ops("any", "TT", "{0}.index_add(0, torch.arange({1}.shape[0]) % {0}.shape[0], {1})",
          "torch.where({0} > 0, {1}, {0})", "{0}[{1} > 0]", "torch.clamp({0}, min={1})"),
]

# Reductions over several dims or into another dtype, and products, norms.
MIXED = [
    *_ops("any", "T", "{0}.sum((0, -1))", "{0}.sum(dtype=torch.float64)", "{0}.cumsum(0, dtype=torch.float32)",
          "{0}.amax((0, -1), keepdim=True)", "{0}.mean(dim=(0,), keepdim=True)", "{0}.prod(dtype=torch.int64)",
          "({0} + True)", "({0} * 2.5)", "({0} / 2)", "({0} // 2.0)", "({0} * 100000)", "({0} - 3) * ({0} + 3)",
          "torch.where({0} > 0, {0}, 2.5)", "{0}.float().var(unbiased=False)"),
    *_ops("float", "T", "F.layer_norm({0}, {0}.shape[-1:])", "torch.einsum('...i,...i->...', {0}, {0})",
          "F.linear({0}, torch.ones(3, {0}.shape[-1]))", "{0}.logcumsumexp(0)"),
    *_ops("float", "TT", "torch.einsum('...i,...i->...', {0}, {1})", "F.linear({0}, {1})", pick="same"),
]

# Tensor -> Python value: sizes (guarded), and data (.item(), .tolist(): the graph breaks there).
TO_PYTHON = [
    *_ops("any", "T", "{0}.shape[{dim}]", "{0}.size({dim})", "{0}.dim()", "{0}.numel()", "len({0})",
          "{0}.shape[-1] * 2", "{0}.ndim + 1", "{0}.is_floating_point()",
          "{0}.dtype", "tuple({0}.shape)", "{0}.shape", weight=1.0),
    *_ops("any", "T", "{0}.sum().item()", "int({0}.sum())", "bool({0}.any())", "{0}.tolist()",
          "{0}.max().item()", "float({0}.float().mean())", "{0}.flatten()[0].item()", "({0} > 0).sum().item()",
          weight=0.8),
]

# Python values -> Python values.
PYTHON = [
    *_ops("any", "NN", "({0} + {1})", "({0} * {1})", "max({0}, {1})", "min({0}, {1})", "({0} - {1})",
          "({0} > {1})", "({0} == {1})"),
    *_ops("any", "N", "abs({0})", "({0} * 2)", "(-{0})", "({0} + 1)", "int({0})", "float({0})", "round({0})",
          "({0} // 2)", "({0} % 3)", "(1 / {0})", "math.floor({0})", "({0} if {0} > 1 else 2)"),
    *_ops("any", "B", "(not {0})", "int({0})", "({0} and True)"),
]

# Tensor with a Python value.
TENSOR_PYTHON = [
    *_ops("any", "TN", "({0} * {1})", "({0} + {1})", "{0}.reshape(-1)[:{1}]", "{0}.sum({1} % max({0}.dim(), 1))",
          "torch.full_like({0}, {1})", "({0} if {1} > 0 else -{0})", "{0}.roll({1}, 0)"),
    *_ops("any", "TI", "{0}[..., :{1}]", "{0}.narrow(0, 0, {1})", "torch.arange({1})", "torch.ones({1}, 2)",
          "{0}.repeat({1}, 1)", "{0}.unsqueeze(0).expand({1}, *{0}.shape)"),
    *_ops("any", "TB", "({0} if {1} else {0} * 2)", "{0}.sum(0, keepdim={1})"),
]

# Containers (lists, dicts) in and out.
CONTAINERS = [
    *_ops("any", "L", "torch.stack({0})", "torch.cat({0})", "{0}[-1]", "{0}[0]", "len({0})", "sum({0})",
          "[t * 2 for t in {0}]", "tuple({0})", "{0}[::-1]", "list(zip({0}, {0}))", "{0} + {0}",
          "max(t.numel() for t in {0})", "[t.shape for t in {0}]", "torch.stack({0}).sum(0)"),
    *_ops("any", "D", "{0}['a']", "{0}.get('b', 0)", "list({0}.keys())", "list({0}.values())", "len({0})",
          "sorted({0})", "{{k: v + 1 for k, v in {0}.items()}}", "'a' in {0}", "{0}.keys() & {{'a', 'z'}}",
          "list({0}.items())", "{{**{0}, 'n': 1}}", "{0}.copy()", "dict(reversed({0}.items()))",
          "[k for k in {0} if k != 'a']", "{0}.keys() - {{'a'}}", "tuple({0}.values())[-1]"),
    *_ops("any", "TT", "[{0}, {1}]", "{{'a': {0}, 'b': {1}}}", "({0}, {1})", "[{0}, {1}, {0}]"),
    *_ops("any", "T", "[{0}]", "{{'a': {0}}}", "dict(a={0}, b={0} + 1)", "{0}.unbind(0)", "list({0})"),
]

# Built-in functions on anything: Python semantics the tracer has to model.
INTROSPECTION = [
    *_ops("any", "T", "isinstance({0}, torch.Tensor)", "hasattr({0}, 'shape')", "hasattr({0}, 'nope')",
          "getattr({0}, 'dtype')", "type({0}).__name__", "callable({0})", "{0}.dtype == torch.float32",
          "{0}.dtype.is_floating_point", "{0}.device.type", "{0}.requires_grad"),
    *_ops("any", "C", "callable({0})", "{0}.__name__", "hasattr({0}, '__call__')"),
]

# Statements mutating a tensor in place; {0} is the tensor written (an input, an intermediate, or a view of one).
INPLACE = [
    *_ops("any", "TT", "{0}.add_({1})", "{0}.mul_({1})", "{0}.sub_({1}, alpha=2)", "{0}.copy_({1})",
          "{0}.masked_fill_({1} > 0, 1)", "{0}.div_({1})", "torch.add({0}, {1}, out={0})",
          "{0}.index_add_(0, torch.arange({1}.shape[0]) % {0}.shape[0], {1})", "{0}.clamp_(min={1})"),
    *_ops("any", "T", "{0}.mul_(2)", "{0}.add_(1)", "{0}.clamp_(min=0)", "{0}.relu_()", "F.relu({0}, inplace=True)",
          "{0}.zero_()", "{0}.fill_({num})", "{0}.neg_()", "{0}.abs_()", "{0}.sigmoid_()", "{0}.exp_()",
          "{0}.masked_fill_({0} < 0, 0)", "{0}.t_()", "{0}.unsqueeze_(0)", "{0}.floor_()", "{0}.sqrt_()",
          "{0}.clamp_(-0.5, 0.5)", "F.leaky_relu_({0}, 0.2)", "torch.nn.init.zeros_({0})",
          "{0}.scatter_add_(0, torch.zeros_like({0}, dtype=torch.long), torch.ones_like({0}))",
          "{0}.index_fill_(0, torch.tensor([0]), -1)", "{0}[torch.tensor([0])] += 1", "{0}.cumsum_(0)"),
]

# Assignments into a tensor: "{0}[index] = value" (the generator writes the target).
SETITEM_INDICES = ["[0]", "[...]", "[:, 0]", "[1:]", "[::2]", "[..., -1]", "[{0} > 0]", "[:]"]
AUGMENTED = ["+=", "-=", "*=", "/="]

GROUPS = {  # what a new assignment draws from, and how often
    "pointwise": (POINTWISE, 5.0), "reduction": (REDUCTIONS, 2.0), "view": (VIEWS, 3.0), "binary": (BINARY, 5.0),
    "creation": (CREATION, 1.0), "to_python": (TO_PYTHON, 1.5), "python": (PYTHON, 1.0),
    "tensor_python": (TENSOR_PYTHON, 1.0), "container": (CONTAINERS, 1.5), "introspection": (INTROSPECTION, 0.5),
    "indexing": (INDEXING, 1.5), "mixed": (MIXED, 1.5),
}
