"""DPG-Bench generation runner.

Reads DPG-Bench's prompt folder (``prompts/<name>.txt``, one dense prompt per file; the real 1,065 in
shared/fixtures/dpg_bench/prompts/), generates four samples per prompt and writes ``OUT/<name>.png``: a 2x2
grid without padding (each cell the model's native size), the layout DPG-Bench's ``compute_dpg_bench.py``
crops back into four images (``--resolution <native size> --pic-num 4``). Prompt ``i`` (in sorted order) is
sampled with seed ``seed + i``; a prompt whose grid exists is skipped, so runs resume. Scoring needs
DPG-Bench's mPLUG VQA model and its question CSV, which are not part of this package.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from .. import __version__
from ..generation.image import ImageGenParams
from ..models.janus import JanusModel
from ..processing.processor import JanusProcessor
from .geneval import config_hash, hardware, sample_stamp, seeded_batches
from .record import claim_output, write_results


def read_prompts(folder: str | Path) -> list[tuple[str, str]]:
    """(name, prompt) for every ``*.txt`` in the folder, sorted by name (numbers numerically)."""
    p = Path(folder)
    if not p.is_dir():
        raise FileNotFoundError(f"no DPG-Bench prompt folder at {p}")
    files = sorted(p.glob("*.txt"), key=lambda f: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", f.stem)])
    if not files:
        raise FileNotFoundError(f"no prompt files (*.txt) in {p}")
    out = []
    for f in files:
        text = f.read_text(encoding="utf-8").strip()
        if not text:
            raise ValueError(f"{f} is empty")
        out.append((f.stem, text))
    return out


def grid_2x2(images: list[Image.Image]) -> Image.Image:
    """Four equal images as one 2x2 grid with no padding (row-major)."""
    if len(images) != 4:
        raise ValueError("a DPG-Bench grid needs exactly 4 images")
    w, h = images[0].size
    sheet = Image.new("RGB", (2 * w, 2 * h))
    for k, im in enumerate(images):
        r, c = divmod(k, 2)
        sheet.paste(im.convert("RGB"), (c * w, r * h))
    return sheet


def run_dpg(model: JanusModel, processor: JanusProcessor, prompts: str | Path, out: str | Path,
            params: ImageGenParams | None = None, limit: int | None = None,
            progress: Callable[[int, int], None] | None = None, batch_size: int = 4) -> dict:
    """Four samples per prompt as one 2x2 grid per prompt name; prompt ``i`` is sampled with seed
    ``params.seed + i``, ``batch_size`` prompts per call, each from its own generator. Returns what
    ``results.json`` holds."""
    params = dataclasses.replace(params or ImageGenParams(seed=0), n=4)
    items = read_prompts(prompts)[:limit]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    claim_output(out, sample_stamp(model, params))
    todo = [(i, text, name) for i, (name, text) in enumerate(items) if not (out / f"{name}.png").is_file()]
    t0 = time.time()
    for name, images in seeded_batches(model, processor, todo, params, batch_size, progress):
        tmp = out / f".{name}.png.tmp"
        grid_2x2(images).save(tmp, format="PNG")
        tmp.replace(out / f"{name}.png")
    results = {"benchmark": "dpg", "n_prompts": len(items), "resolution": model.cfg.vq.image_size, "pic_num": 4,
               "recipe": {k: v for k, v in dataclasses.asdict(params).items() if k != "compile"},
               "seed_schedule": "seed + prompt index (sorted names)", "model": str(getattr(model, "source_path", "")),
               "config_hash": config_hash(model), "januspro_version": __version__, "hardware": hardware(),
               "generation_seconds": round(time.time() - t0, 1)}
    write_results(out, results)
    return results
