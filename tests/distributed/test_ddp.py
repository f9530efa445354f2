"""jit.compile with DistributedDataParallel on 2 CPU processes (gloo): the parameters after 3 training steps equal
eager DDP's on every rank, and the training graph is split at DDP's gradient buckets (several segments for a tiny
bucket_cap_mb, one for a huge one, one with the split switched off)."""
import torch

from .spawn import run_ranks
from .workers import ddp_worker

TINY, HUGE = 0.01, 1000.0  # MB: ~10 KB buckets (the model's 62 KB of parameters in several), one for all
CONFIGS = [("around", TINY, True), ("inside", HUGE, True), ("around", TINY, False)]


def test_ddp_compiled_training_matches_eager_on_every_rank(tmp_path):
    ranks = run_ranks(ddp_worker, tmp_path, CONFIGS)
    for rank, result in enumerate(ranks):
        assert result["corrupt_cache_files"] == 0, "ranks sharing a cache directory read a half-written file"
        for config, run in result["runs"].items():
            torch.testing.assert_close(run["params"], result["eager"], rtol=1e-5, atol=1e-6,
                                       msg=lambda m: f"rank {rank}, {config}: {m}")
            counters = run["counters"]
            assert counters["graph_breaks"] == 0, (config, counters)
            assert counters["frames_compiled"] == 1, (config, counters)
            assert counters["recompiles"] == 0, (config, counters)
            assert counters["backward_graphs"] == counters["ddp_segments"], (config, counters)
    for config in CONFIGS:  # DDP keeps replicas equal: every rank holds the same parameters
        torch.testing.assert_close(ranks[0]["runs"][config]["params"], ranks[1]["runs"][config]["params"],
                                   rtol=0, atol=0)
    segments = {config: ranks[0]["runs"][config]["counters"]["ddp_segments"] for config in CONFIGS}
    assert segments[("around", TINY, True)] > 2, segments
    assert segments[("inside", HUGE, True)] == 1, segments
    assert segments[("around", TINY, False)] == 1, segments
