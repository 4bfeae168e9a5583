"""Scorers that mirror the real benchmarks' rules, and a runner over GenEval's folder layout.

* GenEval: per image, every ``include`` clause must hold (at least ``count`` objects of the class; of the
  first ``count`` found, at least ``count`` of the asked colour; each of them in the asked relation to every
  object of the target clause, with GenEval's position margin), and no ``exclude`` clause may hold (fewer
  than ``count`` objects of the class). Per-category accuracy over images; overall = mean of the categories.
* POPE: an answer is "no" when its first sentence has the word "no"/"No"/"not", else "yes"; accuracy,
  precision, recall, F1 (positive = yes) and the yes-ratio.
* VQA: exact match after normalisation (case, punctuation, articles, number words).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .detect import Detection, detect
from .language import strip_citation
from .suites import TAGS
from .world import relations


# ----------------------------------------------------------------------------- GenEval
def group_detections(dets: Iterable[Detection]) -> dict[str, list[Detection]]:
    """Detections by class (shape), most confident first; unknown blobs belong to no class."""
    out: dict[str, list[Detection]] = {}
    for d in sorted(dets, key=lambda d: -d.score):
        if d.shape != "unknown":
            out.setdefault(d.shape, []).append(d)
    return out


def evaluate_geneval(dets: list[Detection], meta: dict) -> tuple[bool, str]:
    """GenEval's verdict for one image's detections: (correct, reasons)."""
    objects = group_detections(dets)
    correct = True
    reasons: list[str] = []
    matched: list[list[Detection] | None] = []
    for req in meta.get("include", []):
        cls, count = req["class"], req["count"]
        found = objects.get(cls, [])[:count]
        ok = True
        if len(found) < count:
            ok = False
            reasons.append(f"expected {cls}>={count}, found {len(found)}")
        else:
            if "color" in req:
                n_color = sum(1 for d in found if d.color == req["color"])
                if n_color < count:
                    ok = False
                    reasons.append(f"expected {req['color']} {cls}>={count}, found {n_color} {req['color']}")
            if "position" in req and ok:
                rel, target = req["position"]
                if matched[target] is None:
                    ok = False
                    reasons.append(f"no target for {cls} to be {rel}")
                else:
                    for d in found:
                        for t in matched[target] or []:
                            if rel not in relations(d.bbox, t.bbox):
                                ok = False
                                reasons.append(f"expected {cls} {rel} target")
                                break
                        if not ok:
                            break
        correct &= ok
        matched.append(found if ok else None)
    for req in meta.get("exclude", []):
        n = len(objects.get(req["class"], []))
        if n >= req["count"]:
            correct = False
            reasons.append(f"expected {req['class']}<{req['count']}, found {n}")
    return correct, "; ".join(reasons)


@dataclass
class GenevalReport:
    per_tag: dict[str, float]
    overall: float
    n_images: int
    per_split: dict[str, dict[str, float]]  # "seen"/"heldout" -> tag -> accuracy
    rows: list[dict]

    def to_dict(self) -> dict:
        return {"overall": self.overall, "per_tag": self.per_tag, "n_images": self.n_images,
                "per_split": self.per_split}

    def markdown(self) -> str:
        tags = [t for t in TAGS if t in self.per_tag]
        lines = ["| split | overall | " + " | ".join(tags) + " |", "|---|---|" + "---|" * len(tags)]
        lines.append("| all | " + f"{self.overall:.3f} | " + " | ".join(f"{self.per_tag[t]:.3f}" for t in tags) + " |")
        for split, vals in self.per_split.items():
            cells = " | ".join(f"{vals[t]:.3f}" if t in vals else "-" for t in tags)
            lines.append(f"| {split} | {np.mean(list(vals.values())):.3f} | {cells} |")
        return "\n".join(lines) + "\n"


def summarize(rows: list[dict]) -> GenevalReport:
    per_tag: dict[str, list[bool]] = {}
    split: dict[str, dict[str, list[bool]]] = {}
    for r in rows:
        per_tag.setdefault(r["tag"], []).append(r["correct"])
        s = "heldout" if r.get("heldout") else "seen"
        split.setdefault(s, {}).setdefault(r["tag"], []).append(r["correct"])
    acc = {t: float(np.mean(v)) for t, v in per_tag.items()}
    overall = float(np.mean(list(acc.values()))) if acc else 0.0
    per_split = {s: {t: float(np.mean(v)) for t, v in d.items()} for s, d in sorted(split.items())}
    return GenevalReport(acc, overall, len(rows), per_split, rows)


def score_geneval_folder(folder: str | Path, out: str | Path | None = None) -> GenevalReport:
    """Score a folder in GenEval's layout (``<index>/metadata.jsonl``, ``<index>/samples/NNNN.png``) with the
    exact shapes detector; writes ``results.jsonl``, ``report.json`` and ``report.md`` into ``out``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder at {folder}")
    rows = []
    subdirs = sorted((p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    if not subdirs:
        raise ValueError(f"{folder} has no GenEval-layout prompt folders (<index>/metadata.jsonl)")
    for sub in subdirs:
        meta = json.loads((sub / "metadata.jsonl").read_text().strip().splitlines()[0])
        samples = sub / "samples"
        for img_path in sorted(samples.glob("*.png")) if samples.is_dir() else []:
            if not re.fullmatch(r"\d+\.png", img_path.name):
                continue
            ok, reason = evaluate_geneval(detect(Image.open(img_path)), meta)
            rows.append({"filename": str(img_path), "tag": meta["tag"], "prompt": meta["prompt"], "correct": ok,
                         "reason": reason, "heldout": bool(meta.get("heldout", False))})
    report = summarize(rows)
    if out is not None:
        o = Path(out)
        o.mkdir(parents=True, exist_ok=True)
        with open(o / "results.jsonl", "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        (o / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        (o / "report.md").write_text(report.markdown())
    return report


# ----------------------------------------------------------------------------- POPE
def pope_answer(text: str) -> str:
    """POPE's answer parsing: the first sentence, commas removed; "no" if it has the word no/No/not."""
    t = text.split(".")[0] if "." in text else text
    words = t.replace(",", "").split(" ")
    return "no" if ("No" in words or "not" in words or "no" in words) else "yes"


def pope_metrics(predictions: list[str], labels: list[str]) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (positive = yes) and yes-ratio of raw answers against yes/no labels."""
    if len(predictions) != len(labels) or not labels:
        raise ValueError("need one prediction per label, and at least one")
    pred = [pope_answer(p) == "yes" for p in predictions]
    gold = [lab == "yes" for lab in labels]
    tp = sum(p and g for p, g in zip(pred, gold, strict=True))
    fp = sum(p and not g for p, g in zip(pred, gold, strict=True))
    fn = sum(g and not p for p, g in zip(pred, gold, strict=True))
    tn = len(pred) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": (tp + tn) / len(pred), "precision": precision, "recall": recall, "f1": f1,
            "yes_ratio": sum(pred) / len(pred)}


# ----------------------------------------------------------------------------- VQA
_NUMBER_WORDS = {"zero": "0", "none": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                 "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and articles, map number words to digits, squeeze spaces."""
    t = text.lower().strip()
    t = re.sub(r"[^\w\s]", " ", t)
    words = [_NUMBER_WORDS.get(w, w) for w in t.split() if w not in _ARTICLES]
    return " ".join(words)


def vqa_match(prediction: str, answer: str) -> bool:
    """Exact match after normalisation; a cited answer ("blue circle 2 1: blue", :func:`~.language.cited_answer`)
    is matched on what follows its citation."""
    return normalize_answer(strip_citation(prediction)) == normalize_answer(answer)


def vqa_accuracy(predictions: list[str], answers: list[str]) -> float:
    if len(predictions) != len(answers) or not answers:
        raise ValueError("need one prediction per answer, and at least one")
    return float(np.mean([vqa_match(p, a) for p, a in zip(predictions, answers, strict=True)]))
