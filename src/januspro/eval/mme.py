"""MME runner and scorer.

Reads MME's evaluation-tool question lists (``Your_Results/<subtask>.txt``: ``image<TAB>question<TAB>answer``,
two yes/no questions per image; real copies in shared/fixtures/mme/), finds each image under ``--images``
(MME's release folder: ``<subtask>/<image>`` or ``<subtask>/images/<image>``), answers greedily, and writes
the same files with the response appended as a fourth column (the input of MME's own ``calculation.py``)
plus ``results.json``. Scoring follows MME's tool: an answer is "yes"/"no" when it is exactly that, else by
whether its first four characters contain "yes" or "no" (else "other", wrong); per subtask acc = share of
questions right, acc+ = share of images with both questions right, score = 100·acc + 100·acc+; perception =
sum of the ten perception subtasks, cognition = sum of the four cognition subtasks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from .. import __version__
from ..generation.text import TextGenParams
from ..models.janus import JanusModel
from ..processing.processor import JanusProcessor
from .answers import answer_items
from .geneval import config_hash, hardware
from .record import answers_stamp, claim_output, write_results

PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark", "artwork",
              "OCR")
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")


def mme_answer(text: str) -> str:
    """MME's parsing of a response: 'yes', 'no' or 'other'."""
    t = text.lower().strip()
    if t in ("yes", "no"):
        return t
    head = t[:4]
    if "yes" in head:
        return "yes"
    if "no" in head:
        return "no"
    return "other"


def read_subtask(path: Path) -> list[dict]:
    """Rows ``{question_id, image, question, answer}`` of one ``<subtask>.txt`` (answer lower-case yes/no)."""
    rows = []
    for k, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 3:
            raise ValueError(f"{path}:{k} needs image<TAB>question<TAB>answer")
        img, q, a = parts[0], parts[1], parts[2].strip().lower()
        if a not in ("yes", "no"):
            raise ValueError(f"{path}:{k}: the ground truth must be Yes or No, not {parts[2]!r}")
        rows.append({"question_id": f"{path.stem}/{k}", "image": img, "question": q, "answer": a})
    return rows


def subtask_scores(rows: list[dict], responses: list[str]) -> dict[str, float]:
    """acc, acc+ and score of one subtask (hand-checkable)."""
    if len(rows) != len(responses) or not rows:
        raise ValueError("need one response per question, and at least one question")
    right = [mme_answer(r) == row["answer"] for row, r in zip(rows, responses, strict=True)]
    per_image: dict[str, list[bool]] = {}
    for row, ok in zip(rows, right, strict=True):
        per_image.setdefault(row["image"], []).append(ok)
    acc = sum(right) / len(right)
    acc_plus = sum(all(v) for v in per_image.values()) / len(per_image)
    return {"acc": acc, "acc_plus": acc_plus, "score": 100 * acc + 100 * acc_plus}


def totals(per_subtask: dict[str, dict[str, float]]) -> dict[str, float]:
    return {"perception": sum(per_subtask[s]["score"] for s in PERCEPTION if s in per_subtask),
            "cognition": sum(per_subtask[s]["score"] for s in COGNITION if s in per_subtask)}


def _image_root(images: Path, subtask: str, name: str) -> Path:
    for cand in (images / subtask, images / subtask / "images"):
        if (cand / name).is_file():
            return cand
    raise FileNotFoundError(f"MME image {name} of subtask {subtask} is in neither {images / subtask} nor "
                            f"{images / subtask / 'images'}")


def run_mme(model: JanusModel, processor: JanusProcessor, data: str | Path, images: str | Path, out: str | Path,
            batch_size: int = 8, max_new_tokens: int = 8, progress: Callable[[int, int], None] | None = None
            ) -> dict:
    data, images, out = Path(data), Path(images), Path(out)
    files = sorted(data.glob("*.txt"))
    if not files:
        raise FileNotFoundError(f"no MME question lists (<subtask>.txt) in {data}")
    if not images.is_dir():
        raise FileNotFoundError(f"no image folder at {images}")
    (out / "Your_Results").mkdir(parents=True, exist_ok=True)
    params = TextGenParams(max_new_tokens=max_new_tokens, temperature=0.0)
    claim_output(out, answers_stamp(model, params, ""))  # resume only answers of these settings and this model
    t0 = time.time()
    per: dict[str, dict[str, float]] = {}
    for f in files:
        rows = read_subtask(f)
        # images of one subtask may sit in <subtask>/ or <subtask>/images/; give each row its folder
        roots = {r["image"]: _image_root(images, f.stem, r["image"]) for r in rows}
        for r in rows:
            r["image"] = str(roots[r["image"]] / r["image"])
        done = answer_items(model, processor, rows, None, out / f"answers_{f.stem}.jsonl",
                            lambda q: q["question"], params, batch_size, progress)
        responses = [done[r["question_id"]].replace("\n", " ").replace("\t", " ") for r in rows]
        lines = f.read_text(encoding="utf-8").splitlines()
        kept = [ln for ln in lines if ln.strip()]
        (out / "Your_Results" / f.name).write_text(
            "".join(f"{ln.rstrip()}\t{resp}\n" for ln, resp in zip(kept, responses, strict=True)), encoding="utf-8")
        per[f.stem] = subtask_scores([{**r, "image": Path(r["image"]).name} for r in rows], responses)
    results = {"benchmark": "mme", "scores": {**totals(per), "subtasks": per}, "decoding": "greedy",
               "max_new_tokens": max_new_tokens, "prompt": "the question as written (it asks for yes or no)",
               "model": str(getattr(model, "source_path", "")), "config_hash": config_hash(model),
               "januspro_version": __version__, "hardware": hardware(), "seconds": round(time.time() - t0, 1)}
    write_results(out, results)
    return results
