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
from ..processing.processor import ChatBatch, left_pad
from .text import TextGenParams, generate_token_steps

PLAN_MAX_TOKENS = 48  # a plan longer than this is cut (the shapes world's longest: 4 objects, ~20 tokens)


def write_plans(model: JanusModel, heads: list[list[int]], image_start_id: int, stop_ids: Sequence[int],
                banned_ids: Sequence[int], pad_id: int, temperature: float,
                generator: torch.Generator | Sequence[torch.Generator | None] | None = None,
                max_tokens: int = PLAN_MAX_TOKENS) -> list[list[int]]:
    """The plan (token ids) the model writes after each prompt ``heads[r]`` (a text-to-image prompt without its
    ``<begin_of_image>``), ending where it writes ``<begin_of_image>`` or a token of ``stop_ids`` (not
    included) or after ``max_tokens``. The first token may not end the plan; ``banned_ids`` (special tokens)
    are never written. ``generator``: one for all rows, or one per row (a row then draws from its own alone).
    Temperature 0 is greedy. The text engine's own decode loop (:func:`~.text.generate_token_steps`) writes it."""
    if not heads:
        return []
    ctx = model.cfg.llm.max_position_embeddings
    budget = min(max_tokens, ctx - max(len(h) for h in heads) - model.cfg.vq.num_tokens - 1)
    if budget < 1:
        raise ValueError(f"no room for a plan: the prompt and the image's {model.cfg.vq.num_tokens} codes fill the "
                         f"model's context of {ctx}")
    ids, mask = left_pad(heads, pad_id)
    batch = ChatBatch(ids, mask.long(), torch.empty(0, 3, 1, 1))
    ends = [image_start_id, *stop_ids]
    banned = list(banned_ids)

    def hook(step: int, logits: torch.Tensor) -> None:
        logits[:, banned] = float("-inf")
        if step == 0:
            logits[:, ends] = float("-inf")

    plans: list[list[int]] = [[] for _ in heads]
    events = generate_token_steps(model, batch, TextGenParams(max_new_tokens=budget, temperature=temperature),
                                  image_start_id, -1, lambda row, t: t in stop_ids, generator, hook)
    for ev in events:
        for r, t in enumerate(ev.tokens):
            if t >= 0 and t not in ends:
                plans[r].append(t)
    return plans
