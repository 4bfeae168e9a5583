"""Write one benchmark's section of benchmarks/RESULTS.md, replacing that script's previous section."""

from __future__ import annotations

from pathlib import Path


def write_section(path: str | Path, marker: str, text: str) -> None:
    """Replace the section that starts with ``marker`` (a '## ...' heading prefix) by ``text``; keep the rest."""
    out = Path(path)
    old = out.read_text() if out.exists() else "# Benchmark results\n\n"
    if marker in old:
        start = old.index(marker)
        nxt = old.find("\n## ", start + 1)
        old = old[:start] + (old[nxt + 1:] if nxt >= 0 else "")
    out.write_text(old.rstrip() + "\n\n" + text.rstrip() + "\n")
