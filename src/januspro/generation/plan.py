"""Drawing plans: before its image codes, the model writes a short text plan of the picture, then draws it.

A model trained on text-to-image pairs that carry a ``plan`` (``SampleBuilder.t2i``; the shapes world's plans
name each object's colour, shape and grid cell, :func:`januspro.shapes.language.layout_plan`) learns to write,
after the prompt's ``<|Assistant|>:``, the plan and then ``<begin_of_image>``. Generation with
``ImageGenParams(plan=True)`` lets it: each image's plan is sampled as text (no guidance), appended to the
prompt, and the image is drawn from prompt + plan with classifier-free guidance as usual (the unconditional
row pads prompt and plan alike, as training's dropped prompts do).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..models.janus import JanusModel
from ..processing.processor import left_pad
from .decode import prefill, step
from .sampling import SamplingParams, draw_noise, sample_with_noise

PLAN_MAX_TOKENS = 48  # a plan longer than this is cut (the shapes world's longest: 4 objects, ~20 tokens)


@torch.inference_mode()
def write_plans(model: JanusModel, heads: list[list[int]], image_start_id: int, stop_ids: Sequence[int],
                banned_ids: Sequence[int], pad_id: int, temperature: float,
                generator: torch.Generator | Sequence[torch.Generator | None] | None = None,
                max_tokens: int = PLAN_MAX_TOKENS) -> list[list[int]]:
    """The plan (token ids) the model writes after each prompt ``heads[r]`` (a text-to-image prompt without its
    ``<begin_of_image>``), ending where it writes ``<begin_of_image>`` or a token of ``stop_ids`` (not
    included) or after ``max_tokens``. The first token may not end the plan; ``banned_ids`` (special tokens)
    are never written. ``generator``: one for all rows, or one per row (a row then draws from its own alone).
    Temperature 0 is greedy."""
    if not heads:
        return []
    rows = len(heads)
    per_row = generator is not None and not isinstance(generator, torch.Generator)
    if per_row and len(generator) != rows:  # type: ignore[arg-type]
        raise ValueError(f"{len(generator)} generators for {rows} plans")  # type: ignore[arg-type]
    device = model.lm_head.weight.device
    ctx = model.cfg.llm.max_position_embeddings
    budget = min(max_tokens, ctx - max(len(h) for h in heads) - model.cfg.vq.num_tokens - 1)
    if budget < 1:
        raise ValueError(f"no room for a plan: the prompt and the image's {model.cfg.vq.num_tokens} codes fill the "
                         f"model's context of {ctx}")
    ids, mask = left_pad(heads, pad_id)
    hidden, state = prefill(model, model.llm.embed_tokens(ids.to(device)), mask.to(device), budget)
    ends = torch.tensor([image_start_id, *stop_ids], device=device)
    banned = torch.tensor(list(banned_ids), dtype=torch.long, device=device)
    sp = SamplingParams(temperature)
    plans: list[list[int]] = [[] for _ in heads]
    done = [False] * rows
    for i in range(budget):
        logits = model.text_logits(hidden).float()  # [R, V]
        logits[:, banned] = float("-inf")
        if i == 0:
            logits[:, ends] = float("-inf")
        if sp.greedy:
            noise = None
        elif per_row:
            noise = torch.cat([draw_noise(1, logits.shape[-1], g, device) for g in generator])  # type: ignore[union-attr]
        else:
            noise = draw_noise(rows, logits.shape[-1], generator, device)  # type: ignore[arg-type]
        nxt = sample_with_noise(logits, sp, noise)
        for r, t in enumerate(nxt.tolist()):
            if done[r]:
                continue
            if t == image_start_id or t in stop_ids:
                done[r] = True
            else:
                plans[r].append(t)
        if all(done) or i == budget - 1:
            break
        hidden = step(state, model, model.llm.embed_tokens(nxt)[:, None], i)
    return plans
