"""Launch configuration: block sizes, num_warps, num_stages from the kernel's sizes; optional autotuning.

The heuristic aims each program at ~4-16 elements per thread: enough independent 16-byte loads in flight to
cover memory latency (the H100 needs tens of KB in flight per SM to reach ~3 TB/s), few enough registers to keep
occupancy. Rows of a persistent reduction live in registers, so PERSISTENT_MAX bounds the row length at 16K
float32 values (64 KB per program across 16 warps = 32 registers per thread per live copy). A tiled pointwise
kernel (a transpose) moves a [YBLOCK, XBLOCK] tile through shared memory once per transposed input: 64x64
(16 KB of float32) per program with 8 warps, 16 elements per thread, as for the 1-D kernel.

Autotuning (FRAMEJIT_AUTOTUNE=1, or `autotune=True` to the backend) times a few neighbouring configs on the real
inputs at the first call and keeps the fastest; results are saved on disk (cache dir /autotune, keyed by the
kernel source, sizes and device name) so a later process starts with the tuned config and no timing."""
import hashlib
import json
import logging
import os
import tempfile
import time

from framejit.graph.symbolic_sizes import SymInt, bucket, decide
from ..config import config

log = logging.getLogger("jit.inductor.triton")
PERSISTENT_MAX_BYTES = 64 * 1024


def pow2(n: int) -> int:
    """The power of two >= n. For a dynamic size, its bucket: a condition of the compiled variant
    (graph/symbolic_sizes.bucket), so block sizes change O(log n) times as a size grows."""
    if isinstance(n, SymInt):
        return bucket(n, "a block size")
    return 1 << max(0, (int(n) - 1).bit_length())


def _pow2_at_most(n: int, cap: int) -> int:
    """min(cap, pow2(n)) for a power-of-two cap: one condition (n > cap / 2) for every size past the cap."""
    if decide(n, ">", cap // 2, "a block size at its cap"):
        return cap
    return pow2(n)


def persistent_max(itemsize: int) -> int:
    return max(1024, PERSISTENT_MAX_BYTES // max(itemsize, 4))


OUTER_MIN_COLUMNS = 32  # an outer (column) tile's narrowest side: 128 bytes of float32 per row, a full line


def outer_persistent_max(itemsize: int) -> int:
    """The longest reduction an outer (column) kernel holds in registers: the persistent budget over a tile
    OUTER_MIN_COLUMNS wide (512 float32 rows)."""
    return persistent_max(itemsize) // OUTER_MIN_COLUMNS


def heuristic(mode: str, xnumel: int, rnumel: int, itemsize: int = 4, ynumel: int = 1, streamed: int = 4,
              loads: int = 1) -> dict:
    """itemsize: the widest element loaded; streamed (pointwise): bytes per element of the inputs read at every
    element, broadcast operands left out; loads (pointwise): load sites per element."""
    if mode == "tiled":
        # 64x64, 8 warps: within 1% of the fastest candidate on 8192x8192 transposes and x + y.t(), fp32 and bf16
        # (H200, benchmarks/gpu_transpose.py --configs); never below 16 a side (triton_tiling.MIN_SIDE)
        xblock, yblock = max(16, _pow2_at_most(xnumel, 64)), max(16, _pow2_at_most(ynumel, 64))
        return {"XBLOCK": xblock, "YBLOCK": yblock, "num_warps": max(2, min(8, xblock * yblock // 512)),
                "num_stages": 1}
    if mode == "pointwise":
        # 8 elements per thread; 16 where the inputs read at every element total under 4 bytes per element (one
        # 16-bit input, as in an epilogue over a bf16 GEMM product): each thread then still has 32 bytes of loads
        # in flight, and twice the independent math to hide behind them. Measured on the H100 after an
        # 8192x4096 bf16 mm: the gelu epilogue 54.2 -> 53.0 us, at GPT-2's c_fc 42.3 -> 40.3; relu epilogues,
        # bf16 x * 2 and tanh alone within 0.7% either way; two bf16 inputs (a pointwise chain) 0.7% slower
        if loads >= GATHER_LOADS:
            # many loads per element (a pooling window's taps): two elements per thread, 8 warps. max_pool2d 3x3
            # s2 on the H100, 128x64x80x80: 0.152 -> 0.099 ms in float32, 0.153 -> 0.077 ms in bfloat16 against
            # 1024 / 4 warps (the taps' loads of 8 elements per thread do not fit in flight)
            block = _pow2_at_most(xnumel, 512)
            return {"XBLOCK": block, "num_warps": max(1, min(8, block // 64)), "num_stages": 1}
        block = _pow2_at_most(xnumel, 2048 if streamed < 4 else 1024)
        warps = max(1, min(4, block // 128))
        return {"XBLOCK": block, "num_warps": warps, "num_stages": 1}
    if mode == "persistent":
        rblock = pow2(rnumel)
        # several short rows per program, so each program still moves ~4K elements
        xblock = max(1, _pow2_at_most(xnumel, min(4096 // rblock, 64)))
        elems = xblock * rblock
        # rows up to 1024 wide: a warp per 1024 elements, so each row is reduced inside one warp (measured on the
        # H200, benchmarks/gpu_norm_configs.py: a GPT's 16384x768 layer_norm 25 -> 18 us in bf16, 34 -> 30 us in
        # fp32 against 16 warps); longer rows: a warp per KB of the widest input (256 float32 or 512 bfloat16
        # values: two 16-byte loads per thread; a 32768x4096 layer_norm on the H200 took 134.8 us in bf16 with 8
        # warps against 159.2 with 16, 260.6 us in fp32 with 16 against 264.3 with 8)
        per_warp = 1024 if rblock <= 1024 else 1024 // min(itemsize, 4)
        warps = max(1, min(16, elems // per_warp))
        return {"XBLOCK": xblock, "RBLOCK": rblock, "num_warps": warps, "num_stages": 1}
    if mode in ("outer_persistent", "outer_looped"):
        return _outer(mode, xnumel, rnumel)
    rblock = _pow2_at_most(rnumel, 2048)
    xblock = 1 if decide(xnumel, ">=", 1024, "rows per program") else max(1, _pow2_at_most(xnumel, 8))
    return {"XBLOCK": xblock, "RBLOCK": rblock, "num_warps": 8 if rblock >= 2048 else 4, "num_stages": 1}


def _outer(mode: str, xnumel: int, rnumel: int) -> dict:
    """A column reduction's [RBLOCK, XBLOCK] tile: XBLOCK neighbouring outputs (contiguous in memory) per
    program, up to OUTER_COLUMNS, so each row of the tile is one or two full 128-byte lines; RBLOCK rows so the
    tile holds ~4K elements (16 per thread over 8 warps, as the 1-D kernels: enough loads in flight). Persistent:
    the whole reduction in registers, the columns narrowed to keep the tile at most 8K elements."""
    xblock = _pow2_at_most(xnumel, OUTER_COLUMNS)
    if mode == "outer_persistent":
        rblock = pow2(rnumel)
        xblock = max(1, min(xblock, max(OUTER_MIN_COLUMNS, 8192 // rblock)))
    else:
        rblock = max(1, min(_pow2_at_most(rnumel, 1024), max(8, 4096 // xblock)))
    warps = max(1, min(16 if mode == "outer_persistent" else 8, xblock * rblock // 512))
    return {"XBLOCK": xblock, "RBLOCK": rblock, "num_warps": warps, "num_stages": 1}


OUTER_COLUMNS = 64
GATHER_LOADS = 8  # load sites per element from which a pointwise kernel is a gather (pooling taps)


def candidates(mode: str, xnumel: int, rnumel: int, itemsize: int = 4, ynumel: int = 1) -> list:
    """The heuristic's config first, then neighbours worth timing."""
    base = heuristic(mode, xnumel, rnumel, itemsize, ynumel=ynumel) if mode == "tiled" else \
        heuristic(mode, xnumel, rnumel, itemsize)
    out = [base]
    if mode == "tiled":  # square tiles, and tiles long along the store's side or along the load's
        for yblock, xblock, warps in ((32, 32, 4), (64, 64, 4), (64, 64, 8), (32, 128, 8), (128, 32, 8),
                                      (16, 256, 8)):
            if yblock <= max(pow2(ynumel), 16) and xblock <= max(pow2(xnumel), 16):
                out.append({"XBLOCK": xblock, "YBLOCK": yblock, "num_warps": warps, "num_stages": 1})
    elif mode == "pointwise":
        for block, warps in ((512, 4), (512, 8), (1024, 4), (1024, 8), (2048, 4), (2048, 8), (4096, 16)):
            if block <= max(pow2(xnumel), 128):
                out.append({"XBLOCK": block, "num_warps": warps, "num_stages": 1})
    elif mode == "persistent":
        for scale in (0.5, 2, 4):
            w = int(base["num_warps"] * scale)
            if 1 <= w <= 32:
                out.append(dict(base, num_warps=w))
        if base["XBLOCK"] > 1:
            out.append(dict(base, XBLOCK=base["XBLOCK"] // 2, num_warps=max(1, base["num_warps"] // 2)))
        if base["XBLOCK"] * 2 <= pow2(xnumel) and base["XBLOCK"] * base["RBLOCK"] < 16384:
            out.append(dict(base, XBLOCK=base["XBLOCK"] * 2, num_warps=min(32, base["num_warps"] * 2)))
    elif mode in ("outer_persistent", "outer_looped"):
        for xblock, rblock, warps in ((32, 64, 4), (64, 64, 8), (128, 32, 8), (32, 128, 8), (128, 64, 8)):
            if mode == "outer_persistent":
                rblock = base["RBLOCK"]  # the whole reduction stays in registers
            if xblock <= max(pow2(xnumel), 32) and (mode == "outer_persistent" or rblock <= pow2(rnumel)) \
                    and xblock * rblock <= 16384:
                out.append({"XBLOCK": xblock, "RBLOCK": rblock, "num_warps": warps, "num_stages": 1})
    else:
        for rblock, warps in ((1024, 4), (4096, 8), (4096, 16), (8192, 16)):
            if rblock <= pow2(rnumel):
                out.append(dict(base, RBLOCK=rblock, num_warps=warps))
    seen, unique = set(), []
    for c in out:
        key = tuple(sorted(c.items()))
        if key not in seen:
            seen.add(key)
            unique.append(c)
    return unique


def grid(mode: str, xnumel: int, config: dict, ynumel: int = 1) -> tuple:
    if mode == "tiled":  # rows on axis 0 (up to 2**31 - 1 programs), the output's columns on axis 1 (65535)
        return (-(-ynumel // config["YBLOCK"]), -(-xnumel // config["XBLOCK"]))
    return (-(-xnumel // config["XBLOCK"]),)


# ---- autotune cache on disk -------------------------------------------------------------------------------------
def _path(key: str):
    from ..cache import cache_dir
    return cache_dir() / "autotune" / f"{key}.json"


def tune_key(source: str, xnumel: int, rnumel: int, device: str, ynumel: int = 1) -> str:
    sizes = [xnumel, rnumel] + ([ynumel] if ynumel != 1 else [])  # keys of untiled kernels as they were
    return hashlib.sha256(json.dumps([source, *sizes, device]).encode()).hexdigest()[:32]


def load_tuned(key: str):
    try:
        record = json.loads(_path(key).read_text())
        return record["config"] if record.get("key") == key else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_tuned(key: str, config: dict, timings: list) -> None:
    path = _path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump({"key": key, "config": config, "timings": timings}, f)
        os.replace(tmp, path)
    except OSError as e:
        log.warning("could not save autotune result %s: %s", path, e)


def autotune_enabled() -> bool:
    return config.autotune


def bench(fn, cuda: bool) -> float:
    """Median milliseconds of fn: CUDA events through triton's do_bench on the GPU, a wall clock on the CPU
    (the interpreter, where only the mechanism is under test)."""
    if cuda:
        import triton.testing
        return triton.testing.do_bench(fn, warmup=5, rep=25, return_mode="median")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return sorted(times)[1]
