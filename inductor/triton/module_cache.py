"""Generated Triton modules kept in the compiled-code cache (inductor/cache.py, kind "triton"): a second process
compiling the same graph reads the module and its launch records instead of planning and writing kernels, and
Triton's own binary cache (runtime/triton_graph.py points it into the cache dir) spares it the kernel compiles.

Key: the graph as planning starts from it (after the optimizer and the backend's rewrites) with the inputs its
outputs are written into and those taken as host floats (graph meta the text does not show), the inputs' layouts,
the device (its name on CUDA: planning reads its properties), every inductor switch (FRAMEJIT_TRITON_FALLBACK,
the matmul and launch choices shape the code) and Triton's version, on top of what cache.make_key hashes (torch,
NumPy, Python, the source of inductor/ and graph/). Stored: the module source, each kernel's KernelSource (what its
launcher needs), which module inputs are constants and the output structure (`ModuleFacts`).

Kept in memory only: modules with torch fallbacks (they call live torch callables, which cannot be written down)
and graphs with dynamic sizes (generating their code records the conditions it holds under). A module read back
has no LoweredGraph: `CompiledTritonGraph.lowered` plans it again when first asked for (tests, debugging)."""
from __future__ import annotations

import dataclasses
import json

import torch
from torch.utils import _pytree as pytree

from framejit.graph import symbolic_sizes
from framejit.graph.input_writes import WRITTEN_INPUTS

from .. import cache
from ..config import SWITCHES, config
from ..ir import HOST_SCALARS
from ..runtime.triton_graph import ModuleFacts
from .codegen import KernelSource

stats = {"stored": 0, "read": 0}  # modules written to the cache / read back from it (memory or disk)


class _NotStorable(Exception):
    pass


def key(gm: torch.fx.GraphModule, example_inputs: list, device: torch.device, autotune: bool) -> str:
    import triton
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    switches = sorted((s, repr(getattr(config, s))) for s in SWITCHES if s != "cache_dir")
    # what the graph's text does not say but the module does: which inputs its outputs are written into (a
    # donated input computed in place; the same text without writes must not reuse that module: Triton generator
    # seed 5391 got an input overwritten with another program's result) and which inputs are host floats
    meta = [list(gm.meta.get(WRITTEN_INPUTS) or ()), sorted(gm.meta.get(HOST_SCALARS) or ())]
    extra = json.dumps([name, switches, triton.__version__, autotune, meta])
    return cache.make_key(symbolic_sizes.text(gm.graph) + extra, example_inputs, "triton-module")


def _encode(value):
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if type(value) in (int, float, bool, str) or value is None:
        return value
    if type(value) in (list, tuple):
        return {"tuple": [_encode(v) for v in value]} if type(value) is tuple else [_encode(v) for v in value]
    if type(value) is dict and all(type(k) is str for k in value):
        return {"dict": {k: _encode(v) for k, v in value.items()}}
    raise _NotStorable(type(value).__name__)  # a SymInt (dynamic sizes), a size Expr


def _decode(value):
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "dtype" in value:
            return getattr(torch, value["dtype"])
        if "tuple" in value:
            return tuple(_decode(v) for v in value["tuple"])
        return {k: _decode(v) for k, v in value["dict"].items()}
    return value


def store(key_: str, source: str, kernels: list, facts: ModuleFacts) -> None:
    """Keep the module under key_: on disk too where everything in it can be written down."""
    try:
        if facts.fallbacks:
            raise _NotStorable("torch fallbacks")
        payload = {
            "source": source,
            "kernels": [{f.name: _encode(getattr(k, f.name)) for f in dataclasses.fields(k)} for k in kernels],
            "input_attrs": facts.input_attrs,
            "output_spec": pytree.treespec_dumps(facts.output_spec),
            "launches": facts.launches,
            "ungraphable": facts.ungraphable,
        }
    except (_NotStorable, TypeError):
        return
    cache.put(key_, payload, kind="triton")
    stats["stored"] += 1


def load(key_: str):
    """(source, kernels, ModuleFacts) stored under key_, or None."""
    payload = cache.get(key_, kind="triton")
    if payload is None:
        return None
    try:
        kernels = [KernelSource(**{k: _decode(v) for k, v in record.items()}) for record in payload["kernels"]]
        facts = ModuleFacts(list(payload["input_attrs"]), [], pytree.treespec_loads(payload["output_spec"]),
                            int(payload["launches"]), str(payload["ungraphable"]))
    except (KeyError, TypeError, ValueError, AttributeError):  # written by another layout of these records
        return None
    stats["read"] += 1
    return payload["source"], kernels, facts
