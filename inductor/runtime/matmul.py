"""The run-time half of the fused Triton matmul (inductor/triton/matmul.py writes its kernel): per call site,
`MatmulLauncher` runs the Triton kernel or the library call + epilogue kernel, whichever was chosen: timed at
the first call with FRAMEJIT_AUTOTUNE=1 (cached on disk), FRAMEJIT_TRITON_MM=1 forcing the Triton kernel,
else the library path (`heuristic`)."""
import logging

import torch

from . import launch_configs
from .launch_configs import pow2
from ..config import config as switches

log = logging.getLogger("jit.inductor.triton")


def configs(m: int, n: int, k: int, itemsize: int) -> list:
    """Tile configs to try, the default first (H100: 128x128x64 tiles, 8 warps, 3-4 stages for 16-bit)."""
    if switches.triton_interpret:  # the interpreter pays per program: few, large tiles
        return [{"BLOCK_M": min(64, max(16, pow2(m))), "BLOCK_N": min(64, max(16, pow2(n))),
                 "BLOCK_K": min(64, max(16, pow2(k))), "GROUP_M": 8, "num_warps": 4, "num_stages": 1}]
    big = [(128, 128, 64, 8, 3), (128, 256, 64, 8, 3), (256, 128, 64, 8, 3), (128, 128, 64, 4, 4),
           (64, 128, 64, 4, 4), (128, 64, 64, 4, 4)]
    if itemsize >= 4:
        big = [(128, 128, 32, 8, 3), (64, 128, 32, 4, 4), (128, 64, 32, 4, 4)]
    out = []
    for bm, bn, bk, warps, stages in big:
        if bm <= max(16, pow2(m)) and bn <= max(16, pow2(n)):
            out.append({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": min(bk, max(16, pow2(k))), "GROUP_M": 8,
                        "num_warps": warps, "num_stages": stages})
    return out or [{"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8, "num_warps": 4, "num_stages": 2}]


def forced() -> bool:
    """FRAMEJIT_TRITON_MM=1: every call site that can takes the Triton matmul, untimed."""
    return switches.triton_mm


def heuristic(m: int, n: int, k: int, dtype: torch.dtype) -> bool:
    """Whether the fused Triton matmul runs without timing (FRAMEJIT_TRITON_MM=1 forces it).

    Measured (benchmarks/gpu_matmul.py, H200, torch 2.11 / triton 3.6, best of six tile configs against cuBLAS +
    our epilogue kernel): bf16 gelu(x@w+b) 8192x4096x4096 0.412 vs 0.403 ms, a GPT MLP's c_fc + gelu 16384x768x3072
    0.208 vs 0.197 and 8192x768x3072 0.108 vs 0.104; c_proj + residual 16384x3072x768 0.122 vs 0.124 and
    16384x768x768 0.052 vs 0.053; fp32 (full-precision dot) 6.00 vs 5.46 and 1.77 vs 1.72. The fused kernel wins
    only by 1-2% where it wins and loses up to 10% elsewhere, so without timing the library call stays."""
    return forced()


class MatmulLauncher:
    """Runs one fused matmul call site: the Triton kernel, or `unfused()` (library call + epilogue kernel)."""

    def __init__(self, fn, ks, device_name: str, autotune: bool):
        self.fn, self.ks = fn, ks
        self.upcast = device_name == "cpu"  # CPU tensors: Triton's interpreter
        m, n, k = ks.mnk
        self.choice = None
        self.configs = configs(m, n, k, ks.dtype.itemsize)
        self.config = self.configs[0]
        self.tune_key = launch_configs.tune_key(ks.source, m, n * 1000003 + k, device_name) if autotune else None
        if self.tune_key:
            tuned = launch_configs.load_tuned(self.tune_key)
            if tuned is not None:
                self.choice, self.config, self.tune_key = tuned["choice"], tuned["config"], None
        if self.choice is None and self.tune_key is None:
            self.choice = "triton" if heuristic(m, n, k, ks.dtype) else "library"
        self.run = self._bound(self.config)

    def _bound(self, config):
        """The kernel with one config's grid and constant arguments fixed: per call only the operands change."""
        m, n, k = self.ks.mnk
        kernel = self.fn[(triton.cdiv(m, config["BLOCK_M"]) * triton.cdiv(n, config["BLOCK_N"]),)]
        consts = dict(config, EVEN_K=k % config["BLOCK_K"] == 0, UPCAST=self.upcast)

        def run(a, b, rest):
            kernel(a, b, *rest, m, n, k, a.stride(0), a.stride(1), b.stride(0), b.stride(1), **consts)
        return run

    def __call__(self, unfused, a, b, *rest):
        if self.choice is None:
            self._tune(unfused, a, b, rest)
        if self.choice == "triton":
            self.run(a, b, rest)
        else:
            unfused()

    def _tune(self, unfused, a, b, rest):
        timings = []
        try:
            timings.append((launch_configs.bench(unfused, a.is_cuda), "library", None))
        except Exception as e:  # noqa: BLE001
            log.info("autotune %s: library path failed: %s", self.ks.name, e)
        for config in self.configs:
            run = self._bound(config)
            try:
                timings.append((launch_configs.bench(lambda: run(a, b, rest), a.is_cuda), "triton", config))
            except Exception as e:  # noqa: BLE001  (a config the compiler rejects: registers, shared memory)
                log.info("autotune %s: config %s failed: %s", self.ks.name, config, e)
        self.timings = timings  # kept for benchmarks/gpu_matmul.py
        best = min(timings, key=lambda t: t[0]) if timings else (0.0, "library", None)
        self.choice, self.config = best[1], best[2] or self.config
        self.run = self._bound(self.config)
        launch_configs.save_tuned(self.tune_key, {"choice": self.choice, "config": self.config},
                                 [[ms, choice, c] for ms, choice, c in timings])
        self.tune_key = None

    def warmup(self, device):
        """Compiled at its first call (its launch arguments include sizes and strides)."""


try:
    import triton
except ImportError:  # pragma: no cover - the backend is not used without triton
    triton = None
