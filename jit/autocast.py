"""torch.autocast in captured code, made explicit in the graph.

Eager autocast decides per aten op whether to cast its floating inputs (to the autocast dtype for matmuls and
convolutions, to float32 for reductions and softmax, to the widest type for cat), in C++, from lists no Python
API exposes. We ask torch instead: each call traced while autocast is on (on at the frame's entry, or in a traced
`with torch.autocast(...)`) is first run on probe tensors, shells with the real device's dispatch keys (so the
device's autocast kernels apply) whose aten ops run on meta tensors, under that autocast state and again without
it. When the two runs differ only by casts of the call's own inputs, the graph gets those casts as `.to(dtype)`
nodes before the call, and the call itself runs without autocast. Every backend then computes eager's dtypes
with no notion of autocast, and the graph runs with autocast off (`without_autocast`), since its casts are
already there. A call whose casts fall on values made inside a composite op cannot be spelled that way: it is a
graph break, and so is any break inside a traced autocast block (the frame is traced again with the block's
`with` run for real, FrameCapture)."""
from __future__ import annotations

import torch
from torch.utils._pytree import tree_leaves, tree_map

from jit.break_reasons import unsupported
from jit.variables import Var

DEVICES = ("cpu", "cuda")
_to_copy = torch.ops.aten._to_copy.default


def entry_state() -> tuple:
    """((device type, autocast dtype), ...) for each device autocast is on for now; () when off (the common case,
    one C call)."""
    if not torch._C._is_any_autocast_enabled():
        return ()
    return tuple((d, torch.get_autocast_dtype(d)) for d in DEVICES if torch.is_autocast_enabled(d))


class AutocastState:
    """The autocast state of the traced code: device type -> (enabled, dtype), the frame's entry state changed by
    the traced `with torch.autocast(...)` blocks still open."""

    def __init__(self, entry: tuple):
        self.entry = entry
        on = dict(entry)
        self.now = {d: (d in on, on.get(d) or torch.get_autocast_dtype(d)) for d in DEVICES}
        self.saved: list = []

    def enter(self, device: str, enabled: bool, dtype) -> None:
        self.saved.append((device, self.now[device]))
        self.now[device] = (enabled, dtype)

    def exit(self) -> None:
        device, prior = self.saved.pop()
        self.now[device] = prior

    @property
    def open_blocks(self) -> int:
        return len(self.saved)

    def any_on(self) -> bool:
        return any(on for on, _ in self.now.values())

    def enabled(self, device: str) -> bool:
        return self.now[_device_type(device)][0]

    def dtype(self, device: str):
        return self.now[_device_type(device)][1]


def _device_type(device) -> str:
    d = device.type if isinstance(device, torch.device) else str(device).split(":")[0]
    if d not in DEVICES:
        unsupported("autocast", f"autocast state of device type {d!r}")
    return d


class AutocastVar(Var):
    """A torch.autocast(...) made in the traced code, not yet entered."""

    def __init__(self, device: str, enabled: bool, dtype):
        self.device, self.enabled, self.dtype = device, enabled, dtype

    def python_type(self):
        return torch.autocast

    def describe(self):
        return f"torch.autocast({self.device!r}, dtype={self.dtype}, enabled={self.enabled})"


class AutocastExitVar(Var):
    """The bound __exit__ of a traced autocast block: calling it restores the state __enter__ found."""

    def python_type(self):
        import types
        return types.MethodType


def make(cls: type, args: list, kwargs: dict) -> AutocastVar:
    """torch.autocast(device_type, dtype=None, enabled=True, cache_enabled=None) and the torch.cpu.amp /
    torch.cuda.amp spellings, built for real (which checks the arguments as eager does) from constants."""
    if not all(a.is_const() for a in args) or not all(v.is_const() for v in kwargs.values()):
        unsupported("autocast", "torch.autocast with arguments computed from tensors")
    made = cls(*(a.const() for a in args), **{k: v.const() for k, v in kwargs.items()})
    device = made.device
    if device not in DEVICES:
        unsupported("autocast", f"torch.autocast for device type {device!r}")
    return AutocastVar(device, bool(made._enabled), made.fast_dtype)


def is_autocast_class(cls) -> bool:
    return isinstance(cls, type) and issubclass(cls, torch.amp.autocast_mode.autocast)


# ---- what autocast does to one call -------------------------------------------------------------------------

class _Probe(torch.Tensor):
    """A tensor with no data that claims the real device (so that device's autocast kernels run for it) and runs
    each aten op on its meta twin, noting the call in the probe run's `calls`."""
    calls: list | None = None

    @staticmethod
    def __new__(cls, meta: torch.Tensor, device: torch.device):
        made = torch.Tensor._make_wrapper_subclass(cls, meta.shape, strides=meta.stride(),
                                                   storage_offset=meta.storage_offset(), dtype=meta.dtype,
                                                   device=device)
        made.meta, made.real_device = meta, device
        return made

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        device = next(a.real_device for a in tree_leaves((args, kwargs)) if isinstance(a, _Probe))
        unwrap = (lambda a: a.meta if isinstance(a, _Probe) else a)
        # a tensor the op makes on the probes' device (cross_entropy's on CUDA) is made on meta as well
        meta_kwargs = {k: "meta" if k == "device" and v is not None else v for k, v in kwargs.items()}
        out = func(*tree_map(unwrap, args), **tree_map(unwrap, meta_kwargs))
        out = tree_map(lambda o: _Probe(o, device) if isinstance(o, torch.Tensor) else o, out)
        _Probe.calls.append((func, args, kwargs, out))
        return out


class Recording:
    """What one probe run did: `calls` ((op, args, kwargs, result) per aten op, probes in place of tensors) and
    what the run returned."""

    def __init__(self, calls: list, result):
        self.calls, self.result = calls, result

    @property
    def log(self) -> list:
        """(op, id of its first argument if a probe, its dtype= argument) per aten op."""
        return [(func, id(args[0]) if args and isinstance(args[0], _Probe) else None, kwargs.get("dtype"))
                for func, args, kwargs, _ in self.calls]


def _run_logged(run, probe_args, probe_kwargs, state: dict) -> Recording:
    """The aten ops of `run(*probe_args, **probe_kwargs)` under autocast `state` (device -> (enabled, dtype))."""
    prior = {d: (torch.is_autocast_enabled(d), torch.get_autocast_dtype(d)) for d in DEVICES}
    _Probe.calls = calls = []
    try:
        for d, (on, dtype) in state.items():
            torch.set_autocast_enabled(d, on)
            torch.set_autocast_dtype(d, dtype)
        result = run(probe_args, probe_kwargs)
    finally:
        for d, (on, dtype) in prior.items():
            torch.set_autocast_enabled(d, on)
            torch.set_autocast_dtype(d, dtype)
        _Probe.calls = None
    return Recording(calls, result)


class Replay:
    """An op whose autocast kernel does more than cast its inputs (CUDA's cross_entropy: log_softmax in bf16, its
    result cast to float32 for nll_loss): recorded as the aten ops autocast ran (`recording.calls`), each input
    probe standing for its TensorVar (`var_of`: id(probe) -> TensorVar)."""

    def __init__(self, recording: Recording, var_of: dict):
        self.recording, self.var_of = recording, var_of

    def replayable(self) -> bool:
        """Every tensor an aten call reads is an input or an earlier call's result, and so is what the op returns."""
        known = set(self.var_of)
        for _, args, kwargs, out in self.recording.calls:
            if any(isinstance(a, torch.Tensor) and id(a) not in known for a in tree_leaves((args, kwargs))):
                return False
            known |= {id(o) for o in tree_leaves(out) if isinstance(o, torch.Tensor)}
        leaves = tree_leaves(self.recording.result)
        return bool(leaves) and all(isinstance(o, torch.Tensor) and id(o) in known for o in leaves)


# Ops on autocast's lower-precision list for every device it supports here, whose rule is the list's rule: each
# floating input that is not float64 is cast to the autocast dtype. Used where probes cannot run the op.
LOWER_PRECISION = frozenset({"scaled_dot_product_attention", "linear", "matmul", "mm", "bmm", "addmm", "baddbmm",
                             "conv1d", "conv2d", "conv3d"})


def _lower_precision_casts(state: AutocastState, tensors: list) -> dict:
    found = {}
    for t in tensors:
        on, dtype = state.now.get(t.device.type, (False, None))
        if on and t.example.is_floating_point() and t.example.dtype not in (torch.float64, dtype):
            found[id(t)] = (t, dtype)
    return found


def casts(state: AutocastState, tensors: list, meta_args, meta_kwargs, run, name: str) -> dict:
    """{id(TensorVar): (TensorVar, dtype)} for each of the call's input `tensors` autocast casts before the call,
    {} for none. `meta_args` / `meta_kwargs` hold the tensors' meta examples; `run(args, kwargs)` calls the op."""
    devices = {id(t.example): t.device for t in tensors}
    probes = {}

    def probe(x):
        if isinstance(x, torch.Tensor) and id(x) in devices:
            shell = torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device="meta")
            made = probes.get(id(x))  # one probe per tensor, however often it is passed (x @ x)
            if made is None:
                made = probes[id(x)] = _Probe(shell, devices[id(x)])
            return made
        return x

    probe_args, probe_kwargs = tree_map(probe, meta_args), tree_map(probe, meta_kwargs)
    try:
        with torch.no_grad():
            recording = _run_logged(run, probe_args, probe_kwargs, state.now)
            autocast_log = recording.log
    except (NotImplementedError, RuntimeError, TypeError) as e:
        if name in LOWER_PRECISION:  # probes cannot run it (CUDA attention makes real tensors inside)
            return _lower_precision_casts(state, tensors)
        # not knowing the casts must never mean none (a bf16 loss where eager's is float32): the op runs eagerly,
        # under the real autocast, and raises there if it is wrong for its inputs
        unsupported("autocast", f"{name}: its autocast casts could not be worked out ({type(e).__name__}: "
                                f"{str(e).splitlines()[0] if str(e) else ''})")
    # Autocast's kernel for an op casts (some of) its inputs, then runs the op as it runs without autocast on
    # those dtypes: the casts are the first conversion of each input, the rest must be exactly what the op runs,
    # autocast off, on its inputs cast so (the op may choose other kernels for the new dtypes: CUDA's attention).
    inputs, cast_to, rest = {id(p) for p in probes.values()}, {}, []
    for func, first, dtype in autocast_log:
        if func is _to_copy and first in inputs and dtype is not None and first not in cast_to:
            cast_to[first] = dtype
        else:
            rest.append(func)
    var_of = {id(p): next(t for t in tensors if id(t.example) == key) for key, p in probes.items()}
    if not any(func is _to_copy for func in rest) and not cast_to:
        # no cast; but autocast may have set a dtype= argument instead (CUDA's sum, prod, cumsum, softmax of
        # bfloat16 give float32: fp32_set_opt_dtype), which only a run without autocast shows
        if not any(dtype is not None for _, _, dtype in autocast_log):
            return {}  # autocast changed nothing
        plain = _plain_log(run, probe_args, probe_kwargs, state)
        if plain is not None and _kinds(autocast_log) == _kinds(plain):
            return {}
        return _replay(recording, var_of, f"{name}: autocast sets a dtype inside it, in a way not recorded")
    cast = {id(p): _Probe(p.meta.to(cast_to[id(p)]), p.real_device) for p in probes.values() if id(p) in cast_to}
    recast = (lambda x: cast.get(id(x), x))
    plain = _plain_log(run, tree_map(recast, probe_args), tree_map(recast, probe_kwargs), state)
    if plain is None or [func for func, _, _ in plain] != rest:
        # autocast casts values made inside the op: the op becomes the aten ops autocast ran, casts included
        return _replay(recording, var_of, f"{name}: autocast casts values made inside it, in a way not recorded")
    return {id(var_of[first]): (var_of[first], dtype) for first, dtype in cast_to.items()}


def _replay(recording: Recording, var_of: dict, unrecorded: str) -> Replay:
    replay = Replay(recording, var_of)
    if not replay.replayable():
        unsupported("autocast", unrecorded)
    return replay


def _kinds(log: list) -> list:
    return [(func, dtype) for func, _, dtype in log]


def _plain_log(run, probe_args, probe_kwargs, state: AutocastState) -> list | None:
    try:
        with torch.no_grad():
            return _run_logged(run, probe_args, probe_kwargs, {d: (False, dt) for d, (_, dt) in state.now.items()}).log
    except Exception:  # noqa: BLE001 - the op rejects its inputs without autocast: autocast changed something
        return None


def without_autocast(compiled, entry: tuple):
    """The graph callable run with autocast off for the devices it was on for at entry (its casts are nodes)."""
    if not entry:
        return compiled
    devices = tuple(d for d, _ in entry)

    def run(*args):
        for d in devices:
            torch.set_autocast_enabled(d, False)
        try:
            return compiled(*args)
        finally:
            for d in devices:
                torch.set_autocast_enabled(d, True)

    run.source = getattr(compiled, "source", None)
    return run
