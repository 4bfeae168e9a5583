"""MMMU runner (validation-style: questions with answers).

Reads MMMU questions as JSON lines (one object per question, the fields of the MMMU dataset: ``id``,
``question``, ``options`` (a list, or its string form as in the dataset), ``answer``, ``question_type``
(``multiple-choice`` or ``open``), images as ``image_1`` .. ``image_7`` paths relative to the file (or an
``images`` list)); the dataset's Parquet files can be read directly when ``pyarrow`` is installed (images are
then taken from the embedded bytes). ``<image k>`` markers in the question become the model's image slots.

Prompts: multiple choice -- question, ``A. ...`` lines, "Answer with the option's letter from the given
choices directly."; open -- question, "Answer the question using a single word or phrase.". Scoring follows
MMMU's evaluation code: a multiple-choice answer is the option letter it names ("(B)", "B", "B."), else the
option whose text it contains; when it names none, MMMU picks a random option (here seeded by the question
id, so runs are repeatable). An open answer is right when the normalised gold answer equals the normalised
answer or, for numbers, any number in the answer equals it.
"""

from __future__ import annotations

import ast
import json
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import __version__
from ..generation.text import TextGenParams, generate_text
from ..jsonl import read_jsonl
from ..models.janus import JanusModel
from ..processing.image import load_image
from ..processing.processor import JanusProcessor
from ..shapes.scoring import normalize_answer
from .answers import read_answers
from .geneval import config_hash, hardware
from .mmbench import LETTERS
from .record import answers_stamp, claim_output, write_results

MC_SUFFIX = "Answer with the option's letter from the given choices directly."
OPEN_SUFFIX = "Answer the question using a single word or phrase."


def _options(raw: Any) -> list[str]:
    if isinstance(raw, list):
        return [str(o) for o in raw]
    if isinstance(raw, str) and raw.strip():
        try:
            val = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            raise ValueError(f"options {raw[:60]!r} is neither a list nor a list's string form") from None
        return [str(o) for o in val]
    return []


def read_questions(path: str | Path) -> list[dict]:
    p = Path(path)
    if p.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError("reading MMMU Parquet files needs pyarrow (pip install pyarrow), or export JSON lines") from None
        rows = pq.read_table(p).to_pylist()
    else:
        rows = read_jsonl(p, ("id", "question", "answer"), "MMMU question file")
    out = []
    for r in rows:
        images: list[Any] = []
        for k in range(1, 8):
            img = r.get(f"image_{k}")
            if isinstance(img, dict):  # Parquet: {"bytes": ..., "path": ...}
                img = img.get("bytes") or img.get("path")
            if img:
                images.append(img if isinstance(img, bytes) else p.parent / str(img))
        images += [p.parent / str(x) for x in r.get("images") or []]
        qtype = r.get("question_type") or ("multiple-choice" if _options(r.get("options")) else "open")
        out.append({"id": str(r["id"]), "question": str(r["question"]), "options": _options(r.get("options")),
                    "answer": r["answer"], "question_type": qtype, "images": images})
    return out


def build_conversation(q: dict) -> list[dict]:
    """The user turn: text with each ``<image k>`` replaced by image k (unplaced images go first)."""
    text = q["question"]
    if q["question_type"] == "multiple-choice":
        text += "\n" + "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(q["options"])) + "\n" + MC_SUFFIX
    else:
        text += "\n" + OPEN_SUFFIX
    images = [load_image(x) for x in q["images"]]
    parts: list[dict] = []
    used: set[int] = set()
    pos = 0
    for m in re.finditer(r"<image (\d+)>", text):
        k = int(m.group(1)) - 1
        if 0 <= k < len(images):
            parts.append({"type": "text", "text": text[pos:m.start()]})
            parts.append({"type": "image", "image": images[k]})
            used.add(k)
            pos = m.end()
    parts.append({"type": "text", "text": text[pos:]})
    lead = [{"type": "image", "image": im} for k, im in enumerate(images) if k not in used]
    parts = lead + [p for p in parts if p["type"] == "image" or p["text"].strip()]
    return [{"role": "user", "content": parts}]


def parse_choice(response: str, options: list[str], qid: str) -> str:
    """The option letter a response picks, by MMMU's rules (see the module doc)."""
    letters = LETTERS[:len(options)]
    text = " " + response.strip(",.!?;:'") + " "
    cands = [c for c in letters if f"({c})" in text]
    marker = "({})"
    if not cands:
        cands = [c for c in letters if f" {c} " in text]
        marker = " {} "
    if not cands and len(response.split()) > 5:
        cands = [c for c, o in zip(letters, options, strict=False) if o.lower() and o.lower() in text.lower()]
        if cands:  # several options named: the one named last
            return max(cands, key=lambda c: text.lower().rfind(options[letters.index(c)].lower()))
    if not cands:
        return random.Random(qid).choice(letters)  # MMMU's rule: a random option when none is named
    return max(cands, key=lambda c: text.rfind(marker.format(c)))


def _numbers(text: str) -> list[float]:
    return [float(x.replace(",", "")) for x in re.findall(r"-?\d[\d,]*\.?\d*", text)]


def open_correct(response: str, gold: Any) -> bool:
    golds = gold if isinstance(gold, list) else [gold]
    for g in map(str, golds):
        if normalize_answer(g) == normalize_answer(response) or (normalize_answer(g) and normalize_answer(g) in
                                                                  normalize_answer(response).split()):
            return True
        gn = _numbers(g)
        if gn and any(abs(x - gn[0]) < 1e-6 for x in _numbers(response)):
            return True
    return False


def run_mmmu(model: JanusModel, processor: JanusProcessor, data: str | Path, out: str | Path,
             max_new_tokens: int = 16, progress: Callable[[int, int], None] | None = None) -> dict:
    qs = read_questions(data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    params = TextGenParams(max_new_tokens=max_new_tokens, temperature=0.0)
    # resume only answers of these settings and this model
    claim_output(out, answers_stamp(model, params, f"{MC_SUFFIX} | {OPEN_SUFFIX}"))
    path = out / "answers.jsonl"
    done = read_answers(path)
    t0 = time.time()
    todo = [q for q in qs if q["id"] not in done]
    with open(path, "a") as f:
        for k, q in enumerate(todo):  # one at a time: questions carry 0-7 images of any size
            a = generate_text(model, processor, [build_conversation(q)], params)[0]
            done[q["id"]] = a
            f.write(json.dumps({"question_id": q["id"], "answer": a}) + "\n")
            f.flush()
            if progress is not None:
                progress(k + 1, len(todo))
    right = []
    for q in qs:
        if q["question_type"] == "multiple-choice":
            right.append(parse_choice(done[q["id"]], q["options"], q["id"]) == str(q["answer"]).strip())
        else:
            right.append(open_correct(done[q["id"]], q["answer"]))
    scores = {"accuracy": sum(right) / len(right), "n_questions": len(right)}
    results = {"benchmark": "mmmu", "scores": scores, "decoding": "greedy", "max_new_tokens": max_new_tokens,
               "prompt_suffix": {"multiple-choice": MC_SUFFIX, "open": OPEN_SUFFIX},
               "model": str(getattr(model, "source_path", "")), "config_hash": config_hash(model),
               "januspro_version": __version__, "hardware": hardware(), "seconds": round(time.time() - t0, 1)}
    write_results(out, results)
    return results
