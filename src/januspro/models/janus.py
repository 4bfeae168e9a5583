"""The composed Janus-Pro model: decoupled visual encoders around one decoder trunk.

Understanding: pixels -> SigLIP -> aligner -> replaces the image-slot token embeddings -> trunk -> lm_head.
Generation: image codes -> gen_embed -> gen_aligner -> trunk -> gen_head -> next-code logits.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import JanusConfig
from .heads import ImageHead, MLPAligner
from .kv_cache import KVCache
from .linear import Linear
from .llm import DecoderLM, RopeTable, init_llm_
from .siglip import SigLIPViT, init_vit_
from .vq import VQModel


class JanusModel(nn.Module):
    def __init__(self, cfg: JanusConfig) -> None:
        super().__init__()
        assert cfg.aligner and cfg.gen_aligner and cfg.gen_head
        self.cfg = cfg
        self.llm = DecoderLM(cfg.llm)
        self.lm_head = Linear(cfg.llm.hidden_size, cfg.llm.vocab_size, bias=False)
        self.vision = SigLIPViT(cfg.vision)
        self.aligner = MLPAligner(cfg.aligner)
        self.vq = VQModel(cfg.vq)
        self.gen_embed = nn.Embedding(cfg.vq.codebook_size, cfg.gen_aligner.in_dim)
        self.gen_aligner = MLPAligner(cfg.gen_aligner)
        self.gen_head = ImageHead(cfg.gen_head)
        if cfg.llm.tie_word_embeddings:
            self.lm_head.weight = self.llm.embed_tokens.weight

    # ------------------------------------------------------------------ understanding path
    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[N, 3, S, S] normalised pixels -> [N, num_tokens, H] LLM-space image embeddings."""
        return self.aligner(self.vision(pixel_values))

    def embed_inputs(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None = None,
                     image_token_id: int | None = None) -> torch.Tensor:
        """Embed a batch of token ids [B, T], writing image features into the image-slot positions.

        Images are taken in reading order (row by row, left to right); each image fills ``num_tokens``
        consecutive slots marked by ``image_token_id``.
        """
        emb = self.llm.embed_tokens(input_ids)  # [B, T, H]
        if pixel_values is None or pixel_values.shape[0] == 0:
            return emb
        if image_token_id is None:
            raise ValueError("image_token_id is required when pixel_values are given")
        slots = input_ids == image_token_id  # [B, T]
        feats = self.encode_images(pixel_values).to(emb.dtype)  # [N, n, H]
        n_slots = int(slots.sum())
        if n_slots != feats.shape[0] * feats.shape[1]:
            raise ValueError(
                f"the prompt has {n_slots} image slots but {feats.shape[0]} image(s) x {feats.shape[1]} features "
                f"= {feats.shape[0] * feats.shape[1]} were given")
        emb = emb.clone()
        emb[slots] = feats.reshape(-1, feats.shape[-1])
        return emb

    def text_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(hidden)

    # ------------------------------------------------------------------ generation path
    def embed_image_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """[..] image codes -> [.., H] trunk inputs."""
        return self.gen_aligner(self.gen_embed(codes))

    def image_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """[.., H] hidden states -> [.., codebook_size] next-code logits."""
        return self.gen_head(hidden)

    # ------------------------------------------------------------------ trunk
    def forward(self, inputs_embeds: torch.Tensor, position_ids: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, cache: KVCache | None = None,
                cache_positions: torch.Tensor | None = None, rope: RopeTable | None = None,
                kv_len: int | None = None, last_only: bool = False) -> torch.Tensor:
        """Trunk hidden states [B, T, H] (or [B, 1, H] with ``last_only``) for input embeddings [B, T, H]
        (see :meth:`DecoderLM.forward`)."""
        return self.llm(inputs_embeds, position_ids, mask, cache, cache_positions, rope, kv_len, last_only)

    def rope_table(self, n: int, dtype: torch.dtype | None = None) -> RopeTable:
        c = self.cfg.llm
        w = self.lm_head.weight
        return RopeTable(n, c.head_dim, c.rope_theta, dtype or w.dtype, w.device)

    def new_cache(self, batch: int, max_len: int, dtype: torch.dtype | None = None,
                  device: torch.device | str | None = None) -> KVCache:
        p = self.lm_head.weight
        c = self.cfg.llm
        return KVCache.allocate(c.num_layers, batch, c.num_kv_heads, max_len, c.head_dim,
                                dtype or p.dtype, device or p.device)

    def init_weights_(self, std: float = 0.02) -> None:
        """Initialise every part for training from scratch."""
        init_llm_(self.llm, std)
        init_vit_(self.vision, std)
        for mod in (self.aligner, self.gen_aligner, self.gen_head):
            for m in mod.modules():
                if isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0.0, std)
                    nn.init.zeros_(m.bias)
        nn.init.normal_(self.gen_embed.weight, 0.0, 1.0)
        if not self.cfg.llm.tie_word_embeddings:
            nn.init.normal_(self.lm_head.weight, 0.0, std)
        for m in self.vq.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="linear")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.GroupNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        k = self.cfg.vq.codebook_size
        nn.init.uniform_(self.vq.quantize.embedding.weight, -1.0 / k, 1.0 / k)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
