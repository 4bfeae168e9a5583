"""nn.Linear with the fastest CPU kernel this machine has for each weight shape, at inference.

Four kernels compute the same product ``x @ W.T + b`` and the fastest one depends on the CPU, the dtype,
the weight's shape and the number of rows (measured at Janus-Pro-1B widths, 2 cores, few-row decode products):

- ``packed``: the weight reordered once into oneDNN's blocked layout, multiplied by its prepacked GEMM. 1.5-2.5x
  faster than ``F.linear`` on an AVX-512 and an AVX2 EPYC, but slower than MKL's plain fp32 GEMM on an AMX Xeon
  (~40 against ~50 GB/s). It costs the weight's memory once more, is only made while the machine has that much
  memory free, and oneDNN packs bf16 only on CPUs with AVX-512 (or AVX-NE-CONVERT).
- ``linear``: ``F.linear`` (MKL / oneDNN's plain GEMM).
- ``wmajor``: ``(W @ x.T).T`` for fp32 inputs of up to ``SKINNY_ROWS`` rows, which streams the weight rows and
  beats ``x @ W.T`` for few rows on several CPUs.
- ``gemv``: januspro's own few-row kernel (:mod:`januspro.models.gemv`, C built on first use with the machine's
  compiler) for fp32/bf16 products of 1-4 rows: it streams the weight once, close to a plain read of it, where
  torch's kernels read an fp32 1B-width weight at about half that speed. Offered only where a C compiler works.

The first inference call of a (shape, dtype, row-bucket) times the candidates once on that weight (a few
milliseconds to a second per shape at 1B widths) and every layer of that shape then uses the winner for the rest
of the process. The winners are also written to a small JSON file (``JANUSPRO_KERNEL_CACHE``, default
``$XDG_CACHE_HOME/januspro/cpu_kernels.json``; ``off`` keeps them in memory only), keyed by the CPU, its
vector ISA, the torch version and the thread count, so later processes on the same machine skip the timing.
``JANUSPRO_CPU_KERNEL=packed|linear|wmajor|gemv`` forces one kernel (where it applies),
``JANUSPRO_CPU_PACK=0`` never packs. The packed copy is rebuilt when the weight changes (in-place updates bump
its version) and dropped again when timing found it slower. Same parameters and state-dict keys as
``nn.Linear``; training and anything that needs gradients uses ``F.linear``.
"""

from __future__ import annotations

import json
import os
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..system import atomic_write, cache_dir, cpu_name
from . import gemv

SKINNY_ROWS = 128  # the weight-major product is a candidate up to this many rows (fp32)
MIN_WEIGHT = 1 << 20  # weights of at least this many elements (small ones are overhead-bound)
PACK_DTYPES = (torch.float32, torch.bfloat16)
RESERVE_BYTES = 1 << 30  # memory left free after packing a weight
KERNELS = ("packed", "linear", "wmajor", "gemv")
# row buckets: (largest row count in the bucket, rows the candidates are timed at). Prefill products (hundreds
# of rows: 576 image features plus the prompt) get their own bucket: on an AMX Xeon the packed GEMM wins at 64
# rows for every 1B-width weight, but at 640 rows F.linear is 8-22% faster for the 2048x5632 one (two runs).
BUCKETS = ((4, 2), (32, 16), (256, 64), (None, 512))


def packing_enabled() -> bool:
    return os.environ.get("JANUSPRO_CPU_PACK", "1") != "0" and torch.backends.mkldnn.is_available()


def forced_kernel() -> str | None:
    """The kernel ``JANUSPRO_CPU_KERNEL`` asks for, or None for the timed choice ("auto" or unset)."""
    name = os.environ.get("JANUSPRO_CPU_KERNEL", "auto").strip().lower()
    if name in ("", "auto"):
        return None
    if name not in KERNELS:
        raise ValueError(f"JANUSPRO_CPU_KERNEL={name!r}: expected auto or one of {', '.join(KERNELS)}")
    return name


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


def bucket_of(rows: int) -> int:
    return next(i for i, (top, _) in enumerate(BUCKETS) if top is None or rows <= top)


# (out, in, dtype, threads, bucket) -> the kernel timing chose; shared by every layer of that shape
_CHOICES: dict[tuple[int, int, torch.dtype, int, int], str] = {}


def _choice_name(key: tuple[int, int, torch.dtype, int, int]) -> str:
    o, i, dtype, threads, b = key
    top = BUCKETS[b][0]
    rows = f"rows<={top}" if top is not None else f"rows>{BUCKETS[b - 1][0]}"
    return f"{o}x{i} {str(dtype).removeprefix('torch.')} t{threads} {rows}"


def choices() -> dict[str, str]:
    """What timing chose so far, readable: ``{"2048x5632 float32 t2 rows<=4": "packed", ...}``."""
    return {_choice_name(k): v for k, v in sorted(_CHOICES.items(), key=str)}


# ------------------------------------------------------------------ choices kept across processes
def kernel_cache_path() -> Path | None:
    """The JSON file timed choices are kept in (``JANUSPRO_KERNEL_CACHE``), or None when it is ``off``."""
    value = os.environ.get("JANUSPRO_KERNEL_CACHE", "").strip()
    if value.lower() in ("off", "0", "none", "false"):
        return None
    if value:
        return Path(value).expanduser()
    return cache_dir() / "cpu_kernels.json"


def machine_key() -> str:
    """What a timed choice depends on besides the shape: the CPU, its vector ISA as torch sees it, torch, and
    the kernels there were to choose from (a choice made before a kernel existed is timed again)."""
    return (f"{cpu_name()} | {torch.backends.cpu.get_cpu_capability()} | torch {torch.__version__}"
            f" | {','.join(KERNELS)}")


_STORED: dict[str, str] | None = None  # this machine's stored choices (readable names), read once per process


def _read_store(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):  # missing, unreadable or damaged: time afresh
        return {}
    return data if isinstance(data, dict) else {}


def stored_choice(key: tuple[int, int, torch.dtype, int, int]) -> str | None:
    """The kernel an earlier process on this machine chose for ``key``, if the cache file holds one."""
    global _STORED
    path = kernel_cache_path()
    if path is None:
        return None
    if _STORED is None:
        entry = _read_store(path).get(machine_key(), {})
        _STORED = {k: v for k, v in entry.items() if v in KERNELS} if isinstance(entry, dict) else {}
    return _STORED.get(_choice_name(key))


def store_choice(key: tuple[int, int, torch.dtype, int, int], kernel: str) -> None:
    """Add a timed choice to the cache file (merged with what other processes wrote; replaced atomically).
    A file that cannot be written (read-only home, full disk) only costs the next process its timing."""
    global _STORED
    path = kernel_cache_path()
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _read_store(path)
        entry = data.get(machine_key())
        entry = entry if isinstance(entry, dict) else {}
        entry[_choice_name(key)] = kernel
        data[machine_key()] = entry
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=1, sort_keys=True)))
    except OSError:
        return
    if _STORED is not None:
        _STORED[_choice_name(key)] = kernel


def _best_seconds(fn: Callable[[], object], repeat: int = 3) -> float:
    fn()  # warm-up: first-call allocations and oneDNN primitive creation
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


# module -> (weight key, packed weight or None when refused); outside the module so that copying, pickling
# and saving a module never meet the opaque oneDNN tensor
_PACKS: weakref.WeakKeyDictionary[Linear, tuple[tuple[int, int, torch.dtype], torch.Tensor | None]] = (
    weakref.WeakKeyDictionary())


# weight data pointer -> its Linear, so the compile-visible op below can find the module's kernel and packed copy
_BY_PTR: dict[int, weakref.ref[Linear]] = {}


def _register(mod: Linear) -> None:
    ptr = mod.weight.data_ptr()
    ref = _BY_PTR.get(ptr)
    if ref is None or ref() is not mod:
        _BY_PTR[ptr] = weakref.ref(mod, lambda r, p=ptr: _BY_PTR.pop(p) if _BY_PTR.get(p) is r else None)


@torch.library.custom_op("januspro::packed_linear", mutates_args=(),
                         schema="(Tensor x, Tensor weight, Tensor? bias) -> Tensor")
def packed_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear`` through the kernel the weight's :class:`Linear` chose (the packed copy among them).
    torch.compile sees an opaque op, so a compiled decode step runs the same kernel as an eager one instead of
    tracing a plain matmul (which was 1.4x slower than the packed GEMM at Janus-Pro-1B widths)."""
    ref = _BY_PTR.get(weight.data_ptr())
    mod = ref() if ref is not None else None
    if mod is None or mod.weight.data_ptr() != weight.data_ptr() or x.dtype != weight.dtype:
        return F.linear(x, weight, bias)
    return mod._infer(x)


@packed_linear.register_fake
def _packed_linear_shape(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


def packable(w: torch.Tensor) -> bool:
    """Would an inference product with this weight consider a packed copy (large, CPU, fp32/bf16, packing on)?"""
    return w.device.type == "cpu" and w.numel() >= MIN_WEIGHT and w.dtype in PACK_DTYPES and packing_enabled()


def prepack(module: nn.Module, rows: int) -> int:
    """Get ``module``'s large CPU :class:`Linear` layers ready before compiling a step that uses them: register
    each with the compile-visible op and choose its kernel for products of ``rows`` rows (timing each weight
    shape once). Returns how many layers now hold a packed copy."""
    layers = [m for m in module.modules()
              if isinstance(m, Linear) and m.weight.device.type == "cpu" and m.weight.numel() >= MIN_WEIGHT]
    with torch.no_grad():
        for m in layers:
            _register(m)
            m.kernel(rows)
    return sum(m.packed is not None for m in layers)


def _weight_key(w: torch.Tensor) -> tuple[int, int, torch.dtype]:
    # inference tensors (made under inference_mode) keep no version counter and cannot change in place
    return w.data_ptr(), 0 if w.is_inference() else w._version, w.dtype


class Linear(nn.Linear):
    @property
    def packed(self) -> torch.Tensor | None:
        """The packed copy of the current weight, if one was made."""
        entry = _PACKS.get(self)
        return entry[1] if entry is not None and entry[0] == _weight_key(self.weight) else None

    def _packed_weight(self) -> torch.Tensor | None:
        w = self.weight
        key = _weight_key(w)
        entry = _PACKS.get(self)
        if entry is not None and entry[0] == key:
            return entry[1]
        _PACKS.pop(self, None)  # drop a stale copy before making a new one
        packed = None
        if w.numel() * w.element_size() + RESERVE_BYTES <= available_memory():
            packed = pack_weight(w)
        _PACKS[self] = (key, packed)
        return packed

    def candidates(self, rows: int, among: tuple[str, ...] = KERNELS) -> list[str]:
        """The kernels of ``among`` that apply to a product of ``rows`` rows with this weight on this machine
        (checking ``packed`` makes the packed copy)."""
        w = self.weight
        applies = {"packed": lambda: packable(w) and self._packed_weight() is not None,
                   "linear": lambda: True,
                   "wmajor": lambda: w.dtype == torch.float32 and rows <= SKINNY_ROWS,
                   # the choice holds for the whole row bucket, so the kernel must take its largest row count
                   "gemv": lambda: w.numel() >= MIN_WEIGHT and gemv.applies(w, BUCKETS[bucket_of(rows)][0] or 0)}
        return [k for k in among if applies[k]()]

    def kernel(self, rows: int) -> str:
        """The kernel for ``rows`` rows: forced by ``JANUSPRO_CPU_KERNEL``, or timed once per weight shape."""
        w = self.weight
        b = bucket_of(rows)
        key = (w.shape[0], w.shape[1], w.dtype, torch.get_num_threads(), b)
        choice = _CHOICES.get(key)
        if choice is None:
            forced = forced_kernel()
            found = self.candidates(rows, KERNELS if forced is None else (forced,))
            if forced is not None or len(found) < 2:
                choice = found[0] if found else "linear"  # a forced kernel that does not apply: F.linear
            elif (stored := stored_choice(key)) in found:
                choice = stored  # timed by an earlier process on this machine
            else:
                x = torch.randn(BUCKETS[b][1], w.shape[1], dtype=w.dtype)
                times = {k: self._time_kernel(k, x) for k in found}
                choice = min(times, key=times.__getitem__)
                store_choice(key, choice)
            _CHOICES[key] = choice
            shape_uses_packed = any(_CHOICES.get((*key[:4], o)) == "packed" for o in range(len(BUCKETS)))
            if not shape_uses_packed:
                _PACKS.pop(self, None)  # packed only to be timed: give its memory back
        return choice

    def _time_kernel(self, kernel: str, x: torch.Tensor) -> float:
        return _best_seconds(lambda: self._run(kernel, x))

    def _run(self, kernel: str, x: torch.Tensor) -> torch.Tensor:
        w, bias = self.weight, self.bias
        if kernel == "packed":
            packed = self._packed_weight()
            if packed is not None:
                return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
        elif kernel == "wmajor":
            x2 = x.reshape(-1, x.shape[-1])  # [M, in]
            y = torch.mm(w, x2.t()) if bias is None else torch.addmm(bias[:, None], w, x2.t())  # [out, M]
            return y.t().contiguous().view(*x.shape[:-1], self.out_features)
        elif kernel == "gemv" and w.is_contiguous():  # chosen for this row bucket, so it takes these rows
            return gemv.product(x, w, bias)
        return F.linear(x, w, bias)

    def _infer(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(self.kernel(x.numel() // x.shape[-1]), x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if x.device.type != "cpu" or w.numel() < MIN_WEIGHT or x.dtype != w.dtype or x.numel() == 0:
            return F.linear(x, w, self.bias)
        if torch.is_grad_enabled() and (w.requires_grad or x.requires_grad):
            return F.linear(x, w, self.bias)  # training: autograd's kernels
        if torch.compiler.is_compiling():  # the chosen kernel runs inside an op the compiler treats as opaque
            return packed_linear(x, w, self.bias)  # (it finds this layer through prepack's registration)
        return self._infer(x)
