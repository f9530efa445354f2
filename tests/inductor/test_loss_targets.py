"""A loss's class labels are indices: one outside [0, C) that is not ignore_index raises eager's IndexError at
the same call, in every backend (the decomposed loss picks its class by comparison, which alone would match no
class and return a value)."""
import warnings

import pytest
import torch
import torch.nn.functional as F

import jit
from tests.inductor.triton.support import check_fn  # noqa: F401 (sets TRITON_INTERPRET=1 without a GPU)

BACKENDS = ["numpy", "triton", "inductor"]


def _outcome(fn, *args):
    try:
        return "ok", fn(*args)
    except Exception as e:  # noqa: BLE001
        return type(e), str(e)


def cross_entropy(x, t):
    return F.cross_entropy(x * 2, t, ignore_index=-100, label_smoothing=0.1)


def nll_none(x, t):
    return F.nll_loss(torch.log_softmax(x, -1), t, reduction="none", ignore_index=1)


def spatial(x, t):
    return F.cross_entropy(x, t)


CASES = [
    (cross_entropy, (3, 4), [[1, -100, 2], [1, 5, 2], [1, -3, 2], [4, 0, 0]]),
    (nll_none, (3, 4), [[1, 1, 2], [0, 7, 1], [1, -1, 1]]),
    (spatial, (2, 4, 3), [[[1, 0, 2], [3, 3, 3]], [[1, 0, 2], [3, 4, 3]]]),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn,shape,labels", CASES, ids=[c[0].__name__ for c in CASES])
def test_labels_out_of_range_raise_as_eager(fn, shape, labels, backend):
    jit.reset()
    compiled = jit.compile(fn, backend=backend)
    x = torch.randn(*shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an internal error falling back to eager would hide the check
        # Triton's interpreter computes masked-off lanes too, in NumPy (log of their zero fill): not a fallback
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        for t in labels:
            t = torch.tensor(t)
            want, got = _outcome(fn, x, t), _outcome(compiled, x, t)
            assert want[0] == got[0], (t, want, got)
            if want[0] == "ok":
                torch.testing.assert_close(got[1], want[1])
            else:
                assert got[1] == want[1]
