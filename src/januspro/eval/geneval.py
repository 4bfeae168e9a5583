"""GenEval runner: generate samples for GenEval's metadata in GenEval's folder layout, resumably.

Layout written (what the official scorer reads): ``OUT/<index:05d>/metadata.jsonl`` (the input line, verbatim)
and ``OUT/<index:05d>/samples/<NNNN>.png``. A prompt whose samples all exist is skipped, so an interrupted
run picks up where it stopped (``OUT/run.json`` records the sampling recipe and the model, and a folder made with
others is refused). The sampling recipe, model and environment go to ``OUT/results.json``; with
the shapes scorer, the scores too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..generation.image import ImageGenParams, generate_images
from ..jsonl import read_jsonl
from ..models.janus import JanusModel
from ..processing.processor import JanusProcessor
from ..system import cpu_name
from .record import claim_output, write_results


def read_metadata(path: str | Path) -> list[tuple[str, dict]]:
    """(raw line, parsed) for every prompt of an evaluation_metadata.jsonl (the raw line is written back
    verbatim into the output layout)."""
    rows = read_jsonl(path, ("prompt", "tag"), "GenEval metadata")
    lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
    return list(zip(lines, rows, strict=True))


def config_hash(model: JanusModel) -> str:
    return hashlib.sha256(json.dumps(model.cfg.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def weights_hash(model: JanusModel) -> str:
    """A fingerprint of the weights (the first values of every tensor): tells a retrained model from its
    predecessor of the same architecture."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().flatten()[:64].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def sample_stamp(model: JanusModel, params: ImageGenParams) -> dict:
    """What makes an image benchmark's samples: the sampling recipe (all but ``compile``) and the model."""
    return {"recipe": {k: v for k, v in dataclasses.asdict(params).items() if k != "compile"},
            "config_hash": config_hash(model), "weights_hash": weights_hash(model)}


def hardware() -> str:
    """The GPU's name, or the CPU's model name, the threads torch uses and its vector ISA (AVX2, AVX512...)."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{cpu_name()}, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}"


def seeded_batches(model: JanusModel, processor: JanusProcessor, todo: list[tuple[int, str, Any]],
                   params: ImageGenParams, batch_size: int,
                   progress: Callable[[int, int], None] | None = None) -> Iterator[tuple[Any, list]]:
    """``todo`` = [(prompt index, prompt, item)...] -> (item, images) in order: ``batch_size`` prompts per
    call, prompt ``index`` sampled from its own seed ``params.seed + index`` (the benchmarks' seed schedule: the
    images depend neither on the batch nor on where a run resumed); ``progress`` after each call."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")

    def run() -> Iterator[tuple[Any, list]]:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            seeds = [(params.seed or 0) + idx for idx, _, _ in chunk]
            batch = generate_images(model, processor, [prompt for _, prompt, _ in chunk], params, seeds=seeds)
            yield from ((item, images) for (_, _, item), images in zip(chunk, batch, strict=True))
            if progress is not None:
                progress(start + len(chunk), len(todo))

    return run()


def run_geneval(model: JanusModel, processor: JanusProcessor, metadata: str | Path, out: str | Path,
                params: ImageGenParams | None = None, scorer: str = "none",
                progress: Callable[[int, int], None] | None = None, batch_size: int = 4) -> dict:
    """Generate (and optionally score) ``params.n`` samples per prompt; prompt ``i`` is sampled with seed
    ``params.seed + i`` (the seed schedule), ``batch_size`` prompts per call, each from its own generator
    (so the batch size changes nothing but the speed, up to the rounding of a padded batch). Returns what
    ``results.json`` holds."""
    params = params or ImageGenParams(n=4, seed=0)
    if scorer not in ("none", "shapes"):
        raise ValueError("scorer must be 'none' or 'shapes'")
    items = read_metadata(metadata)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    claim_output(out, sample_stamp(model, params))
    todo = []
    for idx, (line, meta) in enumerate(items):
        sub = out / f"{idx:05d}"
        done = all((sub / "samples" / f"{j:04d}.png").is_file() for j in range(params.n))
        if not done:
            todo.append((idx, meta["prompt"], (idx, line)))
    t0 = time.time()
    for (idx, line), images in seeded_batches(model, processor, todo, params, batch_size, progress):
        sub = out / f"{idx:05d}"
        (sub / "samples").mkdir(parents=True, exist_ok=True)
        (sub / "metadata.jsonl").write_text(line.rstrip("\n") + "\n")
        for j, im in enumerate(images):
            tmp = sub / "samples" / f".{j:04d}.png.tmp"
            im.save(tmp, format="PNG")
            tmp.replace(sub / "samples" / f"{j:04d}.png")
    results = {
        "benchmark": "geneval", "recipe": {k: v for k, v in dataclasses.asdict(params).items() if k != "compile"}, "n_prompts": len(items),
        "model": str(getattr(model, "source_path", "")), "config_hash": config_hash(model),
        "januspro_version": __version__, "hardware": hardware(), "generation_seconds": round(time.time() - t0, 1),
    }
    if scorer == "shapes":
        from ..shapes.scoring import score_geneval_folder

        report = score_geneval_folder(out, out)
        results["scores"] = report.to_dict()
    write_results(out, results)
    return results
