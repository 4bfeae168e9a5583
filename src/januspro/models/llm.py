"""DeepSeek-LLM / LLaMA decoder: embeddings in, hidden states out.

RoPE convention: rotate-half (as HF Llama and the official Janus checkpoints), cos/sin computed in fp32 from
explicit position ids, so left-padded batches and packed sequences get correct positions.
Parameter names follow the LLaMA layout so checkpoints map one-to-one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import LLMConfig
from .attention import sdpa
from .kv_cache import KVCache
from .linear import Linear


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # normalise in fp32, cast back, then scale (as LLaMA); one fused kernel
        return self.weight * F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps).to(x.dtype)


def rope_cos_sin(position_ids: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of shape [B, 1, T, head_dim] for positions [B, T] (rotate-half layout)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=position_ids.device, dtype=torch.float32) / head_dim))
    freqs = position_ids.float()[..., None] * inv_freq  # [B, T, D/2]
    emb = torch.cat((freqs, freqs), dim=-1)  # [B, T, D]
    return emb.cos().to(dtype)[:, None], emb.sin().to(dtype)[:, None]


class RopeTable:
    """cos/sin for positions 0..n-1 computed once; lookups equal :func:`rope_cos_sin` exactly."""

    def __init__(self, n: int, head_dim: int, theta: float, dtype: torch.dtype, device: torch.device | str) -> None:
        pos = torch.arange(n, device=device)[None]  # [1, n]
        cos, sin = rope_cos_sin(pos, head_dim, theta, dtype)
        self.cos, self.sin = cos[0, 0], sin[0, 0]  # [n, D]

    def __call__(self, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cos[position_ids][:, None], self.sin[position_ids][:, None]  # [B, 1, T, D]


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + _rotate_half(x) * sin


def decode_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Attention of one query per row, q [B, H, 1, D], over the cache k/v [B, Hkv, T, D] where the boolean
    ``mask`` [B, 1, 1, T] is True. Equal to SDPA (GQA: query head h reads kv head h // (H / Hkv)); written as two
    matmuls and a softmax because the fused CPU kernel is slow for a single fp32 query (and, compiled, these
    fuse): 15-20% faster whole decode steps at the tiny benchmark config. Eager bf16/fp16 steps use SDPA instead:
    there the two half-precision matmuls were 3-10x slower than SDPA's kernel (benchmarks/RESULTS.md)."""
    b, h, _, d = q.shape
    hk = k.shape[1]
    scores = torch.matmul(q.reshape(b, hk, h // hk, d), k.transpose(-1, -2)) * d ** -0.5  # [B, Hkv, G, T]
    probs = scores.float().masked_fill(~mask, float("-inf")).softmax(-1).to(v.dtype)
    return torch.matmul(probs, v).reshape(b, h, 1, d)


class Attention(nn.Module):
    """Multi-head attention with grouped-query support. q, k and v come from one fused projection
    (``qkv_proj``: rows of q, then k, then v), so a decode step runs one matmul instead of three."""

    def __init__(self, cfg: LLMConfig) -> None:
        super().__init__()
        self.num_heads = cfg.num_heads
        self.num_kv_heads = cfg.num_kv_heads
        self.head_dim = cfg.head_dim
        h = cfg.hidden_size
        self.q_size = cfg.num_heads * cfg.head_dim
        self.kv_size = cfg.num_kv_heads * cfg.head_dim
        self.qkv_proj = Linear(h, self.q_size + 2 * self.kv_size, bias=False)
        self.o_proj = Linear(self.q_size, h, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None,
                layer: int, cache: KVCache | None, cache_positions: torch.Tensor | None,
                kv_len: int | None = None, last_only: bool = False) -> torch.Tensor:
        """``last_only``: keys and values of every position (and the cache writes) as usual, but the output
        [B, 1, H] of the last query only."""
        b, t, _ = x.shape
        q, k, v = self.qkv_proj(x).split((self.q_size, self.kv_size, self.kv_size), dim=-1)
        q = q.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)  # [B, H, T, D]
        k = k.view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)  # [B, Hkv, T, D]
        v = v.view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)  # [B, Hkv, T, D]
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        if cache is not None:
            assert cache_positions is not None
            k, v = cache.update(layer, cache_positions, k, v)  # [B, Hkv, Tmax, D]
            if kv_len is not None:  # only the first kv_len slots can be attended to: read no further
                k, v = k[:, :, :kv_len], v[:, :, :kv_len]
            k, v = k.to(q.dtype), v.to(q.dtype)
        if last_only and t > 1:  # the last query sees every key: no causal structure is left to mask
            q = q[:, :, -1:]
            mask = None if mask is None else mask[:, :, -1:]
        qt = q.shape[2]
        gqa = self.num_kv_heads != self.num_heads
        if qt == 1 and mask is not None and (q.dtype == torch.float32 or torch.compiler.is_compiling()):
            out = decode_attention(q, k, v, mask)
        elif mask is None:
            out = sdpa(q, k, v, is_causal=qt > 1, enable_gqa=gqa)
        else:
            out = sdpa(q, k, v, attn_mask=mask, enable_gqa=gqa)
        out = out.transpose(1, 2).reshape(b, qt, self.q_size)  # [B, T or 1, H*D]
        return self.o_proj(out)


class MLP(nn.Module):
    """SwiGLU; gate and up projections fused into ``gate_up_proj`` (rows of gate, then up)."""

    def __init__(self, cfg: LLMConfig) -> None:
        super().__init__()
        self.ffn = cfg.intermediate_size
        self.gate_up_proj = Linear(cfg.hidden_size, 2 * cfg.intermediate_size, bias=False)
        self.down_proj = Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(x).split(self.ffn, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: LLMConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None,
                layer: int, cache: KVCache | None, cache_positions: torch.Tensor | None,
                kv_len: int | None = None, last_only: bool = False) -> torch.Tensor:
        a = self.self_attn(self.input_layernorm(x), cos, sin, mask, layer, cache, cache_positions, kv_len, last_only)
        x = (x[:, -1:] if last_only else x) + a
        return x + self.mlp(self.post_attention_layernorm(x))


class DecoderLM(nn.Module):
    """The LLM trunk. ``forward`` maps input embeddings [B, T, H] to final-normed hidden states [B, T, H]."""

    def __init__(self, cfg: LLMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList([DecoderLayer(cfg) for _ in range(cfg.num_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, inputs_embeds: torch.Tensor, position_ids: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, cache: KVCache | None = None,
                cache_positions: torch.Tensor | None = None, rope: RopeTable | None = None,
                kv_len: int | None = None, last_only: bool = False) -> torch.Tensor:
        """Run the decoder.

        Args:
            inputs_embeds: [B, T, H].
            position_ids: [B, T] RoPE positions; default ``arange(T)``.
            mask: boolean [B, 1, T, Tk] (True = attend) or ``None`` for plain causal attention over the input.
                With a cache, ``Tk`` is the cache length and the mask must cover it (see :func:`attention_mask`);
                ``None`` there means an unpadded prompt at slots 0..T-1 with ``kv_len == T`` (causal SDPA, the
                fused kernel, faster than a boolean mask).
            cache: optional :class:`KVCache`; new keys/values are written at ``cache_positions`` [T].
            rope: optional precomputed :class:`RopeTable` covering ``position_ids`` (saves work per decode step).
            kv_len: with a cache, attend over its first ``kv_len`` slots only (every slot a query may see must lie
                there); ``mask`` then covers just those slots. Decoding reads less of a long preallocated cache.
            last_only: return the hidden state of the last position only, [B, 1, H]. Every layer still writes
                the keys and values of all T positions to the cache, but the last one runs its attention output,
                o-projection and MLP for the last query alone (a prefill that only needs the next token's
                logits skips that layer's work for the other T-1 rows).
        """
        b, t, _ = inputs_embeds.shape
        if position_ids is None:
            position_ids = torch.arange(t, device=inputs_embeds.device).expand(b, t)
        if cache is not None:
            if cache_positions is None:
                raise ValueError("cache_positions is required with a cache")
            if mask is None and kv_len != t:
                raise ValueError("with a cache, mask=None is only for a prompt written to slots 0..T-1 with "
                                 "kv_len == T (plain causal attention); otherwise pass a mask over the cache")
        if rope is not None:
            cos, sin = rope(position_ids)
        else:
            cos, sin = rope_cos_sin(position_ids, self.cfg.head_dim, self.cfg.rope_theta, inputs_embeds.dtype)
        x = inputs_embeds
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, mask, i, cache, cache_positions, kv_len, last_only and i == last)
        return self.norm(x[:, -1:] if last_only else x)  # (the last layer already returned one row)


def attention_mask(key_padding: torch.Tensor, query_positions: torch.Tensor) -> torch.Tensor:
    """Boolean attention mask [B, 1, Tq, Tk] from a key validity mask and the query slots.

    Args:
        key_padding: [B, Tk] bool/int, 1 where a key slot holds a real token.
        query_positions: [Tq] slot index of each query in the same (cache) coordinates; a query attends to
            valid keys at slots <= its own slot, and always to its own slot (so a padding query never has an
            empty row, which would give NaN that then leaks through the values).
    """
    tk = key_padding.shape[1]
    slots = torch.arange(tk, device=key_padding.device)
    causal = slots[None, :] <= query_positions[:, None]  # [Tq, Tk]
    own = slots[None, :] == query_positions[:, None]  # [Tq, Tk]
    return (causal[None, None] & key_padding.bool()[:, None, None, :]) | own[None, None]  # [B, 1, Tq, Tk]


def positions_from_padding(padding_mask: torch.Tensor) -> torch.Tensor:
    """RoPE positions [B, T] for a (left- or right-)padded batch: 0,1,2,... over the real tokens."""
    pos = padding_mask.long().cumsum(-1) - 1
    return pos.clamp(min=0)


def init_llm_(model: DecoderLM, std: float = 0.02) -> None:
    """Initialisation for training from scratch (GPT-2 style: residual projections scaled by depth)."""
    out_std = std / math.sqrt(2 * model.cfg.num_layers)
    for name, p in model.named_parameters():
        if name.endswith("norm.weight") or "layernorm" in name:
            nn.init.ones_(p)
        elif name.endswith(("o_proj.weight", "down_proj.weight")):
            nn.init.normal_(p, 0.0, out_std)
        else:
            nn.init.normal_(p, 0.0, std)
