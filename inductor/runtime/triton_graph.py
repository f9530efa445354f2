"""The host side of generated Triton modules: real files in the cache dir, launchers, autotuning, the callable.

Triton reads a kernel's source with `inspect.getsource` when it compiles it, so on the GPU a kernel defined by
`exec` of a string fails: each graph's module is written to `<cache dir>/triton/<kernel names>_<hash>.py` and
imported from there. A file already present under the same hash is reused (warm start: no code generation), and
Triton's own binary cache is pointed into the same directory (unless TRITON_CACHE_DIR is set), so a new process
also skips PTX compilation.

Kernels are compiled before the first call, in parallel threads (`JITFunction.warmup` with stand-in tensors of
the right dtypes): most of a compile is ptxas and LLVM, which release the GIL, so N kernels cost about the
longest one rather than their sum."""
import concurrent.futures
import functools
import hashlib
import importlib.util
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass

import torch

from framejit.graph.shape_prop import fetch_attr

from . import cuda_graphs, launch_configs, native_launch
from .matmul import MatmulLauncher
from ..cache import cache_dir
from ..ir import FallbackKernel, Operand, output_builder, scalar_inputs
from ..config import config as switches

log = logging.getLogger("jit.inductor.triton")
COMPILE_THREADS = 8


def fixed_layout(t: torch.Tensor, stride: tuple) -> torch.Tensor:
    """t with exactly `stride` (dims of size 1 aside): generated kernels bake strides in, so a library or fallback
    result laid out differently from its meta tensor is copied into the promised layout."""
    got = t.stride()
    if got == stride or all(a == b or n == 1 for a, b, n in zip(got, stride, t.shape)):
        return t
    return torch.empty_strided(t.shape, stride, dtype=t.dtype, device=t.device).copy_(t)


def host_shortcuts() -> bool:
    """FRAMEJIT_TRITON_HOST_SHORTCUTS=0: generated modules call every library op as the graph spells it, each
    result through `fixed_layout`, every view chain view by view, and launch every kernel through its Launcher
    (the general paths; to bisect, and to measure what the shortcuts save)."""
    return switches.host_shortcuts


def triton_dir():
    return cache_dir() / "triton"


def _point_triton_cache():
    if "TRITON_CACHE_DIR" not in os.environ:
        os.environ["TRITON_CACHE_DIR"] = str(cache_dir() / "triton-bin")


def write_module(source: str, stem: str):
    """Path of the module file holding `source`; written atomically unless an identical file is there."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    path = triton_dir() / f"{stem[:60]}_{digest}.py"
    try:
        if path.read_text() == source:
            return path, True
    except (OSError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".py")
    with os.fdopen(fd, "w") as f:
        f.write(source)
    os.replace(tmp, path)
    return path, False


_loaded: dict = {}


def import_module(path):
    key = str(path)
    mod = _loaded.get(key)
    if mod is None:
        _point_triton_cache()
        name = f"framejit_triton_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # Triton resolves a kernel's globals through its module
        spec.loader.exec_module(mod)
        _loaded[key] = mod
    return mod


def make_fallback(kernel):
    """A torch fallback as the module calls it: its operands in, the arguments lowering saved around them."""
    def call(*tensors):
        fill = lambda a: tensors[a.index] if isinstance(a, Operand) else a
        args = torch.fx.node.map_aggregate(kernel.args, fill)
        kwargs = torch.fx.node.map_aggregate(kernel.kwargs, fill)
        return kernel.target(*args, **kwargs)
    return call


def _specialization(args) -> tuple:
    """What Triton specializes a compiled kernel on, per argument: a pointer's 16-byte alignment; an int's
    being 1, a multiple of 16, or wider than 32 bits. A compiled kernel is only valid for arguments that agree."""
    key = []
    for a in args:
        if isinstance(a, torch.Tensor):
            key.append(a.data_ptr() % 16 == 0)
        elif type(a) is int:
            key.append((a == 1, a % 16 == 0, -2 ** 31 <= a < 2 ** 31))
        else:
            key.append(None)
    return tuple(key)


_current_stream = native_launch.current_stream

# A kernel's launch with fixed sizes through Triton's launcher (FRAMEJIT_NATIVE_LAUNCH=0, or a kernel our C
# launcher does not cover), once compiled for 16-byte aligned tensors: every argument is a tensor, so Triton's
# specialization of a call is only which pointers are aligned, and when all are (every buffer `call` allocates,
# every weight), so is their bitwise or. Spelled per arity: explicit `a0.data_ptr()` calls and arguments cost half
# of a loop or `map` over `*args` (~0.5 us against ~0.9 us per launch on a dev CPU). Our C launcher does the
# same check itself (`Kernel.bind`).
_FAST_LAUNCH = """def launch({args}):
    if ({pointers}) & 15:  # a tensor off 16-byte alignment: the general path finds or compiles its kernel
        return general({args})
    run(g0, g1, g2, stream(device), function, metadata, None, None, None, {args}{constexprs})
    entry.hits += 1
"""


def fast_launch(entry, grid: tuple, n_args: int, general):
    """The launch function for `n_args` tensors with the compiled kernel `entry` (as DirectLaunch keeps it for
    aligned tensors): any call with a misaligned one goes to `general` (the launcher's own path)."""
    if not isinstance(entry, TritonEntry):
        return entry.bind(tuple(grid), general)  # our C launcher: counts its launches in `entry`
    args = ", ".join(f"a{i}" for i in range(n_args))
    namespace = {"run": entry.run, "function": entry.function, "metadata": entry.metadata, "device": entry.device,
                 "general": general, "entry": entry, "stream": _current_stream}
    namespace.update(zip(("g0", "g1", "g2"), (tuple(grid) + (1, 1))[:3]))
    namespace.update((f"c{i}", c) for i, c in enumerate(entry.constexprs))
    exec(_FAST_LAUNCH.format(args=args, pointers=" | ".join(f"a{i}.data_ptr()" for i in range(n_args)),
                             constexprs="".join(f", c{i}" for i in range(len(entry.constexprs)))), namespace)
    return namespace["launch"]


def _active(hook) -> bool:
    """A launch hook that does something: not None, and not one of Triton's empty `HookChain`s."""
    return hook is not None and getattr(hook, "calls", None) != []


class TritonEntry:
    """A compiled kernel launched through Triton's own launcher: `CompiledKernel.run(grid0, grid1, grid2, stream,
    function, packed_metadata, launch_metadata, enter_hook, exit_hook, *args)` with every kernel parameter in
    `args`, constexprs included (what `JITFunction.run` itself calls in the Tritons we run: 3.6 on the H100, 3.9
    in CI). Called like our C launcher: `entry(grid0, grid1, grid2, *args)`."""

    def __init__(self, kernel, device: int, constexprs: tuple):
        kernel._init_handles()  # loads the binary and builds Triton's launcher: `function` and `run` exist now
        self.run, self.function, self.metadata = kernel.run, kernel.function, kernel.packed_metadata
        self.device, self.constexprs = device, constexprs
        self.hits = 0  # launches made, fast_launch's included (as our C launcher counts them)

    def __call__(self, g0, g1, g2, *args):
        self.run(g0, g1, g2, _current_stream(self.device), self.function, self.metadata, None, None, None, *args,
                 *self.constexprs)
        self.hits += 1


class DirectLaunch:
    """Launches compiled kernels without `JITFunction.run`, whose argument binding, specialization key and cache
    lookup cost several microseconds per launch (as much as a small kernel's whole run). Compiled kernels are
    kept per specialization (`_specialization`), each launched through our C launcher (runtime/native_launch.py) or,
    where that does not cover the kernel, Triton's (TritonEntry). With launch hooks set (a profiler), under the
    interpreter, or with FRAMEJIT_DIRECT_LAUNCH=0, `usable` is False and every launch takes `JITFunction.run`."""

    def __init__(self, constexprs: tuple):
        self.constexprs = constexprs
        self.kernels: dict = {}
        try:
            from triton import knobs
            hooks = _active(knobs.runtime.launch_enter_hook) or _active(knobs.runtime.launch_exit_hook)
        except (ImportError, AttributeError):
            hooks = True
        self.usable = not hooks and not switches.triton_interpret and switches.direct_launch

    @property
    def hits(self) -> int:
        """Launches of the kept kernels, through this object or the fast paths it published."""
        return sum(entry.hits for entry in self.kernels.values())

    def keep(self, kernel, args) -> None:
        """Remember `kernel` (what `JITFunction.warmup` returned) for arguments specialized like `args`."""
        if not self.usable or kernel is None:
            return
        spec = _specialization(args)
        device = next(a for a in args if isinstance(a, torch.Tensor)).device.index or 0
        entry = native_launch.native_kernel(kernel, spec, device)
        if entry is None:
            try:
                entry = TritonEntry(kernel, device, self.constexprs)
            except AttributeError:  # a Triton whose compiled kernels look different: the regular path only
                self.usable = False
                return
        self.kernels[spec] = entry

    def __call__(self, grid: tuple, args) -> bool:
        """Launch if a kernel compiled for these arguments is known; False otherwise (nothing launched)."""
        entry = self.kernels.get(_specialization(args))
        if entry is None:
            return False
        entry(grid[0], grid[1] if len(grid) > 1 else 1, grid[2] if len(grid) > 2 else 1, *args)
        return True


class Launcher:
    """Launches one kernel with its grid and config; with autotuning, the first launch times the candidates on
    the real arguments, keeps the fastest and saves it. The grid is 1-D, or 2-D for a tiled kernel (rows of
    `ynumel`, columns of `xnumel`); with dynamic sizes it follows the size arguments that hold those numels."""

    def __init__(self, fn, ks, device_name: str, autotune: bool):
        self.fn, self.ks = fn, ks
        # puts the fastest way to launch into the generated module's launch table (CompiledTritonGraph)
        self.publish = None
        self.ynumel = ks.ynumel
        self.config = dict(ks.config)
        self.tune_key = launch_configs.tune_key(ks.source, ks.xnumel, ks.rnumel, device_name, self.ynumel) \
            if autotune else None
        if self.tune_key:
            tuned = launch_configs.load_tuned(self.tune_key)
            if tuned is not None:
                self.config, self.tune_key = tuned, None
        self._bind()

    def _bind(self):
        self.grid = launch_configs.grid(self.ks.mode, self.ks.xnumel, self.config, self.ynumel)
        self.launch = self.fn[self.grid]
        # the config's constexprs and launch options, and the kernel's compile options (debug for a device-side
        # assert: triton/codegen.py's KernelSource.options), which JITFunction.run reads from the same keywords
        self.kwargs = dict(self.config) | self.ks.options
        # dynamic sizes: the arguments the grid follows (None: a fixed numel)
        self.numel_args = (self.ks.xnumel_arg, self.ks.ynumel_arg)
        self.dynamic = self.numel_args != (None, None)
        names = getattr(self.fn, "arg_names", [])
        self.direct = DirectLaunch(tuple(self.config[n] for n in names if n in self.config))
        self.shortcut = host_shortcuts()
        self._refresh()

    def _refresh(self):
        """Publish `fast_launch` once the kernel for aligned tensors is known, where every argument is a tensor
        (no sizes: no int specialization) and neither the grid nor the config can change; else this launcher."""
        if self.publish is None:
            return
        dtypes = self.ks.arg_dtypes  # a size argument is an int here, a host scalar a float, not a dtype
        aligned = tuple(True if isinstance(dt, torch.dtype) else None for dt in dtypes)  # _specialization's key
        entry = self.direct.kernels.get(aligned) if self.direct.usable else None
        # floats are never specialized (their parameters are typed): our C launcher's bound call passes them on;
        # Triton's, spelled for tensors only, does not
        fixed = self.shortcut and not self.dynamic and self.tune_key is None and dtypes and \
            all(isinstance(dt, torch.dtype) or type(dt) is float and not isinstance(entry, TritonEntry)
                for dt in dtypes)
        self.publish(fast_launch(entry, self.grid, len(dtypes), self.__call__)
                     if fixed and entry is not None else self)

    def _numels(self, args) -> tuple:
        """(xnumel, ynumel) of this call."""
        x, y = self.numel_args
        return (self.ks.xnumel if x is None else args[x]), (self.ynumel if y is None else args[y])

    def __call__(self, *args):
        """The general path: autotune pending, a grid that follows the sizes, any specialization."""
        if self.tune_key is not None:
            self._tune(args)
        if self.dynamic:
            xnumel, ynumel = self._numels(args)
            grid = launch_configs.grid(self.ks.mode, xnumel, self.config, ynumel)
        else:
            grid = self.grid
        if self.direct(grid, args):
            return
        if self.direct.usable:
            # compiled (or found in Triton's cache) without launching, then launched like every later call
            self.direct.keep(self.fn.warmup(*args, grid=grid, **self.kwargs), args)
            self._refresh()
            if self.direct(grid, args):
                return
        (self.fn[grid] if self.dynamic else self.launch)(*args, **self.kwargs)

    def _tune(self, args):
        tensors = [a for a in args if isinstance(a, torch.Tensor)]  # sizes of a dynamic graph are ints
        if self.ks.in_place:  # written over an input it reads: each timing run on a copy
            args = tuple(a.clone() if i in self.ks.overwritten else a for i, a in enumerate(args))
        itemsize = max(a.element_size() for a in tensors)
        timings = []
        xnumel, ynumel = self._numels(args)
        for config in launch_configs.candidates(self.ks.mode, self.ks.xnumel, self.ks.rnumel, itemsize,
                                               ynumel=self.ynumel):
            grid = launch_configs.grid(self.ks.mode, xnumel, config, ynumel)
            try:
                ms = launch_configs.bench(lambda: self.fn[grid](*args, **config, **self.ks.options),
                                          tensors[0].is_cuda)
            except Exception as e:  # a config the compiler rejects (too many registers, shared memory)
                log.info("autotune %s: config %s failed: %s", self.ks.name, config, e)
                continue
            timings.append((ms, config))
        if timings:
            best = min(timings, key=lambda t: t[0])[1]
            launch_configs.save_tuned(self.tune_key, best, [[ms, c] for ms, c in timings])
            self.config = best
        self.tune_key = None
        self._bind()

    def warmup(self, device):
        """Compile ahead of the first call with stand-in tensors (aligned, like every buffer we allocate)."""
        stand_ins = [dt if isinstance(dt, (int, float)) else torch.empty(1, dtype=dt, device=device)
                     for dt in self.ks.arg_dtypes]  # sizes: their hints; host scalars: a float
        kernel = self.fn.warmup(*stand_ins, grid=self.grid, **self.kwargs)
        self.direct.keep(kernel, stand_ins)
        self._refresh()


@dataclass
class ModuleFacts:
    """What the host needs of a lowered graph to run its module (all a module read from the cache has of it)."""
    input_attrs: list     # per module input, the module attribute it reads (a constant), or None for an argument
    fallbacks: list       # the FallbackKernels the module calls
    output_spec: object   # pytree spec of gm's return value
    launches: int         # kernels one call launches (views launch nothing)
    # why calls are never recorded as CUDA graphs (runtime/cuda_graphs.py), or "": kernels compute written inputs'
    # final values into them (triton/planner._donated); the module takes host scalars (triton/host_scalars.py)
    ungraphable: str = ""

    @classmethod
    def of(cls, lowered) -> "ModuleFacts":
        return cls([b.attr for b in lowered.inputs], [k for k in lowered.kernels if isinstance(k, FallbackKernel)],
                   lowered.output_spec, cuda_graphs.launches(lowered),
                   "it writes its inputs" if lowered.donations else
                   "it takes host scalars" if scalar_inputs(lowered) else "")


class CompiledTritonGraph:
    """Callable with gm's signature running the generated module. `lowered` is the LoweredGraph it was generated
    from; a module read from the cache has none until asked for, when `replan()` plans the graph again."""

    def __init__(self, module, lowered, kernels, gm, device, path, autotune=False, facts=None, replan=None):
        self.module, self._lowered, self._replan, self.path = module, lowered, replan, path
        facts = facts or ModuleFacts.of(lowered)
        self.source = path.read_text()
        self.device = device
        self.fallbacks = {k.out.name: make_fallback(k) for k in facts.fallbacks}
        self.constants = []
        self.slots = []
        n_arg = 0
        for attr in facts.input_attrs:
            if attr:
                self.slots.append((True, fetch_attr(gm, attr)))
            else:
                self.slots.append((False, n_arg))
                n_arg += 1
        # per call: the inputs list is a copy of this one with the arguments put in (None where they go)
        self.template = [value if is_const else None for is_const, value in self.slots]
        self.arg_slots = [(i, value) for i, (is_const, value) in enumerate(self.slots) if not is_const]
        self.args_only = self.arg_slots == [(i, i) for i in range(len(self.slots))]
        self.returns = output_builder(facts.output_spec)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        # a kernel names its launcher (a fused matmul call site: Triton matmul or library call, runtime/matmul.py)
        launchers = {"kernel": Launcher, "matmul": MatmulLauncher}
        self.launch = {ks.name: launchers[ks.launcher](getattr(module, ks.name), ks, name, autotune)
                       for ks in kernels}
        # what the module's `call` launches through: each Launcher, or the `fast_launch` it has published
        self.calls = dict(self.launch)
        for kname, launcher in self.launch.items():
            if isinstance(launcher, Launcher):
                launcher.publish = functools.partial(self.calls.__setitem__, kname)
                launcher._refresh()
        self.graphed = cuda_graphs.graphed_call(self.launch_all, self.slots, device, gm, facts.launches, path.stem,
                                                facts.ungraphable)

    @property
    def lowered(self):
        if self._lowered is None:
            self._lowered = self._replan()
        return self._lowered

    def launch_all(self, inputs: list) -> list:
        """The flat outputs of one run of the module, kernel by kernel."""
        return self.module.call(inputs, self.device, self.fallbacks, self.calls)

    def precompile(self) -> float:
        """Compile every kernel now, in parallel; returns the seconds it took."""
        t0 = time.perf_counter()
        if switches.triton_interpret or not self.launch:
            return 0.0
        with concurrent.futures.ThreadPoolExecutor(min(COMPILE_THREADS, len(self.launch))) as pool:
            for f in [pool.submit(l.warmup, self.device) for l in self.launch.values()]:
                f.result()
        return time.perf_counter() - t0

    def _placed(self, args) -> list:
        """The module's inputs: the constants' template with the arguments put in their slots."""
        inputs = self.template.copy()
        for i, a in self.arg_slots:
            inputs[i] = args[a]
        return inputs

    def __call__(self, *args):
        inputs = args if self.args_only else self._placed(args)
        if self.graphed is not None:
            outputs = self.graphed(inputs)
            if outputs is not None:
                return self.returns(outputs)
        return self.returns(self.module.call(inputs, self.device, self.fallbacks, self.calls))  # launch_all, inlined

    def call_boxed(self, args: list):
        """__call__ on a list the caller gives up (it comes back empty): each input is freed after its last use
        in the module instead of when the call returns (training.py: the saved activations of a backward).
        CUDA graph replays keep the usual call: their inputs are copied into recorded buffers anyway."""
        if self.graphed is not None:
            result = self(*args)
            args.clear()
            return result
        inputs = args if self.args_only else self._placed(args)  # the module empties `inputs`
        if inputs is not args:
            args.clear()
        return self.returns(self.module.call(inputs, self.device, self.fallbacks, self.calls, True))
