"""A stage of the shapes recipe, started from a finished run's previous stage, for a few steps at another LR.

    python artifacts/experiments/stage2-lr/lr_probe.py RUN LR STEPS OUT [PART]   (repo root; PART: stage2)

Same data, same order and same seed as the recipe's own PART of RUN, so its log (RUN/PART/log.jsonl) is the
baseline at the recipe's LR, step for step. The probe keeps the LR constant after the warm-up (the recipe's
Stage III cool-down only starts 1,200 steps before its end, so its first steps are constant too). Prints the
mean losses of the last 50 steps.
"""
import json
import sys
from pathlib import Path

from januspro.training.recipe import Recipe
from januspro.training.trainer import make_trainer

if len(sys.argv) not in (5, 6):
    sys.exit(__doc__)
run, lr, steps, out = sys.argv[1:5]
part = sys.argv[5] if len(sys.argv) == 6 else "stage2"
recipe = Recipe(Path(run), overrides={part: {"optim.lr": lr, "train.steps": steps, "train.save_every": "0",
                                             "optim.decay_steps": "0"}}, progress=False)
# the recipe's own run config of PART, written to OUT instead of RUN/PART
trainer = make_trainer(recipe.run_config(part, Path(out)))
rows = [s.row() for s in trainer.run()][-50:]
print(json.dumps({"part": part, "lr": lr, "steps": steps,
                  **{k: round(sum(float(r[k]) for r in rows) / len(rows), 4) for k in ("loss", "text_loss",
                                                                                       "image_loss")}}))
