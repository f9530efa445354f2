"""Attention as generated Triton modules call it: `causal_attention`, fused SDPA while a mask read from outside
the graph is still causal, else the formula op for op. graph/attention.py owns it because its rewrite puts
calls to it into FX graphs, which also run as captured when a backend declines them; generated code reaches it
through this module so that everything it imports lives in inductor/runtime/."""
from framejit.graph.attention import causal_attention

__all__ = ["causal_attention"]
