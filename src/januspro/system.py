"""Small machine-level helpers shared across the package: the CPU's name and atomic file writes."""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what :mod:`platform` knows."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        return name


def cache_dir() -> Path:
    """januspro's per-user cache folder: ``$XDG_CACHE_HOME/januspro``, else ``~/.cache/januspro``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "januspro"


def atomic_write(path: str | Path, write: Callable[[str], object]) -> None:
    """``write(tmp)`` into a temporary file next to ``path``, then rename it over ``path``: a reader (or a
    write killed half-way) sees the old file or the new one, never a partial one. The temporary file is
    removed when ``write`` fails; the error propagates."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
