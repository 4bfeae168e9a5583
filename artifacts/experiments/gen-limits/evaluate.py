"""The recipe's eval part for any model folder: sampling chosen on the validation prompts, then shapes-GenEval,
shapes-POPE and VQA on the held-out suites.

    python artifacts/experiments/gen-limits/evaluate.py MODEL SUITES OUT   (repo root; SUITES: RUN/data/eval)

Writes OUT/scores.json and prints the headline numbers.
"""
import json
import sys
from pathlib import Path

import torch

from januspro.training.shapes_eval import evaluate_shapes_model, targets_met

torch.set_num_threads(2)
model, suites, out = (Path(a) for a in sys.argv[1:4])
scores = evaluate_shapes_model(model, suites, out, progress=False)
scores["targets"] = targets_met(scores)
out.mkdir(parents=True, exist_ok=True)
(out / "scores.json").write_text(json.dumps(scores, indent=1) + "\n")
ge, po = scores["geneval"], scores["pope"]
print(json.dumps({"geneval": round(ge["overall"], 3), "per_tag": {k: round(v, 2) for k, v in ge["per_tag"].items()},
                  "pope_f1": [round(po[s]["f1"], 3) for s in ("random", "popular", "adversarial")],
                  "vqa": round(scores["vqa"]["accuracy"], 3), "sampling": scores["sampling"]}))
