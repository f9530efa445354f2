"""torch.* and torch.nn.functional free functions, including factory calls that create tensors inside the graph."""
import torch
import torch.nn.functional as F

from .case import CaseList, tensors, values, randn, randint

C = CaseList("torch_functions")
T1 = tensors((3, 4))
T2 = tensors((3, 4), (3, 4))


@C.add(T2)
def torch_add_mul(x, y):
    return torch.add(x, y, alpha=2), torch.mul(x, 3), torch.sub(x, y)


@C.add(T1)
def torch_unary(x):
    return torch.sin(x), torch.cos(x), torch.tanh(x), torch.exp(x), torch.abs(x), torch.sign(x)


@C.add(T2)
def torch_cat_stack(x, y):
    return torch.cat([x, y], dim=0), torch.stack((x, y), dim=1), torch.cat((x, y), -1)


@C.add(tensors((2, 3, 4), (2, 4, 5)))
def torch_bmm_matmul(a, b):
    return torch.bmm(a, b), torch.matmul(a, b), torch.einsum("bij,bjk->bik", a, b)


@C.add(tensors((3, 4), (5, 4), (5,)))
def functional_linear(x, w, b):
    return F.linear(x, w, b)


@C.add(T1)
def activations(x):
    return F.relu(x), F.gelu(x), F.silu(x), F.leaky_relu(x, 0.1), F.elu(x), F.softplus(x)


@C.add(T1)
def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


@C.add(T1)
def softmax_family(x):
    return F.softmax(x, dim=-1), F.log_softmax(x, dim=1), torch.softmax(x, 0)


@C.add(tensors((2, 3, 8)))
def layer_norm_functional(x):
    return F.layer_norm(x, (8,))


@C.add(tensors((2, 3, 8), (8,), (8,)))
def layer_norm_affine(x, w, b):
    return F.layer_norm(x, x.shape[-1:], w, b, eps=1e-6)


@C.add(values(lambda: randn(4, 5), lambda: randint(0, 5, 4)))
def cross_entropy(logits, target):
    return F.cross_entropy(logits, target), F.nll_loss(F.log_softmax(logits, -1), target)


@C.add(T2)
def mse_l1(x, y):
    return F.mse_loss(x, y), F.l1_loss(x, y, reduction="sum"), F.smooth_l1_loss(x, y)


@C.add(tensors((1, 2, 5, 5), (3, 2, 3, 3)))
def conv2d(x, w):
    return F.conv2d(x, w, padding=1), F.conv2d(x, w, stride=2)


@C.add(tensors((1, 2, 6, 6)))
def pooling(x):
    return F.max_pool2d(x, 2), F.avg_pool2d(x, 3, stride=1), F.adaptive_avg_pool2d(x, 1)


@C.add(tensors((2, 4, 8)))
def sdpa_causal(x):
    q = k = v = x.unsqueeze(1)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


@C.add(T1)
def factories(x):
    return (x + torch.zeros(3, 4), torch.ones(4) * 2, torch.full((2, 2), 3.0), torch.arange(5),
            torch.arange(1, 10, 2), torch.linspace(0, 1, 5), torch.eye(3))


@C.add(T1)
def factories_like(x):
    return torch.zeros_like(x), torch.ones_like(x, dtype=torch.int64), torch.full_like(x, 2.5), torch.empty_like(x).shape


@C.add(T1)
def tensor_constructor(x):
    return x + torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor(3.5), torch.as_tensor([1, 2])


@C.add(T1)
def torch_where_scalar(x):
    return torch.where(x > 0, x, 0.0), torch.clamp(x, -0.1, 0.1), torch.maximum(x, torch.zeros_like(x))


@C.add(T1)
def torch_reductions(x):
    return torch.sum(x, dim=0), torch.mean(x), torch.amax(x, dim=1), torch.logsumexp(x, dim=1), torch.var(x)


@C.add(T1)
def torch_shape_fns(x):
    return (torch.reshape(x, (2, 6)), torch.transpose(x, 0, 1), torch.flatten(x), torch.unsqueeze(x, 0),
            torch.squeeze(x.unsqueeze(0)), torch.permute(x, (1, 0)))


@C.add(T1)
def torch_split_chunk(x):
    return torch.split(x, 2, dim=1), torch.chunk(x, 3, dim=0), torch.unbind(x, dim=1)


@C.add(values(lambda: randn(6, 4), lambda: randint(0, 6, 3)))
def embedding_fn(w, idx):
    return F.embedding(idx, w), torch.index_select(w, 0, idx)


@C.add(values(lambda: randn(3, 4), lambda: randint(0, 4, 3, 2)))
def gather_scatter(x, idx):
    g = torch.gather(x, 1, idx)
    s = torch.zeros(3, 4).scatter_add(1, idx, torch.ones(3, 2))
    return g, s


@C.add(T1, graphs=0)
def dropout_eval(x):
    # training=False makes dropout the identity, so eager and compiled agree without shared RNG state. Eager
    # returns the input object itself both times, so a tracer that reproduces that has no graph to run.
    return F.dropout(x, p=0.5, training=False), F.dropout(x, p=0.0)


@C.add(T1)
def pad_fn(x):
    return F.pad(x, (1, 2)), F.pad(x, (0, 0, 1, 1), value=-1.0)


@C.add(T1)
def normalize_fn(x):
    return F.normalize(x, dim=-1), F.cosine_similarity(x, x.flip(0), dim=1)


@C.add(T1)
def one_hot_fn(x):
    return F.one_hot(x.argmax(dim=1), num_classes=4).float() * x


@C.add(T2)
def outer_and_dot(x, y):
    return torch.outer(x[0], y[0]), torch.dot(x[0], y[0]), torch.mv(x, y[0])


@C.add(T1)
def torch_dtype_promote(x):
    return torch.add(x, torch.ones(4, dtype=torch.float64)), x.long() + 1.5, torch.result_type(x, 1.0)


@C.add(T1)
def torch_flip_roll(x):
    return torch.flip(x, [0]), torch.roll(x, 1, dims=1), torch.rot90(x)


@C.add(tensors((2, 3, 4)))
def group_norm_fn(x):
    return F.group_norm(x, 1), F.batch_norm(x, None, None, training=True)


@C.add(T1)
def torch_is_tensor(x):
    return torch.is_tensor(x), torch.is_floating_point(x), torch.numel(x), x * 2


@C.add(T1)
def torch_functional_getattr(x):
    act = getattr(F, "relu")
    return act(x)


@C.add(T2)
def aten_overloads(x, y):
    # torch.ops.aten.<op>.<overload>, as custom autograd Functions' backwards and kernel libraries call them: the
    # overload read off its packet was an unrepresentable value, and the frame ran eagerly
    aten = torch.ops.aten
    s = aten._softmax_backward_data.default(x, torch.softmax(y, 1), 1, torch.float32)
    return aten.add.Tensor(x, y, alpha=2), torch.ops.aten.mul.Scalar(x, 3), aten.sin(y), s


@C.add(tensors((2, 3, 5), (2, 3, 5), (5,), (5,)))
def aten_layer_norm_pair(x, g, w, b):
    aten = torch.ops.aten
    out, mean, rstd = aten.native_layer_norm.default(x, [5], w, b, 1e-5)
    dx, dw, db = aten.native_layer_norm_backward.default(g, x, [5], mean, rstd, w, b, [True, False, True])
    return out, dx, dw, db
