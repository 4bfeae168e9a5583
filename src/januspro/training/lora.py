"""LoRA adapters applied from outside the model, and merging them back for saving.

``apply_lora`` swaps chosen Linear layers (by attribute name, e.g. ``qkv_proj``) for :class:`LoRALinear`, which
keeps the frozen base weight and adds ``(alpha / rank) * B @ A`` with ``B`` zero-initialised, so a fresh
adapter changes nothing. The understanding and generation paths share the trunk, so adapting the trunk's
projections adapts both; the aligners and the image head can be targeted too. ``merge_lora`` folds the
adapters into the base weights and restores plain Linear layers, so the result saves and loads as an
ordinary model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..models.linear import Linear

DEFAULT_TARGETS = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")


@dataclass
class LoRAConfig:
    rank: int = 0  # 0: no LoRA
    alpha: float = 16.0
    targets: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base
        self.rank = rank
        self.scale = alpha / rank
        w = base.weight
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, dtype=w.dtype, device=w.device))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, dtype=w.dtype, device=w.device))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale

    def merged(self) -> nn.Linear:
        out = Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None,
                     device=self.base.weight.device, dtype=self.base.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.scale * (self.lora_b @ self.lora_a))
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out


def apply_lora(model: nn.Module, cfg: LoRAConfig) -> list[nn.Parameter]:
    """Wrap every Linear whose attribute name is in ``cfg.targets``; returns the new adapter parameters."""
    if cfg.rank <= 0:
        raise ValueError("LoRA rank must be >= 1")
    params: list[nn.Parameter] = []
    wrapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if name in cfg.targets and isinstance(child, nn.Linear):
                lora = LoRALinear(child, cfg.rank, cfg.alpha)
                setattr(parent, name, lora)
                params += [lora.lora_a, lora.lora_b]
                wrapped += 1
    if wrapped == 0:
        raise ValueError(f"no Linear layer is named one of {cfg.targets}")
    return params


def merge_lora(model: nn.Module) -> int:
    """Fold every adapter into its base weight and put plain Linear layers back; returns how many."""
    n = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LoRALinear):
                setattr(parent, name, child.merged())
                n += 1
    return n
