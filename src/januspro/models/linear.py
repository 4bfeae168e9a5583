"""nn.Linear with faster CPU kernels for inference.

On CPU, at inference (no autograd), a large weight is reordered once into oneDNN's blocked layout and kept
beside the parameter; the product then runs through oneDNN's prepacked GEMM. Measured on the benchmark CPU
(2 cores) at Janus-Pro-1B widths: 1.5-2.5x faster than ``F.linear`` for the 1-16 rows of a decode step in fp32
and 1.5-1.9x in bf16 (see benchmarks/RESULTS.md). The best kernel depends on the CPU: on an AMX Xeon, MKL's
plain fp32 GEMM streamed those weights at ~50 GB/s against ~40 GB/s packed (bf16 packed stayed 1.6-1.8x
faster). The packed copy costs the weight's size in memory once more;
a weight is packed only while the machine has that much memory available, and ``JANUSPRO_CPU_PACK=0``
turns packing off. Where this CPU's oneDNN cannot pack a dtype (bf16 needs AVX-512 or AVX-NE-CONVERT), that
dtype runs the plain kernels. The copy is rebuilt when the weight changes (in-place updates bump its version).

Without packing, few-row fp32 inputs use ``(W @ x.T).T``, which streams the weight rows and is faster than
the GEMM path ``x @ W.T`` takes for them. Same parameters and state-dict keys as ``nn.Linear``.
"""

from __future__ import annotations

import os
import weakref

import torch
import torch.nn.functional as F
from torch import nn

SKINNY_ROWS = 128  # up to this many rows, use the weight-major product (unpacked fp32)
MIN_WEIGHT = 1 << 20  # weights of at least this many elements (small ones are overhead-bound)
PACK_DTYPES = (torch.float32, torch.bfloat16)
RESERVE_BYTES = 1 << 30  # memory left free after packing a weight


def packing_enabled() -> bool:
    return os.environ.get("JANUSPRO_CPU_PACK", "1") != "0" and torch.backends.mkldnn.is_available()


_UNSUPPORTED: set[torch.dtype] = set()  # dtypes whose packing this CPU's oneDNN refused (e.g. bf16 without AVX-512)


def pack_weight(w: torch.Tensor) -> torch.Tensor | None:
    """oneDNN's blocked copy of a weight, or None where this CPU's oneDNN cannot pack that dtype."""
    if w.dtype in _UNSUPPORTED:
        return None
    try:
        with torch.no_grad():
            return torch.ops.mkldnn._reorder_linear_weight(w.detach(), None)
    except RuntimeError:  # "bf16 path needs the cpu support avx_ne_convert or avx512bw, ..."
        _UNSUPPORTED.add(w.dtype)
        return None


def available_memory() -> int:
    """Bytes the OS can still hand out (Linux MemAvailable; elsewhere free physical pages or unbounded)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


# module -> (weight key, packed weight or None when refused); outside the module so that copying, pickling
# and saving a module never meet the opaque oneDNN tensor
_PACKS: weakref.WeakKeyDictionary[Linear, tuple[tuple[int, int, torch.dtype], torch.Tensor | None]] = (
    weakref.WeakKeyDictionary())


# weight data pointer -> the Linear that packed it, so the compile-visible op below can find the packed copy
_BY_PTR: dict[int, weakref.ref[Linear]] = {}


@torch.library.custom_op("januspro::packed_linear", mutates_args=(),
                         schema="(Tensor x, Tensor weight, Tensor? bias) -> Tensor")
def packed_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear`` through the packed copy of ``weight`` that :func:`prepack` made (plain kernels when there
    is none). torch.compile sees an opaque op, so a compiled decode step keeps oneDNN's packed GEMM instead of
    tracing a plain matmul (which was 1.4x slower at Janus-Pro-1B widths)."""
    ref = _BY_PTR.get(weight.data_ptr())
    mod = ref() if ref is not None else None
    packed = mod.packed if mod is not None and mod.weight.data_ptr() == weight.data_ptr() else None
    if packed is None or x.dtype != weight.dtype:
        return F.linear(x, weight, bias)
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


@packed_linear.register_fake
def _packed_linear_shape(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


def packable(w: torch.Tensor) -> bool:
    """Would an inference product with this weight use a packed copy (large, CPU, fp32/bf16, packing on)?"""
    return w.device.type == "cpu" and w.numel() >= MIN_WEIGHT and w.dtype in PACK_DTYPES and packing_enabled()


def prepack(module: nn.Module) -> int:
    """Pack every packable weight of ``module``'s :class:`Linear` layers now (before compiling a step that
    uses them); returns how many were packed."""
    return sum(m._packed_weight() is not None for m in module.modules()
               if isinstance(m, Linear) and packable(m.weight))


class Linear(nn.Linear):
    @property
    def packed(self) -> torch.Tensor | None:
        """The packed copy of the current weight, if one was made."""
        entry = _PACKS.get(self)
        w = self.weight
        return entry[1] if entry is not None and entry[0] == (w.data_ptr(), w._version, w.dtype) else None

    def _packed_weight(self) -> torch.Tensor | None:
        w = self.weight
        key = (w.data_ptr(), w._version, w.dtype)
        entry = _PACKS.get(self)
        if entry is not None and entry[0] == key:
            return entry[1]
        _PACKS.pop(self, None)  # drop a stale copy before making a new one
        packed = None
        if w.numel() * w.element_size() + RESERVE_BYTES <= available_memory():
            packed = pack_weight(w)
        _PACKS[self] = (key, packed)
        if packed is not None:
            ptr = w.data_ptr()
            _BY_PTR[ptr] = weakref.ref(self, lambda r, p=ptr: _BY_PTR.pop(p) if _BY_PTR.get(p) is r else None)
        return packed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if x.device.type != "cpu" or w.numel() < MIN_WEIGHT:
            return F.linear(x, w, self.bias)
        inference = not (torch.is_grad_enabled() and (w.requires_grad or x.requires_grad))
        if inference and x.dtype == w.dtype and w.dtype in PACK_DTYPES and packing_enabled():
            if torch.compiler.is_compiling():  # the packed tensor is not traceable: an opaque op finds it
                return packed_linear(x, w, self.bias)
            packed = self._packed_weight()
            if packed is not None:
                return torch.ops.mkldnn._linear_pointwise(x, packed, self.bias, "none", [], "")
        if x.dtype != torch.float32 or x.numel() > SKINNY_ROWS * x.shape[-1]:
            return F.linear(x, w, self.bias)
        x2 = x.reshape(-1, x.shape[-1])  # [M, in]
        if self.bias is not None:
            y = torch.addmm(self.bias[:, None], w, x2.t())  # [out, M]
        else:
            y = torch.mm(w, x2.t())  # [out, M]
        return y.t().contiguous().view(*x.shape[:-1], self.out_features)
