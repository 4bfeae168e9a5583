"""Prefill and the decode step shared by text and image generation.

The cache is preallocated for prompt + new tokens. The key mask covers every cache slot: the prompt's real
tokens and all generation slots (a slot in the future is excluded by causality), so it never changes during
decoding and a decode step has static shapes: it can be compiled or captured in a CUDA graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..models.janus import JanusModel
from ..models.kv_cache import KVCache
from ..models.llm import RopeTable, attention_mask, positions_from_padding

DecodeStep = Callable[..., torch.Tensor]
COMPILE_BUCKET = 64  # cache-length rounding when the decode step is compiled


@dataclass
class DecodeState:
    cache: KVCache
    key_mask: torch.Tensor  # [R, 1, 1, T_prompt + max_new] bool: prompt's real tokens + every generation slot
    next_pos: torch.Tensor  # [R] RoPE position of the next token
    prompt_len: int  # cache slot of the first generated token
    rope: RopeTable  # cos/sin for every position a step can reach
    slots: torch.Tensor  # [T_prompt + max_new] arange, to build a step's causal mask

    def expand(self, rows: torch.Tensor) -> DecodeState:
        """Keep/duplicate batch rows (e.g. one prefilled prompt -> n samples)."""
        return DecodeState(self.cache.select_rows(rows), self.key_mask.index_select(0, rows),
                           self.next_pos.index_select(0, rows), self.prompt_len, self.rope, self.slots)


def prefill(model: JanusModel, embeds: torch.Tensor, pad_mask: torch.Tensor, max_new: int,
            cache_dtype: torch.dtype | None = None, bucket: int = 1) -> tuple[torch.Tensor, DecodeState]:
    """Run the prompt [R, T, H] (left-padded, ``pad_mask`` [R, T]) and return the last hidden state [R, H].

    ``bucket`` > 1 rounds the cache length up to a multiple of it (the extra slots are masked out), so prompts
    of different lengths give decode steps of the same shapes and a compiled step is reused, not recompiled.
    """
    r, t, _ = embeds.shape
    length = -(-(t + max_new) // bucket) * bucket
    cache = model.new_cache(r, length, dtype=cache_dtype or embeds.dtype, device=embeds.device)
    pad_mask = pad_mask.to(embeds.device).bool()
    key_mask = torch.cat([pad_mask, torch.ones(r, max_new, dtype=torch.bool, device=embeds.device),
                          torch.zeros(r, length - t - max_new, dtype=torch.bool, device=embeds.device)], 1)
    slots = torch.arange(length, device=embeds.device)
    pos = positions_from_padding(pad_mask)
    rope = model.rope_table(length, embeds.dtype)
    # the prompt's queries sit at slots 0..t-1 and see no further: attend over those t slots only; without
    # padding that is plain causal attention (the fused SDPA kernel, no mask tensor)
    mask = None if bool(pad_mask.all()) else attention_mask(key_mask[:, :t], slots[:t])
    hidden = model(embeds, pos, mask, cache, slots[:t], rope, t, last_only=True)  # [R, 1, H]
    next_pos = pad_mask.long().sum(-1)  # [R]
    return hidden[:, -1], DecodeState(cache, key_mask[:, None, None, :], next_pos, t, rope, slots)


def attended_slots(state: DecodeState, i: int, compiled: bool = False) -> int:
    """How many cache slots generated token ``i`` (0-based) must attend over: the prompt and the tokens so far.

    Eager steps read exactly those; a compiled step reads a multiple of a bucket (about a sixth of the cache,
    at least 128) so that only a handful of shapes are ever compiled."""
    need = state.prompt_len + i + 1
    total = state.cache.max_len
    if not compiled:
        return need
    bucket = max(128, -(-total // 6 // 64) * 64)
    return min(total, -(-need // bucket) * bucket)


def decode_step(model: JanusModel, cache: KVCache, emb: torch.Tensor, pos: torch.Tensor, slot: torch.Tensor,
                mask: torch.Tensor, rope: RopeTable, kv_len: int | None = None) -> torch.Tensor:
    """One token per row: ``emb`` [R, 1, H] at RoPE positions ``pos`` [R, 1] written to cache ``slot`` [1],
    attending where ``mask`` [R, 1, 1, kv_len] is True. Returns the new hidden states [R, H]."""
    hidden = model(emb, pos, mask, cache, slot, rope, kv_len)  # [R, 1, H]
    return hidden[:, 0]


def make_decode_step(compile: bool = False) -> DecodeStep:
    """The decode step, optionally ``torch.compile``d (CUDA graphs on GPU via ``reduce-overhead``)."""
    return compiled(decode_step) if compile else decode_step


def compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``torch.compile`` with static shapes; CUDA graphs on GPU (``reduce-overhead``). Each batch size and
    attended-length bucket is one graph, so the recompile limit is raised to keep serving varied batches fast."""
    import torch._dynamo

    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    mode = "reduce-overhead" if torch.cuda.is_available() else "default"
    return torch.compile(fn, mode=mode, dynamic=False)


def step(state: DecodeState, model: JanusModel, emb: torch.Tensor, i: int, fn: DecodeStep = decode_step
         ) -> torch.Tensor:
    """Feed token embeddings [R, 1, H] as generated token ``i`` (0-based) and return hidden states [R, H]."""
    slot = state.slots[state.prompt_len + i:state.prompt_len + i + 1]  # [1]
    pos = (state.next_pos + i)[:, None]  # [R, 1]
    kv = attended_slots(state, i, fn is not decode_step)
    mask = state.key_mask[..., :kv] & (state.slots[:kv] <= slot)  # [R, 1, 1, kv]
    return fn(model, state.cache, emb, pos, slot, mask, state.rope, kv)
