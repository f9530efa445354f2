"""CUDA graphs for Triton graphs: one graph launch per call instead of every kernel's launch.

A generated module's `call` does host work per kernel (argument packing, Triton's launcher, library dispatch):
~20 us per launch on the H100 host, so a 4-layer GPT at batch 1 spends ~1.3 ms on the host for ~0.3 ms of GPU
work. Recorded once as a CUDA graph, a call is one `cudaGraphLaunch`; kernels inside a graph also start closer
to each other on the GPU than kernels launched one by one.

A replay reads and writes the addresses the recording saw, so a recording is used only where that is sound:
  * the graph draws no random numbers, launches at least two kernels and writes none of its inputs (a module
    computing written inputs' final values into them, triton/planner._donated, is never recorded); with dynamic
    sizes, one set of recordings per set of argument sizes (the sizes are baked into the recorded launches);
  * inputs are read in place where they are at the same address as in the call before (constants, parameters
    passed as arguments, a caller's static buffer); a replay checks each of those addresses, and one that moved
    (`p.data = t`, a new tensor) records again, copying that input from then on (a few times at most, then
    the graph stops recording);
  * other arguments are copied into buffers the recording owns (a caller's tensor is never written), where those
    copies cost less than the launches they save (COPY_BYTES_PER_LAUNCH);
  * no output may share memory with an input (it would be a view of the recording's buffer, not of the caller's
    tensor): such graphs are never replayed;
  * outputs live in the recording's memory, which the next replay overwrites: a call replays a recording only
    when no tensor from its last replay is still alive anywhere (the storages' use counts), else it takes a
    second recording, and with both busy it runs the module's launches as usual. `out = f(x)` in a loop
    alternates between two recordings. A replay on another stream than the last waits for the last;
  * a recording keeps its own memory pool (the call's intermediates and outputs stay reserved): one that leaves
    less than MEMORY_HEADROOM of the GPU's memory unallocated is dropped, and so is one whose outputs hold more
    than HELD_BYTES_PER_LAUNCH per launch it saves (a training forward returns its saved activations: two
    recordings of a 6-layer GPT's held 1.6 GB beyond eager's step, to save launches the GPU hid anyway). A
    training backward's outputs are exempt: they are the parameters' gradients, which autograd keeps in `.grad`
    until the optimizer is done, as eager's do; and its ~500 launches a step are host time the GPU does not hide
    (HF GPT-2 on the H100: the GPU idle 2.5 ms at the backward's start and 2.4 ms at its end);
  * inside a user's own graph capture, on another current device, or under FRAMEJIT_CUDA_GRAPHS=0, calls run
    the launches as usual.
The first call always runs as usual (it autotunes and compiles what its launchers compile lazily); the second
records."""
from __future__ import annotations

import logging
import threading

import torch

from ..ir import Kernel, dense
from .native_launch import current_stream
from ..config import config

log = logging.getLogger("jit.inductor.triton")
COPY_BYTES_PER_LAUNCH = 1 << 20  # a 1 MiB argument copy (~1 us at 3 TB/s, plus its launch) per launch saved
HELD_BYTES_PER_LAUNCH = 1 << 20  # outputs a recording keeps alive, per launch it saves
MAX_RECORDINGS = 2  # per set of argument sizes
MAX_SIZES = 8
MAX_RERECORDS = 8
MEMORY_HEADROOM = 0.1  # a recording is dropped where it leaves less than this share of the GPU's memory
_use_count = getattr(torch._C, "_storage_Use_Count", None)


def recorder(device: torch.device):
    """How graphs are recorded on `device` (a function like `record_cuda`), or None where they are not."""
    if not config.cuda_graphs or _use_count is None:
        return None
    return RECORDERS.get(device.type)


def record_cuda(run, inputs: list, device: torch.device):
    """(replay, outputs) of `run(inputs)` recorded as a CUDA graph; its work is not run (replay does that)."""
    current = torch.cuda.current_stream(device)
    stream = torch.cuda.Stream(device)
    stream.wait_stream(current)
    with torch.cuda.stream(stream):
        run(inputs)  # once on the recording stream: library handles and workspaces for that stream exist
        graph = torch.cuda.CUDAGraph()
        graph.capture_begin(capture_error_mode="thread_local")
        try:
            outputs = run(inputs)
        finally:
            graph.capture_end()
    current.wait_stream(stream)
    return graph.replay, outputs


RECORDERS = {"cuda": record_cuda}  # device type -> recorder (tests add one for the CPU interpreter)


class Recording:
    """One recorded graph. Inputs at `copied` (positions in the input list) are copied into buffers it owns before
    each replay; the others are read where they were at the recording, valid while `ptrs` still match."""

    def __init__(self, record, run, inputs: list, copied: list, in_place: list, device):
        self.copied, self.buffers = copied, []
        self.stream = torch.cuda.current_stream(device) if device.type == "cuda" else None
        static = list(inputs)
        for i in copied:
            a = inputs[i]
            static[i] = torch.empty_strided(a.shape, a.stride(), dtype=a.dtype, device=a.device).copy_(a)
            self.buffers.append(static[i])
        self.in_place = in_place
        self.ptrs = [inputs[i].data_ptr() for i in in_place]
        self.replay, outputs = record(run, static, device)
        self.outputs = list(outputs)
        self.static = static  # the recorded kernels read these addresses
        shared = {t.untyped_storage().data_ptr() for t in static if isinstance(t, torch.Tensor)}
        self.aliased = any(isinstance(o, torch.Tensor) and o.untyped_storage().data_ptr() in shared
                           for o in self.outputs)
        # what this object holds of each output storage; a count above it means a caller's tensor is alive
        self.storages = list({o.untyped_storage().data_ptr(): o.untyped_storage()
                              for o in self.outputs if isinstance(o, torch.Tensor)}.values())
        self.baseline = [_use_count(st._cdata) for st in self.storages]

    def free(self) -> bool:
        """No tensor handed out by the last replay is alive."""
        return all(_use_count(st._cdata) == n for st, n in zip(self.storages, self.baseline))

    def moved(self, inputs: list) -> bool:
        """An input read in place is somewhere else in this call."""
        return any(inputs[i].data_ptr() != p for i, p in zip(self.in_place, self.ptrs))

    def __call__(self, inputs: list) -> list:
        if self.stream is not None and current_stream(self.stream.device_index) != self.stream.cuda_stream:
            # the last replay ran on another stream: this one must not overwrite its buffers before it is done
            current = torch.cuda.current_stream(self.stream.device)
            current.wait_stream(self.stream)
            self.stream = current
        for i, buf in zip(self.copied, self.buffers):
            buf.copy_(inputs[i])
        self.replay()
        # new tensor objects over the recording's storage: each holds a use of it while the caller keeps it
        return [o.detach() if isinstance(o, torch.Tensor) else o for o in self.outputs]


class _Sizes:
    """The recordings of one set of argument sizes, and where its arguments were at the last call."""

    def __init__(self):
        self.recordings, self.skip, self.last = [], False, None


class GraphedCall:
    """Runs `run(inputs)` (the module's launches) through CUDA graph recordings where sound (module docstring).
    `__call__` returns the flat outputs, or None where the caller must run the launches itself.

    Which inputs a recording reads in place: the graph's constants, and each argument found at the same address
    in the call before (parameters passed as arguments, a static input buffer); the other arguments are copied.
    A graph with dynamic sizes is recorded per set of argument sizes, for up to MAX_SIZES of them."""

    def __init__(self, run, slots: list, device: torch.device, launches: int, name: str, record=record_cuda,
                 dynamic: bool = False, gradients: bool = False):
        self.run, self.device, self.launches, self.name, self.record = run, device, launches, name, record
        self.dynamic = dynamic
        self.gradients = gradients  # a training backward: its outputs are held as .grad anyway
        self.arg_slots = [i for i, (is_const, _) in enumerate(slots) if not is_const]
        self.const_slots = [i for i, (is_const, _) in enumerate(slots) if is_const]
        self.sizes: dict = {}  # argument sizes (None for a fixed-size graph) -> _Sizes
        self.replays = 0
        self.rerecords = 0
        self.off = None  # why this graph is no longer recorded, once it is not
        self.why = None  # why the last recording was declined
        self.cuda = device.type == "cuda"
        # one caller at a time between choosing a recording and handing out its results (threads share it)
        self.lock = threading.Lock()

    @property
    def recordings(self) -> list:
        return [r for entry in self.sizes.values() for r in entry.recordings]

    def _decline(self, why: str, entry: _Sizes | None = None):
        """Stop recording this set of sizes (`entry`) or, without one, the whole graph."""
        self.why = why
        if entry is not None:
            entry.skip, entry.recordings = True, []
        else:
            self.off = why
            self.sizes.clear()
        log.info("CUDA graphs off for %s%s: %s", self.name, " at these sizes" if entry is not None else "", why)

    def __call__(self, inputs: list):
        if self.off is not None:
            return None
        with self.lock:
            return self._call(inputs)

    def _call(self, inputs: list):
        if self.cuda and (torch.cuda.is_current_stream_capturing() or
                          torch.cuda.current_device() != self.device.index):
            return None
        key = tuple((inputs[i].shape, inputs[i].stride()) for i in self.arg_slots) if self.dynamic else None
        entry = self.sizes.get(key)
        if entry is None:
            if len(self.sizes) >= MAX_SIZES:
                return None
            entry = self.sizes[key] = _Sizes()
        if entry.skip:
            return None
        for rec in list(entry.recordings):
            if rec.moved(inputs):  # recorded again below, copying what moved
                entry.recordings.remove(rec)
                self.rerecords += 1
            elif rec.free():
                self.replays += 1
                return rec(inputs)
        if self.rerecords > MAX_RERECORDS:
            self._decline(f"inputs read in place moved {self.rerecords} times")
            return None
        last, entry.last = entry.last, [inputs[i].data_ptr() for i in self.arg_slots]
        if last is None:  # the first call at these sizes runs as usual (autotuning, lazily compiled launchers)
            return None
        if len(entry.recordings) >= MAX_RECORDINGS:
            return None  # every recording's outputs are still held by the caller
        return self._new(inputs, entry, last)

    def _new(self, inputs: list, entry: _Sizes, last: list):
        copied = [i for i, p, q in zip(self.arg_slots, last, entry.last) if p != q]
        in_place = self.const_slots + [i for i, p, q in zip(self.arg_slots, last, entry.last) if p == q]
        args = [inputs[i] for i in copied]
        if not all(isinstance(a, torch.Tensor) and a.device == self.device and dense(a.shape, a.stride()) for a in args):
            self._decline("an argument is not a dense tensor on the graph's device", entry)
            return None
        size = sum(a.numel() * a.element_size() for a in args)
        if size > self.launches * COPY_BYTES_PER_LAUNCH:
            self._decline(f"copying the arguments ({size / 2 ** 20:.1f} MiB) would cost more than "
                          f"{self.launches} launches save", entry)
            return None
        try:
            rec = Recording(self.record, self.run, inputs, copied, in_place, self.device)
        except Exception as e:  # noqa: BLE001  (an op the recording refuses: a host sync, an unsafe API call)
            self._decline(f"recording failed: {type(e).__name__}: {e}")
            return None
        if rec.aliased:
            self._decline("an output shares memory with an input")
            return None
        held = sum(st.nbytes() for st in rec.storages)
        if held > self.launches * HELD_BYTES_PER_LAUNCH and not self.gradients:
            self._decline(f"a recording keeps its outputs ({held / 2 ** 20:.0f} MiB) alive, more than "
                          f"{self.launches} launches are worth", entry)
            return None
        if self.cuda:
            used, total = torch.cuda.memory_allocated(self.device), torch.cuda.get_device_properties(
                self.device).total_memory
            if used > (1 - MEMORY_HEADROOM) * total:
                self._decline(f"a recording holds its intermediates and outputs, and {used / 2 ** 30:.1f} of "
                              f"{total / 2 ** 30:.1f} GiB are allocated with it", entry)
                return None
        entry.recordings.append(rec)
        log.info("CUDA graph recorded for %s (%d launches, %d of %d arguments copied; %d recordings)", self.name,
                 self.launches, len(copied), len(self.arg_slots), len(self.recordings))
        self.replays += 1
        return rec(inputs)


def launches(lowered) -> int:
    """How many kernels one call of the lowered graph launches (views launch nothing)."""
    return sum(1 for k in lowered.kernels if not (isinstance(k, Kernel) and k.is_view))


def graphed_call(run, slots: list, device: torch.device, gm: torch.fx.GraphModule, count: int, name: str,
                 ungraphable: str = ""):
    """A GraphedCall running `run` (one call's `count` launches, kernel by kernel) for the compiled graph, or None
    where this device records no graphs or this graph is never recorded (logged). `ungraphable`: why the module
    never is (runtime/triton_graph.ModuleFacts): one computing written inputs' final values into them (an
    optimizer's step) would have the recording's run before the capture write them once more, and its outputs
    would be its own copies of them; one taking host scalars would replay the values it was recorded with."""
    from framejit.graph.autodiff.partition import BACKWARD_GRAPH
    from framejit.graph.effects import is_random
    from framejit.graph.size_variants import dynamic_graph
    record = recorder(device)
    if record is None:
        return None
    why = "it draws random numbers" if any(is_random(n) for n in gm.graph.nodes) else \
        "one launch" if count < 2 else ungraphable or None
    if why is not None:
        log.info("CUDA graphs off for %s: %s", name, why)
        return None
    return GraphedCall(run, slots, device, count, name, record, dynamic=dynamic_graph(gm),
                       gradients=type(gm).__name__ == BACKWARD_GRAPH)
