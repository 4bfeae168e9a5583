"""Sequence packing and the training forward/loss.

Samples are packed into rows of a fixed length; each keeps its own RoPE positions (from 0) and attends only
within itself (a block-diagonal causal mask), so a packed row computes exactly what its samples would alone.
The loss is a *sum* of token cross-entropies divided by a normaliser the caller chooses (the target count of
the whole step, across accumulation and processes), so packing, accumulation and data parallelism all give
the same gradient as one big batch. Each target may carry a weight by the task of its sample
(``data.loss_weights``): an understanding answer is one or two tokens against 576 (here 64) image codes per
text-to-image sample, so with equal weights it gets a tiny share of the gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.janus import JanusModel
from .data import IGNORE, TARGET_IMAGE, TARGET_TEXT, Sample


@dataclass
class PackedBatch:
    ids: torch.Tensor  # [B, L] input token ids (pad where empty)
    gen_codes: torch.Tensor  # [B, L] image code inputs, -1 elsewhere
    positions: torch.Tensor  # [B, L] RoPE position within each sample
    segments: torch.Tensor  # [B, L] sample index within the row, -1 for padding
    targets: torch.Tensor  # [B, L] target ids, IGNORE where none
    target_kind: torch.Tensor  # [B, L]
    pixel_values: torch.Tensor  # [N, 3, S, S] understanding images in reading order
    kinds: list[list[str]]  # per row, the kind of each packed sample
    weights: torch.Tensor | None = None  # [B, L] loss weight of each target (None: all 1)

    def to(self, device: torch.device | str) -> PackedBatch:
        return PackedBatch(self.ids.to(device), self.gen_codes.to(device), self.positions.to(device),
                           self.segments.to(device), self.targets.to(device), self.target_kind.to(device),
                           self.pixel_values.to(device), self.kinds,
                           None if self.weights is None else self.weights.to(device))

    def mask(self) -> torch.Tensor:
        """[B, 1, L, L] boolean: causal within a sample, nothing across samples (padding sees itself)."""
        seg = self.segments
        same = seg[:, :, None] == seg[:, None, :]  # [B, L, L]
        causal = torch.ones(seg.shape[1], seg.shape[1], dtype=torch.bool, device=seg.device).tril()
        own = torch.eye(seg.shape[1], dtype=torch.bool, device=seg.device)
        return ((same & causal) | own)[:, None]


def pack(samples: list[Sample], length: int, pad_id: int, image_shape: tuple[int, int, int],
         task_weights: dict[str, float] | None = None) -> PackedBatch:
    """First-fit packing of samples (in order) into rows of ``length`` tokens. Samples longer than
    ``length`` are an error (raise the length or shorten the data). ``task_weights`` (kind -> weight; a kind
    not named weighs 1) scales the loss of every target of a sample by its kind's weight."""
    rows: list[list[Sample]] = []
    fill: list[int] = []
    for s in samples:
        if len(s) > length:
            raise ValueError(f"a {s.kind} sample of {len(s)} tokens does not fit the packing length {length}")
        for r, used in enumerate(fill):
            if used + len(s) <= length:
                rows[r].append(s)
                fill[r] += len(s)
                break
        else:
            rows.append([s])
            fill.append(len(s))
    b = len(rows)
    ids = torch.full((b, length), pad_id, dtype=torch.long)
    gen = torch.full((b, length), -1, dtype=torch.long)
    pos = torch.zeros((b, length), dtype=torch.long)
    seg = torch.full((b, length), -1, dtype=torch.long)
    tgt = torch.full((b, length), IGNORE, dtype=torch.long)
    kind = torch.zeros((b, length), dtype=torch.long)
    weighted = task_weights is not None and any(w != 1.0 for w in task_weights.values())
    weight = torch.ones((b, length)) if weighted else None
    pixels: list[torch.Tensor] = []
    for r, row in enumerate(rows):
        at = 0
        for k, s in enumerate(row):
            n = len(s)
            ids[r, at:at + n] = torch.tensor(s.ids)
            gen[r, at:at + n] = torch.tensor(s.gen_codes)
            pos[r, at:at + n] = torch.arange(n)
            seg[r, at:at + n] = k
            tgt[r, at:at + n] = torch.tensor(s.targets)
            kind[r, at:at + n] = torch.tensor(s.target_kind)
            if weight is not None:
                weight[r, at:at + n] = float(task_weights.get(s.kind, 1.0))  # type: ignore[union-attr]
            pixels += s.images
            at += n
    pv = torch.stack(pixels) if pixels else torch.zeros(0, *image_shape)
    return PackedBatch(ids, gen, pos, seg, tgt, kind, pv, [[s.kind for s in row] for row in rows], weight)


@dataclass
class LossParts:
    total: torch.Tensor  # differentiable: summed (weighted) CE / normaliser
    text_sum: float  # unweighted CE sums and counts, for logging
    text_count: int
    image_sum: float
    image_count: int


def packed_loss(model: JanusModel, batch: PackedBatch, image_token_id: int, normaliser: float) -> LossParts:
    """Summed cross-entropy of every text and image target in the batch (each times its weight, when the
    batch has weights), divided by ``normaliser``."""
    emb = model.embed_inputs(batch.ids, batch.pixel_values if batch.pixel_values.numel() else None, image_token_id)
    is_gen = batch.gen_codes >= 0
    if is_gen.any():
        emb = emb.clone()
        emb[is_gen] = model.embed_image_codes(batch.gen_codes[is_gen]).to(emb.dtype)
    hidden = model(emb, batch.positions, batch.mask())  # [B, L, H]
    total = hidden.new_zeros((), dtype=torch.float32)
    text_sel = batch.target_kind == TARGET_TEXT
    img_sel = batch.target_kind == TARGET_IMAGE
    t_sum = i_sum = 0.0
    if text_sel.any():
        ce = F.cross_entropy(model.text_logits(hidden[text_sel]).float(), batch.targets[text_sel], reduction="none")
        total = total + _weighted_sum(ce, batch.weights, text_sel)
        t_sum = float(ce.detach().sum())
    if img_sel.any():
        ce = F.cross_entropy(model.image_logits(hidden[img_sel]).float(), batch.targets[img_sel], reduction="none")
        total = total + _weighted_sum(ce, batch.weights, img_sel)
        i_sum = float(ce.detach().sum())
    return LossParts(total / normaliser, t_sum, int(text_sel.sum()), i_sum, int(img_sel.sum()))


def _weighted_sum(ce: torch.Tensor, weights: torch.Tensor | None, sel: torch.Tensor) -> torch.Tensor:
    return ce.sum() if weights is None else (ce * weights[sel]).sum()
