"""Scaled dot-product attention with one CPU training rule.

On CPU, the backward pass of PyTorch's fused attention kernel is about twice as slow in bf16 as in fp32 at the
sizes the shapes model trains with (a ViT block of 32 images x 4 heads x 64 tokens: 11.1 ms -> 4.9 ms forward
and backward; whole Stage II / III steps 1.04-1.11x / 1.15-1.17x faster over two runs of
benchmarks/bench_train.py), while the forward alone costs about the same in both.
So when gradients are being recorded on CPU, half-precision q/k/v are attended in fp32 (autocast, which
would cast them back, is paused for that one op) and the result is cast back to their dtype. Everywhere else
(inference, GPUs) this is plain ``F.scaled_dot_product_attention``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_HALF = (torch.bfloat16, torch.float16)


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None,
         is_causal: bool = False, enable_gqa: bool = False) -> torch.Tensor:
    """``F.scaled_dot_product_attention(q, k, v, ...)``; fp32 on CPU when training with half-precision
    inputs (see the module docstring)."""
    # short-circuits on the cheapest test: at inference (the decode step) gradients are off, nothing else is read
    upcast = (torch.is_grad_enabled() and q.device.type == "cpu"
              and (q.requires_grad or k.requires_grad or v.requires_grad)
              and (q.dtype in _HALF or torch.is_autocast_enabled("cpu")))
    if not upcast:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal,
                                              enable_gqa=enable_gqa)
    out_dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else q.dtype
    with torch.autocast("cpu", enabled=False):
        out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=attn_mask,
                                             is_causal=is_causal, enable_gqa=enable_gqa)
    return out.to(out_dtype)
