"""A transformer block with LLaMA-style rotary embeddings: q and k are rotated as complex numbers
(`view_as_complex`, a complex multiply, `view_as_real`), the spelling of Meta's reference code. The Triton
backend has no complex type, so these ops run in torch in the middle of an otherwise generated graph
(inductor/triton/fallback.py); tests/inductor/test_triton_fallback.py and benchmarks/gpu_fallback.py use it."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class RotaryBlock(nn.Module):
    def __init__(self, n_head: int, head_dim: int):
        super().__init__()
        self.h, self.d = n_head, head_dim
        c = n_head * head_dim
        self.ln1, self.ln2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.qkv, self.proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.fc, self.out = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)

    def rotary(self, x, freqs):
        b, t = x.shape[:2]
        xc = torch.view_as_complex(x.float().reshape(b, t, self.h, self.d // 2, 2))
        return torch.view_as_real(xc * freqs).reshape(b, t, self.h, self.d).type_as(x)

    def forward(self, x, freqs):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k = self.rotary(q.reshape(b, t, self.h, self.d), freqs), self.rotary(k.reshape(b, t, self.h, self.d), freqs)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                           v.reshape(b, t, self.h, self.d).transpose(1, 2), is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


def rotary_freqs(t: int, head_dim: int, device=None) -> torch.Tensor:
    """(t, 1, head_dim // 2) complex64 rotations, broadcast over batch and heads."""
    inv = 1.0 / (10000 ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim))
    angles = torch.outer(torch.arange(t, dtype=torch.float32, device=device), inv)
    return torch.polar(torch.ones_like(angles), angles).reshape(t, 1, head_dim // 2)
