"""Stage III whose clean text-to-image scenes put every object at its cell's centre, from a run's Stage II model.

    python artifacts/experiments/centred-scenes/centred_stage3.py RUN N OUT [JITTER]   (repo root)

Writes N clean text-to-image items (seed 0, RUN's Stage III caption style, ``synthetic_jitter=JITTER``, 0 by
default: objects at the centres of their 3x3 grid cells) and trains the recipe's Stage III of RUN on them in
place of RUN's clean rows (RUN's understanding and text data, RUN's Stage II model, the recipe's settings).
Writes OUT/data/t2i/t2i.jsonl and OUT/stage3.
"""
import sys
from dataclasses import replace
from pathlib import Path

from januspro.shapes.datasets import usable_cpus, write_task
from januspro.training.recipe import Recipe
from januspro.training.trainer import make_trainer

if len(sys.argv) not in (4, 5):
    sys.exit(__doc__)
run, n, out = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
jitter = float(sys.argv[4]) if len(sys.argv) == 5 else 0.0
recipe = Recipe(run, progress=False)
folder = out / "data" / "t2i"
data = folder / "t2i.jsonl"
if not data.is_file():
    style = replace(recipe.sft_style(), synthetic_jitter=jitter)
    data = write_task("t2i", folder, n, seed=0, variant="synthetic", style=style, workers=usable_cpus())
over = {"data.t2i": str(data), "model.init": str(run / "stage2" / "model")}
recipe = Recipe(run, overrides={"stage3": over}, progress=False)
trainer = make_trainer(recipe.run_config("stage3", out / "stage3"))
trainer.run()
