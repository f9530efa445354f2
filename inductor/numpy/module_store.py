"""Generated NumPy modules kept in the compiled-code cache (inductor/cache.py, kind "numpy-module") under the graph
as captured: a second process compiling the same graph neither optimizes nor lowers it, it reads the module's source
and what CompiledNumpyGraph needs of the LoweredGraph (`NumpyFacts`: which inputs are constants, the outputs'
dtypes, strides and aliasing as eager's, the output structure).

Key: the captured graph, its inputs' and constants' layouts (the constants' values are read per call, from the
module attributes the facts name), on top of what cache.make_key hashes (torch, NumPy, Python, the source of
inductor/ and graph/). Stored only where the facts can be written down and every constant the module reads is an
attribute of the captured graph (a constant the optimizer folded is not); graphs with dynamic sizes are not stored
(their code records the conditions it holds under). A module read back has no LoweredGraph:
`CompiledNumpyGraph.lowered` optimizes and lowers again when first asked for (tests, debugging)."""
from __future__ import annotations

import torch
from torch.utils import _pytree as pytree

from framejit.graph import symbolic_sizes
from framejit.graph.shape_prop import fetch_attr

from .. import cache
from ..config import config
from ..runtime.numpy_graph import NumpyFacts

stats = {"stored": 0, "read": 0}  # modules written to the cache / read back from it (memory or disk)


def key(gm: torch.fx.GraphModule, example_inputs: list) -> str:
    constants = []
    for node in gm.graph.find_nodes(op="get_attr"):
        value = fetch_attr(gm, node.target)
        if isinstance(value, torch.Tensor):
            constants.append([node.target, list(value.shape), list(value.stride()), str(value.dtype)])
        else:
            constants.append([node.target, type(value).__name__, repr(value)])
    return cache.make_key(symbolic_sizes.text(gm.graph) + repr(constants), example_inputs,
                          f"numpy-module-c-{config.c_kernels}")


def _dtype(d):
    return None if d is None else str(d).removeprefix("torch.")


def store(key_: str, source: str, facts: NumpyFacts) -> None:
    """Keep the module under key_ (in memory and on disk), where its facts can be written down."""
    if facts.fallbacks:  # torch callables: rebuilt cheaply with the source, memory only
        return
    try:
        payload = {
            "source": source,
            "input_attrs": list(facts.input_attrs),
            "out_dtypes": [_dtype(d) for d in facts.out_dtypes],
            "output_spec": pytree.treespec_dumps(facts.output_spec),
            "strides": [None if s is None else [int(x) for x in s] for s in facts.strides],
            "aliases": [None if a is None else [x if isinstance(x, str) else int(x) for x in a] for a in facts.aliases],
        }
    except (TypeError, ValueError, NotImplementedError):  # a SymInt stride, an unserializable output structure
        return
    cache.put(key_, payload, kind="numpy-module")
    stats["stored"] += 1


def load(key_: str):
    """(source, NumpyFacts) stored under key_, or None."""
    payload = cache.get(key_, kind="numpy-module")
    if payload is None:
        return None
    try:
        facts = NumpyFacts(list(payload["input_attrs"]),
                           [None if d is None else getattr(torch, d) for d in payload["out_dtypes"]],
                           pytree.treespec_loads(payload["output_spec"]),
                           [None if s is None else tuple(s) for s in payload["strides"]],
                           [None if a is None else tuple(a) for a in payload["aliases"]], [])
        source = payload["source"]
    except (KeyError, TypeError, ValueError, AttributeError):  # written by another layout of these records
        return None
    stats["read"] += 1
    return source, facts
