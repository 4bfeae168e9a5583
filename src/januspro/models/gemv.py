"""A hand-written few-row CPU product (``gemv.c``), built on first use with this machine's C compiler.

At 1-4 rows (a decode step, two rows with classifier-free guidance) a linear layer's product is bound by reading
its weight once, yet torch's CPU kernels read a Janus-Pro-1B weight at well under the speed of a plain read of
it (``benchmarks/bench_kernels.py``). ``gemv.c`` streams eight weight rows at a time against all input rows held
in registers, with the output rows split over torch's thread count. :mod:`januspro.models.linear` offers it as
one more candidate kernel (``gemv``) and keeps it only where timing finds it faster.

The shared library is compiled once per machine (``cc -O3 -march=native -fopenmp``, about a second) into
``$XDG_CACHE_HOME/januspro/`` (or ``JANUSPRO_KERNEL_DIR``), named by a hash of the source, the flags, the
compiler and the CPU. Without a working C compiler the kernel is simply not offered; ``JANUSPRO_CPU_GEMV=0``
turns it off. ``CC`` picks the compiler (default ``cc``).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from ..system import cache_dir, cpu_name

SOURCE = Path(__file__).with_name("gemv.c")
DTYPES = (torch.float32, torch.bfloat16)
# flags tried in order: with OpenMP (threads), then without (one thread) for compilers that lack it
FLAG_SETS = (["-O3", "-march=native", "-fopenmp"], ["-O3", "-march=native"])

_LIB: ctypes.CDLL | None = None
_TRIED = False
_ERROR: str | None = None
_MAX_ROWS = 0  # the loaded kernel's row limit (0 while none is loaded)


def enabled() -> bool:
    return os.environ.get("JANUSPRO_CPU_GEMV", "1") != "0"


def kernel_dir() -> Path:
    value = os.environ.get("JANUSPRO_KERNEL_DIR", "").strip()
    if value:
        return Path(value).expanduser()
    return cache_dir()


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC", "cc") or "cc")


def _build(cc: str, flags: list[str], out: Path) -> str | None:
    """Compile the source into ``out`` (atomically); None on success, else the compiler's complaint."""
    try:  # a folder that cannot be made or written (read-only home) means no kernel, not an error
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as e:
        return f"cannot write {out.parent}: {e}"
    try:
        done = subprocess.run([cc, *flags, "-shared", "-fPIC", "-o", tmp, str(SOURCE)],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            return (done.stderr or done.stdout).strip()[-500:] or f"{cc} exited with {done.returncode}"
        os.replace(tmp, out)
        return None
    except (OSError, subprocess.SubprocessError) as e:
        return str(e)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def library_path(cc: str, flags: list[str]) -> Path:
    """Where the library built by ``cc`` with ``flags`` from the current source for this CPU is kept."""
    tag = hashlib.sha256(b"|".join([SOURCE.read_bytes(), " ".join(flags).encode(), cc.encode(),
                                    cpu_name().encode()]))
    return kernel_dir() / f"gemv-{tag.hexdigest()[:16]}.so"


def _load(path: Path) -> ctypes.CDLL:
    global _MAX_ROWS
    lib = ctypes.CDLL(str(path))
    lib.jp_gemv.restype = ctypes.c_int
    lib.jp_gemv.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_int]
    for name in ("jp_gemv_max_rows", "jp_gemv_vector_floats", "jp_gemv_bf16_pairs"):
        getattr(lib, name).restype = ctypes.c_int
    _MAX_ROWS = lib.jp_gemv_max_rows()
    return lib


def library() -> ctypes.CDLL | None:
    """The built kernel library, building it on the first call; None where it cannot be built or is off."""
    global _LIB, _TRIED, _ERROR
    if _TRIED:  # every product after the first asks: no environment or file lookups here
        return _LIB
    _TRIED = True
    if not enabled():
        return None
    cc = _compiler()
    if cc is None:
        _ERROR = "no C compiler (set CC)"
        return None
    errors = []
    for flags in FLAG_SETS:
        path = library_path(cc, flags)
        for _ in range(2):  # a file that does not load (damaged, another machine's) is built once afresh
            error = None if path.exists() else _build(cc, flags, path)
            if error is not None:
                break
            try:
                _LIB = _load(path)
                return _LIB
            except OSError as e:
                error = str(e)
                path.unlink(missing_ok=True)
        errors.append(f"{' '.join(flags)}: {error}")
    _ERROR = "; ".join(errors)
    return None


def available() -> bool:
    return library() is not None


def why_unavailable() -> str | None:
    """Why :func:`library` returned None (after it was called), for diagnostics."""
    if not enabled():
        return "turned off by JANUSPRO_CPU_GEMV=0"
    return _ERROR


def bf16_pairs() -> bool:
    """Does the built kernel multiply bf16 pairs directly (AVX512-BF16) rather than widening them to fp32?"""
    lib = library()
    return bool(lib is not None and lib.jp_gemv_bf16_pairs())


def max_rows() -> int:
    """The most rows one product takes (0 where the kernel is not available)."""
    return _MAX_ROWS if library() is not None else 0


def applies(weight: torch.Tensor, rows: int) -> bool:
    """Can :func:`gemv` multiply ``rows`` rows by this weight (CPU, fp32/bf16, contiguous, few rows)?"""
    return (1 <= rows <= max_rows() and weight.dtype in DTYPES and weight.device.type == "cpu"
            and weight.dim() == 2 and weight.is_contiguous())


def gemv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` through the hand-written kernel, for inputs of 1 to :func:`max_rows` rows
    (all leading dimensions together) of the weight's dtype. The sums are fp32; bf16 in, bf16 out."""
    lib = library()
    if lib is None:
        raise RuntimeError(f"the gemv kernel is not available: {why_unavailable()}")
    n, k = weight.shape
    if x.shape[-1] != k:
        raise ValueError(f"gemv: input has {x.shape[-1]} features, the weight expects {k}")
    rows = x.numel() // k if k else 0
    if not applies(weight, rows) or x.device.type != "cpu":
        raise ValueError(f"gemv: needs a contiguous CPU fp32/bf16 weight and 1-{max_rows()} rows, "
                         f"got {weight.dtype} {tuple(weight.shape)} with {rows} rows")
    if x.dtype != weight.dtype:
        raise ValueError(f"gemv: input is {x.dtype}, the weight {weight.dtype}; they must match")
    return product(x, weight, bias)


def product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The kernel call itself, without :func:`gemv`'s checks: for callers that know the kernel is loaded and
    :func:`applies` to this weight and row count, with ``x`` of the weight's dtype (the Linear layers, whose
    timed choice checked that once per weight shape). Kept lean: it runs for every layer of every decode step."""
    x = x.contiguous()
    bf16 = weight.dtype == torch.bfloat16
    if bias is not None and bf16:
        bias = bias.float()
    y = torch.empty((*x.shape[:-1], weight.shape[0]), dtype=torch.float32)
    n, k = weight.shape
    rc = _LIB.jp_gemv(weight.data_ptr(), bf16, x.data_ptr(), y.data_ptr(),
                      None if bias is None else bias.data_ptr(), x.numel() // k, n, k, torch.get_num_threads())
    if rc != 0:
        raise RuntimeError(f"gemv: the kernel failed ({'out of memory' if rc == -2 else 'rows out of range'})")
    return y.to(torch.bfloat16) if bf16 else y
