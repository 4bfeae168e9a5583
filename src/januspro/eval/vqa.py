"""Short-answer VQA runners: GQA (exact match after normalisation) and the shapes world's VQA suite.

Reads JSON lines ``{"question_id", "image", "question", "answer"}`` (optional ``kind`` and ``heldout`` are
reported separately), answers greedily, and writes ``OUT/answers.jsonl`` (resumable) and ``OUT/results.json``
with the accuracy overall, per kind and for seen / held-out items. A cited answer ("blue circle 2 1: blue",
:func:`~januspro.shapes.language.cited_answer`) is scored on what follows its citation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import __version__
from ..generation.text import TextGenParams
from ..jsonl import read_jsonl
from ..models.janus import JanusModel
from ..processing.processor import JanusProcessor
from ..shapes.scoring import vqa_match
from .answers import answer_items
from .geneval import config_hash, hardware
from .record import answers_stamp, claim_output, write_results

GQA_SUFFIX = "Answer the question using a single word or phrase."


def read_gqa(path: str | Path) -> list[dict]:
    """GQA's question file (``{question_id: {"imageId", "question", "answer", ...}}``, e.g.
    testdev_balanced_questions.json) as VQA items with images ``<imageId>.jpg``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no GQA question file at {p}")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{p} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{p} must map question ids to questions")
    items = []
    for qid, q in data.items():
        if not isinstance(q, dict) or not {"imageId", "question", "answer"} <= set(q):
            raise ValueError(f"GQA question {qid} lacks imageId, question or answer")
        items.append({"question_id": str(qid), "image": f"{q['imageId']}.jpg", "question": q["question"],
                      "answer": q["answer"], "kind": (q.get("types") or {}).get("structural", "")})
    return items


def run_vqa(model: JanusModel, processor: JanusProcessor, questions: str | Path, images: str | Path,
            out: str | Path, batch_size: int = 8, suffix: str = "", max_new_tokens: int = 16,
            progress: Callable[[int, int], None] | None = None, benchmark: str = "vqa", look: str = "") -> dict:
    """Short-answer VQA: ``questions`` is a JSONL of items, or (``benchmark="gqa"``) GQA's question JSON.
    ``look``: ask this question first and answer after the model's own answer to it
    (:mod:`januspro.generation.look`). Answers in ``out`` are resumed when its ``run.json`` says the same
    settings and model."""
    if benchmark == "gqa":
        items = read_gqa(questions)
    else:
        items = read_jsonl(questions, ("question_id", "image", "question", "answer"), "VQA question file")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    params = TextGenParams(max_new_tokens=max_new_tokens, temperature=0.0, look=look)
    claim_output(out, answers_stamp(model, params, suffix))
    done = answer_items(model, processor, items, Path(images), out / "answers.jsonl",
                        lambda q: f"{q['question']}\n{suffix}" if suffix else q["question"], params, batch_size,
                        progress)
    correct = [vqa_match(done[it["question_id"]], str(it["answer"])) for it in items]

    def acc(pick: Callable[[dict], bool]) -> float | None:
        hits = [c for c, it in zip(correct, items, strict=True) if pick(it)]
        return float(np.mean(hits)) if hits else None

    kinds = sorted({str(it.get("kind", "")) for it in items} - {""})
    scores = {"accuracy": acc(lambda it: True),
              "per_kind": {k: acc(lambda it, k=k: it.get("kind") == k) for k in kinds}}
    if any("heldout" in it for it in items):
        scores["seen"] = acc(lambda it: not it.get("heldout"))
        scores["heldout"] = acc(lambda it: bool(it.get("heldout")))
    results = {"benchmark": benchmark, "scores": scores, "n_questions": len(items), "prompt_suffix": suffix,
               "decoding": "greedy", "max_new_tokens": max_new_tokens, "look": look,
               "model": str(getattr(model, "source_path", "")), "config_hash": config_hash(model),
               "januspro_version": __version__, "hardware": hardware(), "seconds": round(time.time() - t0, 1)}
    write_results(out, results)
    return results
