"""Every switch of inductor/, in one place: its environment variable, its type, its default, what it does.

    from framejit.inductor.config import config
    config.triton_mm                  # the value in effect: an override, else the environment, else the default
    with config.override(cuda_graphs=False):
        ...                           # overrides are typed and checked: an unknown name or a wrong type raises
    print(config)                     # every switch, its value and its variable (jit.config can show this)

Switches are read where a graph is compiled, from the environment as it is then (tests and benchmarks flip
them between compiles in one process; Triton's own TRITON_INTERPRET must be set before triton is imported,
which may be after this module is), parsed here and nowhere else. An environment variable spelled
FRAMEJIT_* that names no switch is reported once (`unknown_variables`), so a typo cannot pass silently.

FRAMEJIT_NUMPY_THREADS is read by the generated NumPy modules themselves (runtime/numpy_helpers.py): a module
written by `export_numpy` runs without framejit installed."""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("jit.inductor")


def _on_unless_0(text: str) -> bool:
    return text != "0"


def _on_if_1(text: str) -> bool:
    return text == "1"


def _on_unless_empty_or_0(text: str) -> bool:
    return text not in ("", "0")


def _names(text: str) -> tuple:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _cache_dir(text: str) -> Path:
    return Path(text or Path.home() / ".cache" / "framejit")


@dataclass(frozen=True)
class Switch:
    """One switch: the variable it is read from, how its text parses (`unset`: the text an absent variable
    stands for), the Python type an override must have, and what it does."""
    variable: str
    parse: Callable[[str], Any]
    unset: str
    type: type
    doc: str
    choices: tuple = ()

    def read(self) -> Any:
        return self.parse(os.environ.get(self.variable, self.unset))


SWITCHES = {
    "cache_dir": Switch(
        "FRAMEJIT_CACHE_DIR", _cache_dir, "", Path,
        "compiled code, tuned configs and Triton binaries on disk (default ~/.cache/framejit)"),
    "cpu_backend": Switch(
        "FRAMEJIT_CPU_BACKEND", str, "measure", str,
        "default backend on CPU tensors: 'measure' keeps the faster of NumPy code and the captured graph, "
        "'numpy' or 'torch' takes that one unmeasured (numpy/cpu_choice.py)", ("measure", "numpy", "torch")),
    "c_kernels": Switch(
        "FRAMEJIT_C_KERNELS", str, "auto", str,
        "NumPy-backend kernels written as C loops and compiled by the system's C compiler (c/codegen.py): 'auto' "
        "those of >= 4096 elements when a compiler exists, 'always' every kernel C can express (the tests), "
        "'never' none", ("auto", "always", "never")),
    "numpy_threads": Switch(
        "FRAMEJIT_NUMPY_THREADS", int, "0", int,
        "threads row-blocked NumPy kernels use, 0: one per core (read by the generated modules themselves)"),
    "numpy_blas_threads": Switch(
        "FRAMEJIT_NUMPY_BLAS_THREADS", int, "1", int,
        "OpenBLAS threads while generated NumPy code runs (runtime/blas_threads.py: more fight torch's own pool "
        "for the cores), 0: leave NumPy's BLAS as it is"),
    "triton_interpret": Switch(
        "TRITON_INTERPRET", _on_if_1, "", bool,
        "Triton's CPU interpreter (set before triton is imported): the Triton backend takes CPU tensors; the "
        "tests' way to run kernels without a GPU"),
    "autotune": Switch(
        "FRAMEJIT_AUTOTUNE", _on_unless_empty_or_0, "0", bool,
        "time launch configs (and each fused matmul call site's two paths) at the first call, saved on disk "
        "(runtime/launch_configs.py); also `autotune=True` to the Triton backend"),
    "triton_mm": Switch(
        "FRAMEJIT_TRITON_MM", _on_if_1, "", bool,
        "every matmul that can takes the Triton matmul with its epilogue fused, untimed (triton/matmul.py)"),
    "residual_gemm": Switch(
        "FRAMEJIT_RESIDUAL_GEMM", _on_unless_0, "1", bool,
        "residual sums added by the library matmul in place, `acc.addmm_(g, W.t())` (triton/residual.py)"),
    "triton_fallback": Switch(
        "FRAMEJIT_TRITON_FALLBACK", _names, "", tuple,
        "ops sent to torch by the Triton backend, comma-separated packets or overloads: aten.gelu,aten.pow."
        "Tensor_Scalar (triton/fallback.py)"),
    "host_shortcuts": Switch(
        "FRAMEJIT_TRITON_HOST_SHORTCUTS", _on_unless_0, "1", bool,
        "generated host code skips work per call: probed library layouts used as returned, x @ W.t() + b as "
        "F.linear, view chains as one as_strided (triton/host.py)"),
    "direct_launch": Switch(
        "FRAMEJIT_DIRECT_LAUNCH", _on_unless_0, "1", bool,
        "kernels compiled per argument specialization and launched without JITFunction.run "
        "(runtime/triton_graph.DirectLaunch)"),
    "native_launch": Switch(
        "FRAMEJIT_NATIVE_LAUNCH", _on_unless_0, "1", bool,
        "our C launcher (runtime/native_launch.py) where it covers the kernel, else Triton's"),
    "cuda_graphs": Switch(
        "FRAMEJIT_CUDA_GRAPHS", _on_unless_0, "1", bool,
        "Triton graphs of >= 2 launches recorded once as CUDA graphs and replayed (runtime/cuda_graphs.py)"),
    "check_first_call": Switch(
        "FRAMEJIT_CHECK_FIRST_CALL", _on_unless_0, "1", bool,
        "the first forward and backward of each compiled training graph compared with the graph run in torch; "
        "a disagreement warns and runs that graph in torch from then on (first_call_check.py)"),
    "ddp_split": Switch(
        "FRAMEJIT_DDP_SPLIT", _on_unless_0, "1", bool,
        "training graphs compiled inside DistributedDataParallel's forward are split at its gradient buckets, "
        "one compiled region per bucket, so all-reduces overlap the backward (ddp_buckets.py)"),
}


class Config:
    """The switches' values: an override set here, else the environment variable, else its default."""

    def __init__(self):
        object.__setattr__(self, "_overrides", {})

    def __getattr__(self, name: str) -> Any:
        switch = SWITCHES.get(name)
        if switch is None:
            raise AttributeError(f"framejit.inductor.config has no switch {name!r}; switches: {', '.join(SWITCHES)}")
        overrides = object.__getattribute__(self, "_overrides")
        return overrides[name] if name in overrides else switch.read()

    def __setattr__(self, name: str, value: Any) -> None:
        self._overrides[name] = _checked(name, value)

    def __delattr__(self, name: str) -> None:
        """Back to the environment."""
        _checked(name, getattr(self, name))
        self._overrides.pop(name, None)

    @contextlib.contextmanager
    def override(self, **values):
        """Set switches for the duration of a `with` block, restoring what was overridden before."""
        checked = {name: _checked(name, v) for name, v in values.items()}
        before = {name: self._overrides[name] for name in checked if name in self._overrides}
        self._overrides.update(checked)
        try:
            yield self
        finally:
            for name in checked:
                if name in before:
                    self._overrides[name] = before[name]
                else:
                    self._overrides.pop(name, None)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in SWITCHES}

    def __repr__(self) -> str:
        lines = ["framejit.inductor.config:"]
        for name, switch in SWITCHES.items():
            origin = "set here" if name in self._overrides else \
                "from the environment" if switch.variable in os.environ else "default"
            lines.append(f"  {name} = {getattr(self, name)!r}  ({switch.variable}, {origin}): {switch.doc}")
        return "\n".join(lines)


def _checked(name: str, value: Any) -> Any:
    switch = SWITCHES.get(name)
    if switch is None:
        raise AttributeError(f"framejit.inductor.config has no switch {name!r}; switches: {', '.join(SWITCHES)}")
    if isinstance(value, str) and switch.type is Path:
        value = Path(value)
    if switch.type is tuple and isinstance(value, list):
        value = tuple(value)
    if not isinstance(value, switch.type) or (switch.type is int and isinstance(value, bool)):
        raise TypeError(f"framejit.inductor.config.{name} must be {switch.type.__name__}, got {type(value).__name__}")
    if switch.choices and value not in switch.choices:
        raise ValueError(f"framejit.inductor.config.{name} must be one of {', '.join(switch.choices)}, got {value!r}")
    return value


checked = _checked  # jit.compile(options=...) checks its values here (jit/backends.py)


def unknown_variables() -> list:
    """FRAMEJIT_* environment variables that name no switch (a typo, or a switch that is gone)."""
    known = {s.variable for s in SWITCHES.values()}
    return sorted(v for v in os.environ if v.startswith("FRAMEJIT_") and v not in known)


config = Config()
for _variable in unknown_variables():
    log.warning("%s names no inductor switch; the switches: %s", _variable,
                ", ".join(s.variable for s in SWITCHES.values()))
