"""GPT-style decoder models in plain PyTorch, used as benchmark and capture targets.

Two variants on purpose:
- `GPT` is written the idiomatic way (fused qkv, `.split`, `.view`, `.transpose`, SDPA with is_causal=True,
  `for block in self.blocks`), the shape a capture frontend sees most often.
- `LoopGPT` stresses the frontend harder: it loops over `range(self.config.n_layer)`, indexes the ModuleList,
  reads dataclass attributes inside forward and spells attention out (matmul, scale, masked_fill with a
  registered causal-mask buffer, softmax, matmul), so guards on config values and buffers get exercised.
Both share `GPTConfig` and the same parameter layout, so one seed gives identical weights in both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int
    n_layer: int
    n_head: int
    n_embd: int
    dropout: float = 0.0
    bias: bool = True
    tied_head: bool = True


def small_config() -> GPTConfig:
    """Tiny sizes so a CPU forward takes milliseconds in tests."""
    return GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32)


def gpt2_block_config() -> GPTConfig:
    """GPT-2 small's width (C=768, 12 heads); one layer, since benchmarks time one block."""
    return GPTConfig(vocab_size=50304, block_size=1024, n_layer=1, n_head=12, n_embd=768)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        hs = C // self.n_head
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        # dropout_p only when training, as nanoGPT does; 0.0 keeps eval deterministic.
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=p, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class NaiveCausalSelfAttention(nn.Module):
    """Attention spelled out op by op; the mask is a buffer so it moves with .to() and shows up in state_dict."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        mask = torch.tril(torch.ones(config.block_size, config.block_size, dtype=torch.bool))
        self.register_buffer("mask", mask.view(1, 1, config.block_size, config.block_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        nh = self.config.n_head
        qkv = self.c_attn(x)
        q, k, v = qkv.split(self.config.n_embd, dim=2)
        q = q.view(B, T, nh, C // nh).transpose(1, 2)
        k = k.view(B, T, nh, C // nh).transpose(1, 2)
        v = v.view(B, T, nh, C // nh).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(~self.mask[:, :, :T, :T], float("-inf"))
        att = F.softmax(att, dim=-1)
        att = self.attn_dropout(att)
        y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig, naive: bool = False):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = NaiveCausalSelfAttention(config) if naive else CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


def _init_weights(model: nn.Module, config: GPTConfig, seed: int) -> None:
    # A private generator, so the weights never depend on the global RNG (module constructors still draw from it).
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif p.dim() == 1:  # LayerNorm weights
                p.fill_(1.0)
            else:
                std = 0.02
                # GPT-2 scales residual projections by 1/sqrt(2 * n_layer) to keep the stream's variance flat.
                if name.endswith("c_proj.weight"):
                    std = 0.02 / math.sqrt(2 * config.n_layer)
                p.copy_(torch.randn(p.shape, generator=g) * std)


class GPT(nn.Module):
    def __init__(self, config: GPTConfig, seed: int = 0, naive_attention: bool = False):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([Block(config, naive_attention) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tied_head:
            # Weight tying: one Parameter reachable under two names, a case guards/state_dict must handle.
            self.lm_head.weight = self.wte.weight
        _init_weights(self, config, seed)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.blocks:
            x = block(x)
        x = self.ln_f(x)
        return self.lm_head(x)


class LoopGPT(GPT):
    """Same parameters as GPT(naive_attention=True); forward indexes blocks in a range loop and reads config."""

    def __init__(self, config: GPTConfig, seed: int = 0):
        super().__init__(config, seed=seed, naive_attention=True)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        b, t = idx.shape
        assert t <= self.config.block_size, "sequence longer than block_size"
        pos = torch.arange(t, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        if self.config.dropout > 0.0:
            x = self.drop(x)
        for i in range(self.config.n_layer):
            x = self.blocks[i](x)
        x = self.ln_f(x)
        if self.config.tied_head:
            return x @ self.wte.weight.t()
        return self.lm_head(x)


def gpt_block(config: GPTConfig | None = None, seed: int = 0, naive: bool = False) -> Block:
    """One transformer block with deterministic weights (benchmarks time a block in isolation)."""
    config = config or gpt2_block_config()
    block = Block(config, naive)
    _init_weights(block, config, seed)
    return block
