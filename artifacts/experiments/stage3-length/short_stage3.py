"""A finished run's Stage III again from its Stage II model, with fewer steps (the recipe's settings otherwise,
the cool-down kept at the recipe's share of the steps, 1,200 of 3,400).

    python artifacts/experiments/stage3-length/short_stage3.py RUN STEPS OUT   (repo root)

Writes OUT/stage3 (its model in OUT/stage3/model).
"""
import sys
from pathlib import Path

from januspro.training.recipe import PARTS, Recipe
from januspro.training.trainer import make_trainer

if len(sys.argv) != 4:
    sys.exit(__doc__)
run, steps, out = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
full = PARTS["stage3"]
decay = round(steps * int(full["optim.decay_steps"]) / int(full["train.steps"]))
over = {"model.init": str(run / "stage2" / "model"), "train.steps": str(steps), "optim.decay_steps": str(decay)}
recipe = Recipe(run, overrides={"stage3": over}, progress=False)
trainer = make_trainer(recipe.run_config("stage3", out / "stage3"))
trainer.run()
