"""Stage II of the shapes recipe, started from a finished run's Stage I model, for a few steps at another LR.

    python artifacts/experiments/stage2-lr/lr_probe.py RUN LR STEPS OUT   (repo root)

Same data, same order and same seed as the recipe's own Stage II of RUN, so its log (RUN/stage2/log.jsonl) is
the baseline at the recipe's LR, step for step. Prints the mean losses of the last 50 steps.
"""
import json
import sys
from pathlib import Path

from januspro.training.config import load_run_config
from januspro.training.recipe import Recipe
from januspro.training.trainer import make_trainer

if len(sys.argv) != 5:
    sys.exit(__doc__)
run, lr, steps, out = sys.argv[1:]
recipe = Recipe(Path(run), overrides={"stage2": {"optim.lr": lr, "train.steps": steps, "train.save_every": "0"}},
                progress=False)
# the recipe's own Stage II run config, written to OUT instead of RUN/stage2 (a later override wins)
trainer = make_trainer(load_run_config(None, [*recipe.run_config_overrides("stage2"), f"train.out={out}"]))
rows = [s.row() for s in trainer.run()][-50:]
print(json.dumps({"lr": lr, "steps": steps, **{k: round(sum(float(r[k]) for r in rows) / len(rows), 4)
                                              for k in ("loss", "text_loss", "image_loss")}}))
