"""FSDP2 (fully_shard per block and at the root) on 2 CPU processes (gloo), with compiled layers: FSDP's
all-gather and reduce-scatter hooks run eagerly around the compiled regions, which see the unsharded parameters
FSDP2 sets before each forward. After 3 steps the full parameters equal eager FSDP2's on every rank, and no step
after the first recompiles (parameters are guarded by structure, not by which tensor objects they are)."""
import torch

from .spawn import run_ranks
from .workers import fsdp_worker

STYLES = ["layers", "whole"]


def test_fsdp2_compiled_layers_match_eager_on_every_rank(tmp_path):
    ranks = run_ranks(fsdp_worker, tmp_path, STYLES)
    for rank, result in enumerate(ranks):
        for style, run in result["runs"].items():
            torch.testing.assert_close(run["params"], result["eager"], rtol=1e-5, atol=1e-6,
                                       msg=lambda m: f"rank {rank}, {style}: {m}")
            counters = run["counters"]
            assert counters["backward_graphs"] >= 1, (style, counters)  # the backward ran compiled
            first, *later = run["recompiles"]
            assert all(r == first for r in later), f"{style}: recompiles after each step {run['recompiles']}"
        # the two blocks share one compiled entry: the second instance switches the frame to modules by structure
        assert result["runs"]["layers"]["counters"]["recompiles"] == 1, result["runs"]["layers"]["counters"]
    for style in STYLES:
        torch.testing.assert_close(ranks[0]["runs"][style]["params"], ranks[1]["runs"][style]["params"],
                                   rtol=0, atol=0)
