"""Understanding scores of a recipe run's intermediate models, and where POPE's false "yes" answers come from.

    python artifacts/experiments/dense4-hard-negatives/stage_probe.py RUN [PART ...]   (repo root)

For every PART (default: stage2 stage3) of the recipe folder RUN: shapes-POPE (F1 and yes-ratio per split) and
the VQA suite (overall and per kind) of RUN/PART/model, greedy, on the run's own evaluation suites
(RUN/data/eval), exactly as the recipe's eval part runs them (answers written to RUN/probe/PART). Then, from the answers the recipe's eval part wrote (RUN/eval/pope), the share of "yes" to the
absent objects of each POPE split, split into near misses (sharing a colour or a shape with an object the
scene shows) and the rest.
"""
import json
import sys
from collections import Counter
from pathlib import Path

from januspro.checkpoint import load_processor
from januspro.training.shapes_eval import evaluate_understanding, load_shapes_model

SPLITS = ("random", "popular", "adversarial")


def understanding(model_dir: Path, suites: Path, out: Path) -> dict:
    model = load_shapes_model(model_dir)
    scores = evaluate_understanding(model, load_processor(model), suites, out, progress=False)
    pope, vqa = scores["pope"]["scores"], scores["vqa"]["scores"]
    return {"pope": {s: {"f1": round(v["f1"], 3), "yes_ratio": round(v["yes_ratio"], 2)} for s, v in pope.items()},
            "vqa": round(vqa["accuracy"], 3), "per_kind": {k: round(v, 2) for k, v in vqa["per_kind"].items()}}


def false_yes(run: Path) -> dict:
    """{split: {"near": (yes, asked), "far": (yes, asked), "present": (yes, asked)}} from the eval part's answers."""
    out = {}
    for split in SPLITS:
        questions = [json.loads(line) for line in open(run / "data" / "eval" / "pope" / f"pope_{split}.jsonl")]
        answers = {}
        for line in open(run / "eval" / "pope" / f"answers_{split}.jsonl"):
            row = json.loads(line)
            answers[row["question_id"]] = row["answer"].strip().lower().startswith("yes")
        shown: dict[str, set[str]] = {}
        for q in questions:  # every scene's "yes" questions name objects it shows
            if q["label"] == "yes":
                shown.setdefault(q["image"], set()).add(q["object"])
        asked, said_yes = Counter(), Counter()
        for q in questions:
            if q["label"] == "yes":
                group = "present"
            else:
                colour, shape = q["object"].split(" ")
                near = any(p.split(" ")[0] == colour or p.split(" ")[1] == shape for p in shown[q["image"]])
                group = "near" if near else "far"
            asked[group] += 1
            said_yes[group] += answers[q["question_id"]]
        out[split] = {g: (said_yes[g], asked[g]) for g in ("present", "near", "far") if asked[g]}
    return out


def main(run: Path, parts: list[str]) -> None:
    for part in parts:
        print(part, json.dumps(understanding(run / part / "model", run / "data" / "eval", run / "probe" / part)))
    if (run / "eval" / "pope").is_dir():
        for split, groups in false_yes(run).items():
            print(split, ", ".join(f"{g}: yes {y}/{n} = {y / n:.2f}" for g, (y, n) in groups.items()))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), sys.argv[2:] or ["stage2", "stage3"])
