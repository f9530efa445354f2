"""The first call of each compiled training graph checked against the same graph run in torch, op by op.

A training step's gradients are not seen by the user: a wrong one trains a worse model in silence (on the H100, a
GPT at GPT-2 small's size got gradients a hundred times off in its first blocks while every test at small sizes
agreed, and the loss was right). So the first forward of a region (unless it draws random numbers, which the
generated code draws otherwise than torch) and its first backward also run as the FX graph in torch, on the same
inputs, and every floating result is compared: a relative error (Frobenius norms) above the dtype's tolerance, or
non-finite values where torch's are finite (or the reverse), and the graph runs in torch from then on, with one
warning naming the result. The tolerances are loose: fused code rounds otherwise than torch's op-by-op kernels
(bf16 gradients differ by about 1e-2 between the two), while a wrong kernel is off by far more. The check costs one
more forward and backward in torch per compiled graph, once; FRAMEJIT_CHECK_FIRST_CALL=0 turns it off."""
import torch

TOLERANCE = {torch.float64: 1e-5, torch.float32: 1e-3, torch.bfloat16: 1e-1, torch.float16: 5e-2}
# a float32 result of a graph that also computes in half precision (autocast) inherits its rounding: on the H100 a
# GPT's layer-norm sums over bf16 activations differ by 1.7e-3 between the generated and torch's kernels, and a
# norm weight's gradient by 2.4e-3; the bug this check exists for was off by 0.3 and more
INHERITED_HALF = 3e-2
# a result whose terms cancel (batch_norm's input gradient of a plain sum is rounding noise around 0) has no
# relative error to speak of: differences below this many units of rounding at the inputs' scale are never flagged
NOISE_ULPS = 100
# elements compared or measured at a time: float32 copies of a chunk of both results, their difference and masks stay near
# 100 MB, where whole copies of a GPT's saved logits (8 x 512 x 50304 in bf16) took 5 GB at the first call
CHUNK = 1 << 22


def scale(inputs: list) -> float:
    """The inputs' magnitude: the largest root-mean-square of a floating input's finite values."""
    found = 0.0
    for x in inputs:
        if isinstance(x, torch.Tensor) and x.is_floating_point() and x.numel():
            flat, total, count = x.detach().reshape(-1), 0.0, 0
            for start in range(0, flat.numel(), CHUNK):  # in chunks: float32 copies of a backward's saved values
                v = flat[start:start + CHUNK].float()  # whole took 4.9 GB at a GPT's first step on the H100
                v = v[torch.isfinite(v)]
                total, count = total + float(v.square().sum()), count + v.numel()
            if count:
                found = max(found, (total / count) ** 0.5)
    return found


def disagreement(got: list, want: list, level: float, half: bool = False) -> str | None:
    """Why the compiled graph's results are not the torch run's, if they are not. `level`: the inputs' `scale`;
    `half`: the graph computes in float16 / bfloat16 too (`computes_in_half`)."""
    for i, (g, w) in enumerate(zip(got, want)):
        if not isinstance(w, torch.Tensor) or not w.is_floating_point() or w.numel() == 0:
            continue  # integer results (an argmax's index under ties) may differ and be right
        if not isinstance(g, torch.Tensor) or g.shape != w.shape or g.dtype != w.dtype:
            described = f"{tuple(g.shape)} {g.dtype}" if isinstance(g, torch.Tensor) else type(g).__name__
            return f"result {i} is {described} where torch's is {tuple(w.shape)} {w.dtype}"
        norms = _difference_norms(g, w)
        if norms is None:
            return f"result {i} {tuple(w.shape)} {w.dtype} has non-finite values where torch's are finite, or the reverse"
        diff, norm = norms
        tol = TOLERANCE.get(w.dtype, 1e-3)
        if half and w.dtype in (torch.float32, torch.float64):
            tol = max(tol, INHERITED_HALF)
        if diff > tol * norm and diff > NOISE_ULPS * torch.finfo(w.dtype).eps * level * w.numel() ** 0.5:
            return f"result {i} {tuple(w.shape)} {w.dtype}: relative error {diff / max(norm, 1e-30):.1e} from " \
                   f"torch's (tolerance {tol:.0e})"
    return None




def _difference_norms(got: torch.Tensor, want: torch.Tensor) -> tuple | None:
    """(|got - want|, |want|) over want's finite elements, in chunks; None where the two are not finite alike."""
    a, b = got.detach().reshape(-1), want.detach().reshape(-1)
    diff_sq = norm_sq = 0.0
    for start in range(0, b.numel(), CHUNK):
        x, y = a[start:start + CHUNK].float(), b[start:start + CHUNK].float()
        finite = torch.isfinite(y)
        if not torch.equal(torch.isfinite(x), finite):
            return None
        all_finite = bool(finite.all())
        x, y = (x, y) if all_finite else (x[finite], y[finite])
        diff_sq += float(torch.linalg.vector_norm(x - y)) ** 2
        norm_sq += float(torch.linalg.vector_norm(y)) ** 2
    return diff_sq ** 0.5, norm_sq ** 0.5


def computes_in_half(graph) -> bool:
    """Whether any value of `graph` (an FX graph with meta values) is float16 or bfloat16."""
    return any(isinstance(v := n.meta.get("val"), torch.Tensor) and v.dtype in (torch.float16, torch.bfloat16)
               for n in graph.nodes)
