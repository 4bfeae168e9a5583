"""Every benchmark run's record: ``results.json`` and the same as a markdown table, ``results.md``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, float):
        out.append((prefix, f"{value:.4f}"))
    elif value is not None:
        out.append((prefix, str(value)))


def markdown(results: dict) -> str:
    scores: list[tuple[str, str]] = []
    _flatten("", results.get("scores") or {}, scores)
    setup: list[tuple[str, str]] = []
    _flatten("", {k: v for k, v in results.items() if k not in ("scores", "benchmark")}, setup)
    lines = [f"# {results.get('benchmark', 'benchmark')} results", ""]
    if scores:
        lines += ["| score | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in scores] + [""]
    lines += ["| setting | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in setup]
    return "\n".join(lines) + "\n"


def write_results(out: Path, results: dict) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results))
