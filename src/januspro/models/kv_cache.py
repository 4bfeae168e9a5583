"""Explicit, preallocated key/value cache passed into the decoder.

One tensor pair holds every layer: ``k``/``v`` of shape [layers, batch, kv_heads, max_len, head_dim]. The
cache never grows; callers say where new entries go (``positions``) so a decode step has static shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class KVCache:
    k: torch.Tensor  # [L, B, Hkv, T, D]
    v: torch.Tensor  # [L, B, Hkv, T, D]

    @classmethod
    def allocate(cls, num_layers: int, batch: int, num_kv_heads: int, max_len: int, head_dim: int,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> KVCache:
        shape = (num_layers, batch, num_kv_heads, max_len, head_dim)
        return cls(torch.zeros(shape, dtype=dtype, device=device), torch.zeros(shape, dtype=dtype, device=device))

    @property
    def batch_size(self) -> int:
        return self.k.shape[1]

    @property
    def max_len(self) -> int:
        return self.k.shape[3]

    def update(self, layer: int, positions: torch.Tensor, k_new: torch.Tensor, v_new: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write ``k_new``/``v_new`` [B, Hkv, t, D] at ``positions`` [t] and return the layer's full cache."""
        k_layer = self.k[layer]  # [B, Hkv, T, D]
        v_layer = self.v[layer]
        k_layer.index_copy_(2, positions, k_new.to(k_layer.dtype))
        v_layer.index_copy_(2, positions, v_new.to(v_layer.dtype))
        return k_layer, v_layer

    def select_rows(self, rows: torch.Tensor) -> KVCache:
        """A new cache holding the given batch rows (e.g. expand one prefilled prompt to n samples)."""
        return KVCache(self.k.index_select(1, rows).contiguous(), self.v.index_select(1, rows).contiguous())
