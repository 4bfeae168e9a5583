"""Does more Stage III compute buy generation quality? Continue a finished run's Stage III model.

    python artifacts/experiments/gen-limits/longer_stage3.py RUN STEPS OUT   (repo root)

Trains RUN/stage3/model for STEPS more steps with the recipe's own Stage III run config (same data files,
LR 2e-4 after a 100-step warm-up, linear cool-down over the last half to x0.05), data drawn with another
seed (1) so the continuation does not replay the same order. Writes OUT/model.
"""
import sys
from pathlib import Path

from januspro.training.recipe import Recipe
from januspro.training.trainer import make_trainer

if len(sys.argv) != 4:
    sys.exit(__doc__)
run, steps, out = sys.argv[1:4]
over = {"model.init": f"{run}/stage3/model", "train.steps": steps, "optim.warmup_steps": "100",
        "optim.decay_steps": str(int(steps) // 2), "train.seed": "1", "train.save_every": "200"}
recipe = Recipe(Path(run), overrides={"stage3": over}, progress=False)
trainer = make_trainer(recipe.run_config("stage3", Path(out)))
trainer.run()
