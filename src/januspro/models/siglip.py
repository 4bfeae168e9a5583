"""SigLIP ViT understanding encoder, structured like the official checkpoint's timm VisionTransformer.

No class token; learned absolute position embedding; pre-norm blocks with a fused qkv projection; GELU
(exact) MLP; a final LayerNorm whose output is the feature map handed to the understanding aligner.
The attention-pool head of the released checkpoint is never used by Janus and is not built.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import VisionConfig
from .attention import sdpa
from .linear import Linear


class ViTAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = Linear(dim, 3 * dim, bias=True)
        self.proj = Linear(dim, dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)  # [3, B, H, N, Dh]
        q, k, v = qkv.unbind(0)
        out = sdpa(q, k, v)  # [B, H, N, Dh]
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class ViTMLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = Linear(dim, hidden)
        self.fc2 = Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class ViTBlock(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.attn = ViTAttention(cfg.hidden_size, cfg.num_heads)
        self.norm2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlp = ViTMLP(cfg.hidden_size, cfg.mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SigLIPViT(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch_embed = nn.Conv2d(cfg.num_channels, cfg.hidden_size, cfg.patch_size, stride=cfg.patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(cfg.num_tokens, cfg.hidden_size))
        self.blocks = nn.ModuleList([ViTBlock(cfg) for _ in range(cfg.num_layers)])
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[N, 3, S, S] normalised pixels -> [N, num_tokens, hidden] features."""
        x = self.patch_embed(pixel_values.to(self.patch_embed.weight.dtype))  # [N, D, g, g]
        x = x.flatten(2).transpose(1, 2) + self.pos_embed  # [N, g*g, D]
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


def init_vit_(model: SigLIPViT, std: float = 0.02) -> None:
    """timm-style init for training from scratch."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    nn.init.trunc_normal_(model.pos_embed, std=std)
