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


class OutputFolderError(ValueError):
    """An output folder holds samples or answers made by another model or other settings."""


def claim_output(out: Path, stamp: dict) -> None:
    """Resume only what the same run started: ``OUT/run.json`` records what makes the outputs (``stamp``: the
    sampling or decoding settings and the model); a folder whose record differs is refused, so images or answers
    of other settings or of another model are never mixed in."""
    path = out / "run.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old != stamp:
            diff = [k for k in sorted(set(old) | set(stamp)) if old.get(k) != stamp.get(k)]
            for key in [d for d in diff if isinstance(old.get(d), dict) and isinstance(stamp.get(d), dict)]:
                a, b = old[key], stamp[key]  # a settings group: name the settings that differ
                diff = [d for d in diff if d != key] + [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
            raise OutputFolderError(f"{out} holds outputs made by another model or other settings ({', '.join(diff)} "
                                    "differ); resume a run only with its own settings, or choose another output "
                                    "folder (or delete this one)")
        return
    path.write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n")


def answers_stamp(model: Any, params: Any, suffix: str) -> dict:
    """What makes an understanding benchmark's answers: the decoding settings (all but ``compile``), the prompt
    suffix and the model (for :func:`claim_output`)."""
    import dataclasses

    from .geneval import config_hash, weights_hash

    stamp = {"decoding": {k: v for k, v in dataclasses.asdict(params).items() if k != "compile"}, "suffix": suffix,
             "config_hash": config_hash(model), "weights_hash": weights_hash(model)}
    return json.loads(json.dumps(stamp))  # as run.json holds it (tuples as lists)
