"""Small heads around the trunk: MLP aligners and the image-code head."""

from __future__ import annotations

import torch
from torch import nn

from ..config import AlignerConfig, GenHeadConfig
from .linear import Linear


class MLPAligner(nn.Module):
    """Linear, then (GELU, Linear) x (depth - 1); indices match the official ``MlpProjector`` (0, 2, 4, ...)."""

    def __init__(self, cfg: AlignerConfig) -> None:
        super().__init__()
        mods: list[nn.Module] = [Linear(cfg.in_dim, cfg.out_dim)]
        for _ in range(cfg.depth - 1):
            mods += [nn.GELU(), Linear(cfg.out_dim, cfg.out_dim)]
        self.layers = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ImageHead(nn.Module):
    """Hidden state [.., H] -> image-code logits [.., num_codes]."""

    def __init__(self, cfg: GenHeadConfig) -> None:
        super().__init__()
        self.output_mlp_projector = Linear(cfg.in_dim, cfg.hidden_dim)
        self.vision_activation = nn.GELU()
        self.vision_head = Linear(cfg.hidden_dim, cfg.num_codes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vision_head(self.vision_activation(self.output_mlp_projector(x)))
