"""What each rank runs (spawned processes import this module): a small GPT-style language model trained a few
steps under DDP or FSDP2, eagerly and compiled, from the same weights and the same per-rank batches."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks.models.gpt import GPT, GPTConfig

STEPS = 3


class LM(torch.nn.Module):
    """GPT with its loss: a training graph with a scalar output (tied embedding and head, as GPT-2)."""

    def __init__(self, n_layer: int):
        super().__init__()
        self.gpt = GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=n_layer, n_head=2, n_embd=32))

    def forward(self, idx, targets):
        logits = self.gpt(idx)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def batches(rank: int) -> list:
    """Each rank its own data (so gradients differ until they are all-reduced)."""
    generator = torch.Generator().manual_seed(100 + rank)
    return [torch.randint(0, 64, (2, 16), generator=generator) for _ in range(STEPS + 1)]


def fresh_model(n_layer: int = 1) -> LM:
    torch.manual_seed(0)
    return LM(n_layer)


def train(step_model, params, data: list, after_step=None) -> None:
    optimizer = torch.optim.SGD(params, lr=0.5)
    for i, idx in enumerate(data[:STEPS]):
        loss = step_model(idx, data[i + 1])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if after_step is not None:
            after_step(i)


def flat(params) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params])


def ddp_worker(rank: int, world: int, configs: list) -> dict:
    """Eager DDP, then each config (how jit.compile meets DDP, bucket_cap_mb, ddp_split) trained from the same
    weights: the parameters after STEPS steps and the counters of each run."""
    import jit
    from torch.nn.parallel import DistributedDataParallel as DDP
    from framejit.inductor import cache

    data = batches(rank)
    model = fresh_model()
    train(DDP(model), model.parameters(), data)
    result = {"eager": flat(model.parameters()), "runs": {}}
    for style, cap_mb, split in configs:
        jit.reset()
        jit.counters.clear()
        model = fresh_model()
        options = {"ddp_split": split}
        if style == "around":  # jit.compile(DDP(model)): DDP's forward eager, the wrapped module compiled
            step_model = jit.compile(DDP(model, bucket_cap_mb=cap_mb), options=options)
        else:  # DDP(jit.compile(model))
            step_model = DDP(jit.compile(model, options=options), bucket_cap_mb=cap_mb)
        train(step_model, model.parameters(), data)
        result["runs"][(style, cap_mb, split)] = {"params": flat(model.parameters()), "counters": dict(jit.counters)}
    result["corrupt_cache_files"] = cache.stats["corrupt"]
    return result


def fsdp_worker(rank: int, world: int, styles: list) -> dict:
    """FSDP2 (fully_shard per block, then the root), eager and compiled: `layers` compiles each block (FSDP's
    hooks run around it), `whole` compiles the model (its FSDP submodules' hooks break the graph and run
    eagerly, their forwards compile). Full parameters after STEPS steps, and the recompiles after each step."""
    import jit
    from torch.distributed.fsdp import fully_shard

    def sharded() -> LM:
        model = fresh_model(n_layer=2)  # two blocks: the second shares the first's compiled code
        for block in model.gpt.blocks:
            fully_shard(block)
        fully_shard(model)
        return model

    def full(model) -> torch.Tensor:
        return flat(p.full_tensor() for p in model.parameters())

    data = batches(rank)
    model = sharded()
    train(model, model.parameters(), data)
    result = {"eager": full(model), "runs": {}}
    for style in styles:
        jit.reset()
        jit.counters.clear()
        model = sharded()
        if style == "layers":
            for i, block in enumerate(model.gpt.blocks):
                model.gpt.blocks[i] = jit.compile(block)
            step_model = model
        else:
            step_model = jit.compile(model)
        recompiles = []
        train(step_model, model.parameters(), data, lambda i: recompiles.append(jit.counters["recompiles"]))
        result["runs"][style] = {"params": full(model), "recompiles": recompiles,
                                 "counters": dict(jit.counters)}
    return result
