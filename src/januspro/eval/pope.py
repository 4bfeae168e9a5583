"""POPE runner: yes/no object-existence questions, answered greedily, scored with POPE's own rules.

Reads POPE's question files (JSON lines ``{"question_id", "image", "text", "label"}``; the COCO splits in
shared/fixtures/pope/ or the shapes-world ones), finds each image under ``--images``, and writes
``OUT/answers_<split>.jsonl`` (one line per question, appended as answered, so a rerun resumes) and
``OUT/results.json`` with accuracy, precision, recall, F1 and yes-ratio per split.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from .. import __version__
from ..generation.text import TextGenParams
from ..jsonl import read_jsonl
from ..models.janus import JanusModel
from ..processing.processor import JanusProcessor
from ..shapes.scoring import pope_metrics
from .answers import answer_items
from .geneval import config_hash, hardware
from .record import answers_stamp, claim_output, write_results

# The short-answer instruction commonly used for POPE with LLaVA-style models.
POPE_SUFFIX = "Answer the question using a single word or phrase."


def read_questions(path: Path) -> list[dict]:
    return read_jsonl(path, ("question_id", "image", "text", "label"), "POPE question file")


def split_name(path: Path) -> str:
    stem = path.stem
    for split in ("random", "popular", "adversarial"):
        if split in stem:
            return split
    return stem


def run_pope(model: JanusModel, processor: JanusProcessor, files: list[str | Path], images: str | Path,
             out: str | Path, batch_size: int = 8, suffix: str = POPE_SUFFIX, max_new_tokens: int = 8,
             progress: Callable[[int, int], None] | None = None, look: str = "") -> dict:
    """POPE's three metrics per question file, greedy answers (resumed from ``out``'s answer files when the
    folder's ``run.json`` says the same settings and model). ``look``: ask this question first and answer
    after the model's own answer to it (:mod:`januspro.generation.look`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    params = TextGenParams(max_new_tokens=max_new_tokens, temperature=0.0, look=look)
    claim_output(out, answers_stamp(model, params, suffix))
    t0 = time.time()
    scores: dict[str, dict[str, float]] = {}
    for f in map(Path, files):
        split = split_name(f)
        questions = read_questions(f)
        done = answer_items(model, processor, questions, Path(images), out / f"answers_{split}.jsonl",
                            lambda q: f"{q['text']}\n{suffix}" if suffix else q["text"], params, batch_size,
                            progress)
        scores[split] = pope_metrics([done[q["question_id"]] for q in questions], [q["label"] for q in questions])
    results = {"benchmark": "pope", "scores": scores, "prompt_suffix": suffix, "decoding": "greedy", "look": look,
               "max_new_tokens": max_new_tokens, "model": str(getattr(model, "source_path", "")),
               "config_hash": config_hash(model), "januspro_version": __version__, "hardware": hardware(),
               "seconds": round(time.time() - t0, 1)}
    write_results(out, results)
    return results
