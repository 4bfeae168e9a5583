"""Data parallelism from outside the model, on torch.distributed (``torchrun --nproc_per_node=N``).

The training loss runs through :class:`LossModule`, a thin module whose ``forward`` is one packed batch's
loss, so an existing engine can wrap it: DDP (any backend; gloo on CPU), or FSDP2 ``fully_shard`` on GPU
(each decoder layer and the root). Every rank draws the same step sample list and takes its share; the loss
is normalised by the *global* target count, so N processes compute the gradient of the same batch as one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..models.janus import JanusModel
from .packing import PackedBatch, packed_loss


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group torchrun describes in the environment (a no-op for a single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


class LossModule(nn.Module):
    """``forward(batch, normaliser)`` -> (loss, [text_sum, text_count, image_sum, image_count])."""

    def __init__(self, model: JanusModel, image_token_id: int) -> None:
        super().__init__()
        self.model = model
        self.image_token_id = image_token_id

    def forward(self, batch: PackedBatch, normaliser: float) -> tuple[torch.Tensor, torch.Tensor]:
        parts = packed_loss(self.model, batch, self.image_token_id, normaliser)
        stats = torch.tensor([parts.text_sum, parts.text_count, parts.image_sum, parts.image_count],
                             dtype=torch.float64)
        return parts.total, stats


def wrap(module: LossModule, mode: str, info: DistInfo) -> nn.Module:
    """Apply the configured engine: ``ddp`` or ``fsdp`` (FSDP2 ``fully_shard``, GPU) when distributed."""
    if not info.enabled or mode == "none":
        return module
    if mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [info.local_rank] if torch.cuda.is_available() and next(module.parameters()).is_cuda else None
        return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=True)
    if mode == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for layer in module.model.llm.layers:
            fully_shard(layer)
        fully_shard(module)
        return module
    raise ValueError(f"unknown train.parallel {mode!r}; choose none, ddp or fsdp")


def all_reduce_sum(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        x = x.clone()
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x
