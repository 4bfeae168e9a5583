"""Text-to-image with classifier-free guidance.

Official semantics: the unconditional prompt is the conditional prompt with every position except the first
(BOS) and the last (``<begin_of_image>``) replaced by the pad id; logits ``uncond + w * (cond - uncond)`` at
temperature, then sample; the sampled code is fed to both rows.

Unlike the official sampler, one call takes a batch of different prompts of different lengths (left-padded,
masked, with per-row RoPE positions), prefills each prompt once and then expands its cache to ``n`` samples.
Row layout: all conditional rows first (prompt-major, sample-minor), then the unconditional rows in the same
order; a test proves the result equal to the official interleaved layout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from PIL import Image

from ..models.janus import JanusModel
from ..models.kv_cache import KVCache
from ..models.linear import prepack
from ..models.llm import RopeTable
from ..processing.image import to_pil
from ..processing.processor import JanusProcessor, left_pad
from .decode import COMPILE_BUCKET, attended_slots, compiled, prefill
from .rerank import JUDGES, judge_scores, pick_best
from .sampling import (
    SamplingParams,
    classifier_free_guidance,
    draw_noise,
    draw_noise_per,
    make_generator,
    sample_with_noise,
)

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class ImageGenParams:
    cfg_weight: float = 5.0
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    n: int = 1  # images per prompt
    seed: int | None = None
    compile: bool = False  # torch.compile the decode step (CUDA graphs on GPU)
    # guidance schedule: the weight moves linearly from cfg_weight (first code) to cfg_end (last code); None: constant
    cfg_end: float | None = None
    # draw best_of candidates for every image and keep the one the model's own understanding path judges best
    # (see rerank.py); applied by generate_images, 1 = plain sampling
    best_of: int = 1
    # how the candidates are judged: "describe" (log p(prompt | image, "Describe the image.")) or "ask"
    # (log p(yes) - log p(no) to "Does the image show <prompt>?")
    judge: str = "describe"
    # the model first writes a drawing plan after the prompt, sampled at plan_temperature (0: greedy), then draws
    # from prompt + plan (plan.py; for models trained with plans, such as janus-pro-shapes); one plan per image
    plan: bool = False
    plan_temperature: float = 0.0

    def __post_init__(self) -> None:
        if self.cfg_weight < 0:
            raise ValueError(f"cfg_weight must be >= 0, got {self.cfg_weight}")
        if self.cfg_end is not None and self.cfg_end < 0:
            raise ValueError(f"cfg_end must be >= 0, got {self.cfg_end}")
        if self.n < 1:
            raise ValueError(f"n (images per prompt) must be >= 1, got {self.n}")
        if self.best_of < 1:
            raise ValueError(f"best_of (candidates per image) must be >= 1, got {self.best_of}")
        if self.judge not in JUDGES:
            raise ValueError(f"judge must be one of {JUDGES}, got {self.judge!r}")
        SamplingParams(self.temperature, self.top_k, self.top_p)  # validates
        if self.plan_temperature < 0:
            raise ValueError(f"plan_temperature must be >= 0, got {self.plan_temperature}")

    @property
    def sampling(self) -> SamplingParams:
        return SamplingParams(self.temperature, self.top_k, self.top_p)

    @property
    def uses_guidance(self) -> bool:
        """Whether any code is sampled with a weight other than 1 (else the unconditional rows are not run)."""
        return self.cfg_weight != 1.0 or (self.cfg_end is not None and self.cfg_end != 1.0)

    def cfg_weights(self, num_tokens: int) -> list[float]:
        """The guidance weight of each code position."""
        end = self.cfg_weight if self.cfg_end is None else self.cfg_end
        return torch.linspace(self.cfg_weight, end, num_tokens, dtype=torch.float64).tolist()


def unconditional_ids(ids: Sequence[int], pad_id: int) -> list[int]:
    """The official unconditional prompt: keep the first and last token, pad everything between."""
    ids = list(ids)
    if len(ids) < 2:
        raise ValueError("a generation prompt has at least BOS and <begin_of_image>")
    return [ids[0]] + [pad_id] * (len(ids) - 2) + [ids[-1]]


def image_decode_step(model: JanusModel, cache: KVCache, hidden: torch.Tensor, i: torch.Tensor,
                      noise: torch.Tensor | None, key_mask: torch.Tensor, next_pos: torch.Tensor, slots: torch.Tensor,
                      first_slot: torch.Tensor, rope: RopeTable, cfg_weight: float | torch.Tensor,
                      sampling: SamplingParams, use_cfg: bool, kv_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick image code ``i`` for every sample and run the trunk on it.

    ``hidden`` [R, H] is the trunk output before code ``i`` (R = 2 x samples with guidance: conditional rows,
    then unconditional ones); ``i`` and ``first_slot`` (the cache slot of code 0) are 0-d tensors and ``noise``
    [samples, codebook] the step's Exp(1) draws (None when greedy); attention reads the first ``kv_len`` cache
    slots (see :func:`attended_slots`); ``cfg_weight`` may be a 0-d tensor (a schedule: no recompiling per step).
    The whole step (image head, guidance, sampling, code embedding, trunk) is one pure function over the static
    cache: compiled, it is one graph.
    Returns the codes [samples] and the next hidden states [R, H].
    """
    logits = model.image_logits(hidden).float()  # [R, K]
    if use_cfg:
        cond, uncond = logits.chunk(2, dim=0)
        logits = classifier_free_guidance(cond, uncond, cfg_weight)
    code = sample_with_noise(logits, sampling, noise)  # [samples]
    fed = torch.cat([code, code]) if use_cfg else code
    emb = model.embed_image_codes(fed)[:, None]  # [R, 1, H]
    slot = (first_slot + i).reshape(1)  # [1]
    mask = key_mask[..., :kv_len] & (slots[:kv_len] <= slot)  # [R, 1, 1, kv_len]
    return code, model(emb, (next_pos + i)[:, None], mask, cache, slot, rope, kv_len)[:, 0]


_COMPILED_STEP: list[Callable[..., tuple[torch.Tensor, torch.Tensor]]] = []


def _compiled_step() -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    if not _COMPILED_STEP:
        _COMPILED_STEP.append(compiled(image_decode_step))
    return _COMPILED_STEP[0]


@torch.inference_mode()
def generate_codes(model: JanusModel, cond_ids: list[list[int]], uncond_ids: list[list[int]] | None,
                   params: ImageGenParams, pad_id: int,
                   generator: torch.Generator | Sequence[torch.Generator] | None = None,
                   progress: ProgressFn | None = None) -> torch.Tensor:
    """Image codes [len(cond_ids) * n, num_tokens] for token-id prompts (each ending with <begin_of_image>).

    ``generator`` is one generator for all rows, or one per prompt: then a prompt's ``n`` rows draw their
    randomness from its own generator alone, as if it were generated by itself.

    ``uncond_ids`` gives the unconditional (or negative) prompt per conditional prompt; it is ignored when
    every guidance weight is 1 (guidance is then the conditional logits alone, so those rows are not run).
    With ``params.compile`` the decode step is compiled (cache length rounded up so that prompts of
    different lengths reuse it); the codes are the same as without.
    """
    if not cond_ids:
        raise ValueError("no prompts given")
    if params.best_of != 1:
        raise ValueError("best_of is applied by generate_images, which decodes and judges the candidates; "
                         "generate_codes draws codes only (ask it for n * best_of images instead)")
    device = model.lm_head.weight.device
    b, n = len(cond_ids), params.n
    per_prompt_gens = generator is not None and not isinstance(generator, torch.Generator)
    if per_prompt_gens and len(generator) != b:  # type: ignore[arg-type]
        raise ValueError(f"{len(generator)} generators for {b} prompts")  # type: ignore[arg-type]
    use_cfg = params.uses_guidance
    rows = list(cond_ids)
    if use_cfg:
        if uncond_ids is None or len(uncond_ids) != b:
            raise ValueError("one unconditional prompt per prompt is required for guidance")
        rows += list(uncond_ids)
    ids, mask = left_pad(rows, pad_id)
    ids, mask = ids.to(device), mask.to(device)
    num_tokens = model.cfg.vq.num_tokens
    hidden, state = prefill(model, model.llm.embed_tokens(ids), mask, num_tokens,
                            bucket=COMPILE_BUCKET if params.compile else 1)
    # expand each prefilled row to its n samples: [cond(b, j)...] + [uncond(b, j)...]
    per_prompt = torch.arange(b, device=device).repeat_interleave(n)  # [b*n]
    expand = torch.cat([per_prompt, per_prompt + b]) if use_cfg else per_prompt
    state = state.expand(expand)
    hidden = hidden.index_select(0, expand)
    if params.compile:
        prepack(model, rows=expand.numel())  # the compiled step reaches each weight's CPU kernel through an opaque op
    fn = _compiled_step() if params.compile else image_decode_step
    clone = params.compile and device.type == "cuda"  # CUDA-graph outputs are overwritten by the next replay
    codes = torch.empty(b * n, num_tokens, dtype=torch.long, device=device)
    sp = params.sampling
    steps = torch.arange(num_tokens, device=device)
    first = torch.tensor(state.prompt_len, device=device)
    k = model.cfg.vq.codebook_size
    # a constant weight stays a Python float (as before); a schedule is one 0-d tensor per code
    weights: list[float] | list[torch.Tensor] = [params.cfg_weight] * num_tokens
    if params.cfg_end is not None:
        weights = list(torch.tensor(params.cfg_weights(num_tokens), dtype=torch.float32, device=device).unbind())
    for i in range(num_tokens):
        if sp.greedy:
            noise = None
        elif per_prompt_gens:
            noise = draw_noise_per(generator, n, k, device)  # type: ignore[arg-type]
        else:
            noise = draw_noise(b * n, k, generator, device)  # type: ignore[arg-type]
        code, hidden = fn(model, state.cache, hidden, steps[i], noise, state.key_mask, state.next_pos, state.slots,
                          first, state.rope, weights[i], sp, use_cfg,
                          attended_slots(state, i, params.compile))
        if clone:
            hidden = hidden.clone()
        codes[:, i] = code
        if progress is not None:
            progress(i + 1, num_tokens)
    return codes


@torch.inference_mode()
def decode_codes(model: JanusModel, codes: torch.Tensor, chunk: int = 8) -> list[Image.Image]:
    """VQ-decode codes [N, num_tokens] to PIL images, ``chunk`` at a time to bound memory."""
    out: list[Image.Image] = []
    for part in codes.split(chunk):
        out += to_pil(model.vq.decode_code(part))
    return out


def generate_images(model: JanusModel, processor: JanusProcessor, prompts: str | Sequence[str],
                    params: ImageGenParams | None = None, negative_prompt: str | Sequence[str | None] | None = None,
                    progress: ProgressFn | None = None, seeds: Sequence[int] | None = None,
                    plans: list[list[str]] | None = None) -> list[list[Image.Image]]:
    """Generate ``params.n`` images for each prompt; returns one list of PIL images per prompt.

    ``negative_prompt`` replaces the unconditional text (one for all prompts, or one per prompt).
    The same ``seed`` gives the same images. ``seeds`` (one per prompt, instead of ``params.seed``) samples
    each prompt from its own generator: its images are then those of a call with that prompt alone and
    ``seed=seeds[i]``, whatever else is in the batch (up to the rounding of a padded batch).
    With ``params.best_of`` = K > 1, each prompt's ``n * K`` candidates are drawn as one call with ``n * K``
    images would draw them, and image ``j`` is the best of candidates ``j*K .. j*K+K-1`` by
    :func:`~januspro.generation.rerank.judge_scores` with ``params.judge``.
    With ``params.plan``, every image (every candidate) is drawn after its own plan (:mod:`.plan`); a list
    passed as ``plans`` receives, per prompt, the plans of the images returned, and each image holds its plan
    as ``image.info["plan"]``.
    """
    params = params or ImageGenParams()
    prompt_list = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompt_list:
        raise ValueError("no prompts given")
    if seeds is not None and len(seeds) != len(prompt_list):
        raise ValueError(f"{len(seeds)} seeds for {len(prompt_list)} prompts")
    cond = [processor.encode_generation_prompt(p) for p in prompt_list]
    negated = [False] * len(cond)  # which prompts have a negative prompt as their unconditional row
    if negative_prompt is None:
        uncond = [unconditional_ids(c, processor.tokenizer.pad_id) for c in cond]
    else:
        negs = [negative_prompt] * len(cond) if isinstance(negative_prompt, str) else list(negative_prompt)
        if len(negs) != len(cond):
            raise ValueError(f"{len(negs)} negative prompts for {len(cond)} prompts")
        # None in the list: that prompt keeps the official unconditional row
        uncond = [unconditional_ids(c, processor.tokenizer.pad_id) if p is None else processor.encode_generation_prompt(p)
                  for c, p in zip(cond, negs, strict=True)]
        negated = [p is not None for p in negs]
    device = model.lm_head.weight.device
    gen = (make_generator(params.seed, device) if seeds is None
           else [make_generator(int(s), device) for s in seeds])
    k = params.best_of
    draw = params if k == 1 else replace(params, n=params.n * k, best_of=1)
    texts: list[str] = []
    if params.plan:  # one row per image, each prompt followed by its own plan
        cond, uncond, gen, texts = _planned_rows(model, processor, cond, uncond, negated, draw, gen)
        draw = replace(draw, n=1)
    codes = generate_codes(model, cond, uncond, draw, processor.tokenizer.pad_id, gen, progress)
    images = decode_codes(model, codes)
    per_prompt = params.n * k
    if k > 1:
        per_image = [p for p in prompt_list for _ in range(per_prompt)]
        scores = judge_scores(model, processor, images, per_image, params.judge)
        best = pick_best(scores, k).tolist()
        images = [images[i] for i in best]
        texts = [texts[i] for i in best] if texts else texts
    for im, text in zip(images, texts, strict=False):  # the plan travels with its image (PIL's info dict)
        im.info["plan"] = text
    if plans is not None and texts:
        plans += [texts[i * params.n:(i + 1) * params.n] for i in range(len(prompt_list))]
    return [images[i * params.n:(i + 1) * params.n] for i in range(len(prompt_list))]


def _planned_rows(model: JanusModel, processor: JanusProcessor, cond: list[list[int]], uncond: list[list[int]],
                  negated: list[bool], draw: ImageGenParams,
                  gen: torch.Generator | list[torch.Generator | None] | None
                  ) -> tuple[list[list[int]], list[list[int]], torch.Generator | list[torch.Generator | None] | None,
                             list[str]]:
    """Every image's row: its prompt, the plan the model writes after it, ``<begin_of_image>``; the matching
    unconditional rows (the padded row, or the negative prompt); the generators per row (a prompt's own, when
    each prompt has one) and the plans as text."""
    from .plan import write_plans

    tok = processor.tokenizer
    m = draw.n
    heads = [c[:-1] for c in cond for _ in range(m)]
    row_gen = gen if gen is None or isinstance(gen, torch.Generator) else [g for g in gen for _ in range(m)]
    specials = (tok.bos_id, tok.pad_id, tok.image_id, tok.image_end_id)
    ids = write_plans(model, heads, tok.image_start_id, (tok.eos_id,), specials, tok.pad_id,
                      draw.plan_temperature, row_gen)
    rows = [h + p + [tok.image_start_id] for h, p in zip(heads, ids, strict=True)]
    un = [uncond[j // m] if negated[j // m] else unconditional_ids(r, tok.pad_id) for j, r in enumerate(rows)]
    return rows, un, row_gen, [processor.decode(p).strip() for p in ids]
