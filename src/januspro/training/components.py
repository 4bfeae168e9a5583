"""Component training for models trained from scratch: the VQ tokenizer and the SigLIP understanding ViT.

Same loop, checkpoints, resume, logs and config as the unified trainer (``stage.name: vq``); only the step
differs: reconstruction (L1 + L2) + codebook + commitment losses on the l2-normalised codebook, and codes
unused for ``stage.vq_restart_every`` steps re-seeded from encoder outputs of the current batch (dead-code
restart). The periodic evaluation decodes held-out images and checks them with the exact shapes detector.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..processing.image import normalise_generation, normalise_understanding
from .data import DataError, load_images_uint8, read_jsonl
from .trainer import StepStats, Trainer


class _ImageTrainer(Trainer):
    """A component trainer whose data is the images (and prompts) of a text-to-image file, held in RAM."""

    def image_rows(self) -> list[dict]:
        rows = read_jsonl(self.cfg.data.t2i)
        n = self.cfg.data.max_items
        if n < 0:
            raise DataError(f"data.max_items must be >= 0 (0: all records), got {n}")
        return rows[:n] if n else rows

    @property
    def show_progress(self) -> bool:
        return self.cfg.train.progress and self.dist.main


class VQTrainer(_ImageTrainer):
    def wrap_loss(self) -> torch.nn.Module:
        return self.model  # the VQ step calls the VQ directly (single process)

    def setup_data(self) -> None:
        from pathlib import Path

        from ..processing.image import fit_generation

        rows = self.image_rows()
        root = Path(self.cfg.data.t2i).parent
        size = self.model.cfg.vq.image_size
        n_eval = min(self.cfg.stage.eval_items, max(1, len(rows) // 10))
        # images held as uint8 (many fit in memory); [-1, 1] floats are made per batch
        self.images = load_images_uint8(rows, root, lambda im: fit_generation(im, size), size,
                                        progress=self.show_progress)
        self.eval_images = self.images[:n_eval]
        self.train_images = self.images[n_eval:] if len(rows) > n_eval else self.images
        self.usage = torch.zeros(self.model.cfg.vq.codebook_size, dtype=torch.long)

    def _batch(self) -> torch.Tensor:
        idx = self.rng.integers(0, len(self.train_images), size=self.cfg.train.batch_size)
        x = normalise_generation(self.train_images[torch.from_numpy(idx)])
        return x.to(self.device)

    def train_step(self) -> StepStats:
        t0 = time.perf_counter()
        vq = self.model.vq
        vq.train()
        x = self._batch()
        self.optim.zero_grad(set_to_none=True)
        # train.dtype bf16/auto: the convolutions run under bf16 autocast (1.3x here, artifacts/experiments/depth);
        # the codebook search and every loss stay fp32
        with self.autocast():
            z = vq.quant_conv(vq.encoder(x)).float()  # [B, C, h, w]
        q = vq.quantize(z)
        with self.autocast():
            rec = vq.decode_latents(q.z_q).float()
        rec_loss = (rec - x).abs().mean() + F.mse_loss(rec, x)
        loss = rec_loss + q.codebook_loss + q.commit_loss
        if not torch.isfinite(loss):
            from .trainer import TrainingError

            raise TrainingError(f"VQ loss is {float(loss)} at step {self.step + 1}; lower optim.lr")
        loss.backward()
        gn, lr = self.optimizer_step()
        self.usage += torch.bincount(q.codes.flatten().cpu(), minlength=self.usage.numel())
        used = int((self.usage > 0).sum())  # distinct codes since the last restart window began
        restarted = 0
        every = self.cfg.stage.vq_restart_every
        if every and self.step % every == 0:
            restarted = self._restart_dead_codes(z.detach())
            self.usage.zero_()
        dt = time.perf_counter() - t0
        return StepStats(self.step, float(loss.detach()), lr, gn, {
            "rec_loss": float(rec_loss.detach()), "codebook_loss": float(q.codebook_loss.detach()),
            "commit_loss": float(q.commit_loss.detach()), "codes_used": used, "restarted": restarted,
            "images_per_s": x.shape[0] / dt})

    def save_model(self, folder):  # type: ignore[override]
        """The whole model folder, plus the VQ tokenizer alone as ``OUT/vq.safetensors`` (outside the model
        folder, whose loader reads every safetensors file in it)."""
        from .trainer import save_vq_weights

        out = super().save_model(folder)
        save_vq_weights(self.model, out.parent / "vq.safetensors")
        return out

    @torch.no_grad()
    def _restart_dead_codes(self, z: torch.Tensor) -> int:
        dead = (self.usage == 0).nonzero().flatten()
        if dead.numel() == 0:
            return 0
        zf = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])  # [B*h*w, C]
        if self.model.cfg.vq.l2_norm:
            zf = F.normalize(zf, dim=-1)
        pick = torch.from_numpy(self.rng.integers(0, zf.shape[0], size=dead.numel())).to(zf.device)
        self.model.vq.quantize.embedding.weight[dead.to(zf.device)] = zf[pick]
        return int(dead.numel())

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Share of held-out images whose reconstruction the shapes detector reads exactly as the original,
        and the reconstruction error."""
        from ..processing.image import to_pil
        from ..shapes.detect import detect

        vq = self.model.vq
        vq.eval()
        x = normalise_generation(self.eval_images.to(self.device))
        recs = []
        for i in range(0, len(x), 64):
            recs.append(vq(x[i:i + 64])[0])
        rec = torch.cat(recs)
        exact = 0
        for orig, r in zip(to_pil(x), to_pil(rec), strict=True):
            a = sorted((d.shape, d.color, d.size) for d in detect(orig))
            b = sorted((d.shape, d.color, d.size) for d in detect(r))
            exact += a == b
        vq.train()
        return {"vq_exact": exact / len(x), "rec_l1": float((rec - x).abs().mean()),
                "codes_used": float(np.count_nonzero(self.usage.numpy()))}


class TextTower(nn.Module):
    """A small transformer text encoder for SigLIP-style training (discarded afterwards)."""

    def __init__(self, vocab: int, width: int, layers: int, heads: int, out_dim: int, max_len: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.pos = nn.Parameter(torch.zeros(max_len, width))
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.proj = nn.Linear(width, out_dim)
        self.max_len = max_len
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids) + self.pos[: ids.shape[1]]  # [B, T, W]
        x = self.encoder(x, src_key_padding_mask=~mask)
        x = self.norm(x)
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)  # [B, W]
        return self.proj(pooled)


class SigLIPHeads(nn.Module):
    """What SigLIP training adds around the understanding ViT: image projection, text tower, t and b, and
    (with ``patch_classes``) a linear per-patch classifier for the auxiliary dense loss."""

    def __init__(self, vision_width: int, vocab: int, dim: int = 128, patch_classes: int = 0) -> None:
        super().__init__()
        self.image_proj = nn.Linear(vision_width, dim)
        self.text = TextTower(vocab, 128, 2, 4, dim)
        self.log_t = nn.Parameter(torch.tensor(math.log(10.0)))
        self.bias = nn.Parameter(torch.tensor(-10.0))
        self.patch_head = nn.Linear(vision_width, patch_classes) if patch_classes else None


def sigmoid_loss(img: torch.Tensor, txt: torch.Tensor, log_t: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """SigLIP's pairwise sigmoid loss: every image-text pair is a binary match / no-match decision."""
    img = F.normalize(img, dim=-1)
    txt = F.normalize(txt, dim=-1)
    logits = img @ txt.t() * log_t.exp() + bias  # [B, B]
    labels = 2 * torch.eye(len(img), device=img.device) - 1
    return -F.logsigmoid(labels * logits).sum() / len(img)


class SigLIPTrainer(_ImageTrainer):
    """``stage.name: siglip``: the understanding ViT with the sigmoid loss on image-caption pairs
    (a text-to-image JSONL). Periodic eval: image-to-text top-1 retrieval on held-out pairs.

    With ``stage.dense_weight`` > 0 every ViT token also learns to name the object under its patch (a linear
    classifier over background + every shape-colour pair, labels from the records' ``scene``; with
    ``stage.dense_labels: factored`` two, one for its shape and one for its colour, each with a background
    class, their cross-entropies summed): a caption
    batch can be told apart by colour alone, so the plain loss lets the encoder discard shape and place
    (artifacts/experiments/siglip-shape-probe); a released SigLIP brings that knowledge from web-scale
    pretraining, a from-scratch shapes encoder gets it from this dense signal."""

    def wrap_loss(self) -> torch.nn.Module:
        return self.model

    def setup_data(self) -> None:
        from pathlib import Path

        from ..processing.image import fit_understanding
        from ..processing.tokenizer import JanusTokenizer

        if self.tokenizer_dir is None:
            raise DataError("the siglip stage needs a tokenizer: set model.tokenizer")
        self.dense = self.cfg.stage.dense_weight
        if self.dense < 0:  # checked before the images are loaded
            raise DataError(f"stage.dense_weight must be >= 0, got {self.dense}")
        self.factored = self.cfg.stage.dense_labels == "factored"
        if self.cfg.stage.dense_labels not in ("pair", "factored"):
            raise DataError(f"stage.dense_labels must be 'pair' or 'factored', got {self.cfg.stage.dense_labels!r}")
        self.grey = self.cfg.stage.dense_grey
        if self.grey < 0 or (self.grey and not (self.dense and self.factored)):
            raise DataError(f"stage.dense_grey must be >= 0 and needs stage.dense_weight > 0 with "
                            f"stage.dense_labels=factored, got {self.grey}")
        self.tokenizer = JanusTokenizer.from_dir(self.tokenizer_dir)
        rows = self.image_rows()
        root = Path(self.cfg.data.t2i).parent
        v = self.model.cfg.vision
        # uint8 [N, 3, S, S]; normalised per batch (the same values preprocess_understanding gives)
        self.pixels = load_images_uint8(rows, root, lambda im: fit_understanding(im, v.image_size, v.image_mean),
                                        v.image_size, progress=self.show_progress)
        self.texts = [r["prompt"] for r in rows]
        n_eval = min(self.cfg.stage.eval_items, max(2, len(rows) // 10))
        self.eval_idx = list(range(n_eval))
        self.train_idx = list(range(n_eval, len(rows))) or list(range(len(rows)))
        self.labels = self._patch_labels(rows) if self.dense else None
        from ..shapes.render import FACTORED_PATCH_CLASSES, PATCH_CLASSES

        classes = FACTORED_PATCH_CLASSES if self.factored else PATCH_CLASSES
        self.heads = SigLIPHeads(v.hidden_size, self.tokenizer.vocab_size,
                                 patch_classes=classes if self.dense else 0).to(self.device)

    def _patch_labels(self, rows: list[dict]) -> torch.Tensor:
        """[N, tokens] class of the object under every ViT patch of every record (see patch_labels)."""
        from ..shapes.render import patch_labels
        from ..shapes.world import Scene

        v = self.model.cfg.vision
        out = np.zeros((len(rows), v.num_tokens), dtype=np.int64)
        for i, r in enumerate(rows):
            if "scene" not in r:
                raise DataError(f"stage.dense_weight needs the scene of every record (shapes-world data); "
                                f"record {i} of {self.cfg.data.t2i} has none")
            out[i] = patch_labels(Scene.from_dict(r["scene"]), v.image_size, v.patch_size)
        return torch.from_numpy(out).to(self.device)

    def _ids(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [self.tokenizer.encode(t, add_bos=False)[: self.heads.text.max_len] or [self.tokenizer.pad_id]
                for t in texts]
        n = max(len(r) for r in rows)
        ids = torch.full((len(rows), n), self.tokenizer.pad_id, dtype=torch.long)
        mask = torch.zeros(len(rows), n, dtype=torch.bool)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = True
        return ids.to(self.device), mask.to(self.device)

    def _embed(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Image and text embeddings of the records, and the per-patch class logits (None without the
        dense loss)."""
        v = self.model.cfg.vision
        x = normalise_understanding(self.pixels[idx].to(self.device), v.image_mean, v.image_std)
        tokens = self.model.vision(x)  # [B, T, D]
        img = self.heads.image_proj(tokens.mean(1))  # mean-pooled tokens
        txt = self.heads.text(*self._ids([self.texts[i] for i in idx]))
        patch = self.heads.patch_head(tokens) if self.heads.patch_head is not None else None
        return img, txt, patch

    def dense_loss(self, patch: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the per-patch logits [B, T, C] against the (shape, colour) classes [B, T]: one term,
        or with factored labels the shape's and the colour's summed."""
        if not self.factored:
            return F.cross_entropy(patch.flatten(0, 1), labels.flatten())
        from ..shapes.render import FACTORED_SHAPE_CLASSES, factor_patch_labels

        shape, color = factor_patch_labels(labels)
        return (F.cross_entropy(patch[..., :FACTORED_SHAPE_CLASSES].flatten(0, 1), shape.flatten())
                + F.cross_entropy(patch[..., FACTORED_SHAPE_CLASSES:].flatten(0, 1), color.flatten()))

    def grey_shape_loss(self, idx: list[int]) -> torch.Tensor:
        """The shape classifier's cross-entropy on the records' images in greyscale (luminance, ITU-R 601
        weights, in all three channels): no colour to read the shape from. Adds no colour-shape pair to what the
        encoder sees (grey is no colour of the world's palette)."""
        from ..shapes.render import FACTORED_SHAPE_CLASSES, factor_patch_labels

        v = self.model.cfg.vision
        luma = torch.tensor([0.299, 0.587, 0.114], device=self.device).view(1, 3, 1, 1)
        px = self.pixels[idx].to(self.device).float()  # [B, 3, S, S] uint8 values
        grey = (px * luma).sum(1, keepdim=True).round().clamp(0, 255).expand(-1, 3, -1, -1)
        with self.autocast():
            tokens = self.model.vision(normalise_understanding(grey, v.image_mean, v.image_std))  # [B, T, D]
            logits = self.heads.patch_head(tokens)[..., :FACTORED_SHAPE_CLASSES]
        shape, _ = factor_patch_labels(self.labels[idx])
        return F.cross_entropy(logits.float().flatten(0, 1), shape.flatten())

    def patch_predictions(self, patch: torch.Tensor) -> torch.Tensor:
        """The (shape, colour) class [B, T] the patch logits name (factored: the two heads' answers joined)."""
        if not self.factored:
            return patch.argmax(-1)
        from ..shapes.render import FACTORED_SHAPE_CLASSES
        from ..shapes.world import COLORS

        shape = patch[..., :FACTORED_SHAPE_CLASSES].argmax(-1)
        color = patch[..., FACTORED_SHAPE_CLASSES:].argmax(-1)
        both = (shape > 0) & (color > 0)
        return torch.where(both, 1 + (shape - 1) * len(COLORS) + (color - 1), torch.zeros_like(shape))

    def extra_params(self) -> list[nn.Parameter]:
        return list(self.heads.parameters())

    def extra_state(self) -> dict[str, torch.Tensor]:
        return dict(self.heads.state_dict())

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        if state:
            self.heads.load_state_dict(state)

    def train_step(self) -> StepStats:
        t0 = time.perf_counter()
        self.model.train()
        idx = self.rng.choice(self.train_idx, size=min(self.cfg.train.batch_size, len(self.train_idx)),
                              replace=False).tolist()
        self.optim.zero_grad(set_to_none=True)
        with self.autocast():  # train.dtype; the losses below are fp32
            img, txt, patch = self._embed(idx)
        img, txt = img.float(), txt.float()
        loss = sigmoid_loss(img, txt, self.heads.log_t, self.heads.bias)
        extra = {}
        if patch is not None:
            dense = self.dense_loss(patch.float(), self.labels[idx])
            if self.grey:
                dense = dense + self.grey_shape_loss(idx[: self.grey])
            extra = {"sigmoid_loss": float(loss.detach()), "dense_loss": float(dense.detach())}
            loss = loss + self.dense * dense
        loss.backward()
        gn, lr = self.optimizer_step()
        return StepStats(self.step, float(loss.detach()), lr, gn,
                         {"t": float(self.heads.log_t.detach().exp()), **extra,
                          "images_per_s": len(idx) / (time.perf_counter() - t0)})

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        self.model.eval()
        img, txt, patch = self._embed(self.eval_idx)
        sims = F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).t()
        # a caption may describe several eval images equally well: count a hit when the best text is the
        # image's own caption or an identical string
        best = sims.argmax(1).tolist()
        hits = sum(self.texts[self.eval_idx[b]] == self.texts[self.eval_idx[i]] for i, b in enumerate(best))
        out = {"i2t_top1": hits / len(self.eval_idx)}
        if patch is not None:  # accuracy on the patches an object owns (most patches are background)
            labels = self.labels[self.eval_idx]
            on = labels > 0
            out["patch_acc"] = float((self.patch_predictions(patch)[on] == labels[on]).float().mean()) if on.any() else 0.0
        self.model.train()
        return out
