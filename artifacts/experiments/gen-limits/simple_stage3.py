"""Stage III with simple scenes added to its text-to-image data, from a finished run's Stage II model.

    python artifacts/experiments/gen-limits/simple_stage3.py RUN N OUT   (repo root)

Writes N clean text-to-image items whose scenes all come from the simple families (``DataStyle.simple_scenes
= 1``: one object, two objects of two shapes, 2-4 of one shape; seed 1, so other scenes than RUN's), captioned
as RUN's Stage III captions are (raster order), and trains the recipe's Stage III of RUN on RUN's clean rows
plus these (RUN's understanding and text data, RUN's Stage II model, the recipe's settings). Writes
OUT/data/t2i/t2i_stage3.jsonl and OUT/stage3.
"""
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from januspro.shapes.datasets import usable_cpus, write_task
from januspro.training.recipe import Recipe
from januspro.training.trainer import make_trainer

if len(sys.argv) != 4:
    sys.exit(__doc__)
run, n, out = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
recipe = Recipe(run, progress=False)
folder = out / "data" / "t2i"
combined = folder / "t2i_stage3.jsonl"
if not combined.is_file():
    style = replace(recipe.sft_style(), simple_scenes=1.0)
    simple = write_task("t2i", folder / "simple", n, seed=1, variant="synthetic", style=style,
                        workers=usable_cpus())
    if not (folder / "images").exists():
        os.symlink((run / "data" / "t2i" / "images").resolve(), folder / "images")
    rows = (run / "data" / "t2i" / "t2i_synthetic.jsonl").read_text().splitlines()
    for line in simple.read_text().splitlines():
        row = json.loads(line)
        row["image"] = "simple/" + row["image"]
        rows.append(json.dumps(row))
    tmp = combined.with_suffix(".tmp")
    tmp.write_text("\n".join(rows) + "\n")
    tmp.replace(combined)
over = {"data.t2i": str(combined), "model.init": str(run / "stage2" / "model")}
recipe = Recipe(run, overrides={"stage3": over}, progress=False)
trainer = make_trainer(recipe.run_config("stage3", out / "stage3"))
trainer.run()
