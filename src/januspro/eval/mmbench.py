"""MMBench runner with circular evaluation.

Reads MMBench's TSV (columns ``index``, ``question``, ``hint``, ``A``..``D`` (``E``.. if present),
``answer``, ``category``, ``image`` = base64-encoded image; ``l2-category`` and others are kept but unused).
Every question is asked once per circular shift of its options (N options, N passes: the option texts rotate
over the letters); it counts as right only when every pass picks the right option — MMBench's CircularEval.
Prompt (the LLaVA-style format used for MMBench): ``[hint\\n]question\\nA. ...\\nB. ...\\nAnswer with the
option's letter from the given choices directly.``; greedy decoding. An answer is read as the option letter it
starts with ("B", "B.", "(B)", "B) ...") or states ("the answer is B"), else the option whose text it equals
(after normalisation: case, punctuation, articles); else it is wrong.
Writes ``answers.jsonl`` (resumable), ``results.json`` (overall and per-category circular accuracy, and the
single-pass accuracy of the unshifted questions).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .. import __version__
from ..generation.text import TextGenParams
from ..models.janus import JanusModel
from ..processing.image import load_image
from ..processing.processor import JanusProcessor
from ..shapes.scoring import normalize_answer
from .answers import answer_items
from .geneval import config_hash, hardware
from .record import answers_stamp, claim_output, write_results

LETTERS = "ABCDEFGHI"
SUFFIX = "Answer with the option's letter from the given choices directly."


def read_tsv(path: str | Path) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no MMBench TSV at {p}")
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # base64 images are long fields
    with open(p, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows:
        raise ValueError(f"{p} holds no questions")
    need = {"index", "question", "A", "B", "answer", "image"}
    missing = need - set(rows[0])
    if missing:
        raise ValueError(f"{p} lacks the MMBench column(s) {sorted(missing)}")
    return rows


def options_of(row: dict) -> list[str]:
    out = []
    for letter in LETTERS:
        v = row.get(letter)
        if v is None or str(v).strip() in ("", "nan"):
            break
        out.append(str(v).strip())
    return out


def prompt_for(row: dict, options: list[str]) -> str:
    hint = str(row.get("hint") or "").strip()
    lines = ([hint] if hint and hint != "nan" else []) + [str(row["question"]).strip()]
    lines += [f"{LETTERS[i]}. {o}" for i, o in enumerate(options)]
    return "\n".join(lines + [SUFFIX])


def extract_choice(answer: str, options: list[str]) -> str | None:
    """The option letter an answer picks, or None."""
    letters = LETTERS[:len(options)]
    text = answer.strip()
    m = re.match(rf"^\(?([{letters}])(?:[).:,\s]|$)", text)
    if m:
        return m.group(1)
    m = re.search(rf"(?i:answer)(?: is)?\s*[:=]?\s*\(?([{letters}])\b", text)
    if m:
        return m.group(1)
    norm = normalize_answer(text)
    for i, o in enumerate(options):
        if norm and norm == normalize_answer(o):
            return letters[i]
    return None


def circular_items(rows: list[dict]) -> list[dict]:
    """One item per (question, shift): options rotated by ``shift``; ``gold`` is the letter of the answer."""
    items = []
    for row in rows:
        opts = options_of(row)
        if len(opts) < 2:
            raise ValueError(f"MMBench question {row['index']} has fewer than two options")
        ans = str(row["answer"]).strip()
        if ans not in LETTERS[:len(opts)]:
            raise ValueError(f"MMBench question {row['index']}: answer {ans!r} is not one of its option letters")
        gold_text = opts[LETTERS.index(ans)]
        for shift in range(len(opts)):
            rot = opts[shift:] + opts[:shift]
            items.append({"question_id": f"{row['index']}/{shift}", "index": str(row["index"]), "shift": shift,
                          "options": rot, "gold": LETTERS[rot.index(gold_text)], "prompt": prompt_for(row, rot),
                          "category": str(row.get("category") or "")})
    return items


def circular_scores(items: list[dict], answers: dict[str, str]) -> dict:
    per_q: dict[str, list[bool]] = {}
    cat: dict[str, str] = {}
    single: dict[str, bool] = {}
    for it in items:
        ok = extract_choice(answers[it["question_id"]], it["options"]) == it["gold"]
        per_q.setdefault(it["index"], []).append(ok)
        cat[it["index"]] = it["category"]
        if it["shift"] == 0:
            single[it["index"]] = ok
    right = {q: all(v) for q, v in per_q.items()}
    cats: dict[str, list[bool]] = {}
    for q, ok in right.items():
        cats.setdefault(cat[q], []).append(ok)
    return {"circular_accuracy": sum(right.values()) / len(right), "single_pass_accuracy": sum(single.values()) / len(single),
            "per_category": {c: sum(v) / len(v) for c, v in sorted(cats.items()) if c},
            "n_questions": len(right)}


def run_mmbench(model: JanusModel, processor: JanusProcessor, data: str | Path, out: str | Path,
                batch_size: int = 8, max_new_tokens: int = 8, progress: Callable[[int, int], None] | None = None
                ) -> dict:
    rows = read_tsv(data)
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    params = TextGenParams(max_new_tokens=max_new_tokens, temperature=0.0)
    claim_output(out, answers_stamp(model, params, SUFFIX))  # resume only answers of these settings and this model
    for row in rows:  # decode each image once into OUT/images (checked, so a bad row fails before the model runs)
        dest = out / "images" / f"{row['index']}.png"
        if dest.is_file():
            continue
        try:
            img = load_image(base64.b64decode(str(row["image"]), validate=False))
        except (binascii.Error, ValueError) as e:
            raise ValueError(f"MMBench question {row['index']}: the image column is not a base64 image ({e})") from None
        tmp = dest.with_suffix(".tmp")
        img.save(tmp, format="PNG")
        tmp.replace(dest)
    items = circular_items(rows)
    for it in items:
        it["image"] = f"{it['index']}.png"
    t0 = time.time()
    answers = answer_items(model, processor, items, out / "images", out / "answers.jsonl", lambda it: it["prompt"],
                           params, batch_size, progress)
    results = {"benchmark": "mmbench", "scores": circular_scores(items, answers), "evaluation": "circular",
               "prompt_suffix": SUFFIX, "decoding": "greedy", "max_new_tokens": max_new_tokens,
               "model": str(getattr(model, "source_path", "")), "config_hash": config_hash(model),
               "januspro_version": __version__, "hardware": hardware(), "seconds": round(time.time() - t0, 1)}
    write_results(out, results)
    return results


def write_tsv(rows: list[dict], path: str | Path) -> Path:
    """Write MMBench-format rows (``image`` given as PIL image or bytes is base64-encoded) -- for stand-ins."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    p = Path(path)
    with open(p, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, delimiter="\t")
        w.writeheader()
        for r in rows:
            r = dict(r)
            img = r.get("image")
            if img is not None and not isinstance(img, str):
                if not isinstance(img, (bytes, bytearray)):
                    buf = io.BytesIO()
                    img.save(buf, format="PNG")
                    img = buf.getvalue()
                r["image"] = base64.b64encode(img).decode()
            w.writerow(r)
    return p
