"""Stage III with more "Describe the image." chats, from a finished run's Stage II model.

    python artifacts/experiments/self-rerank/describe_stage3.py RUN SHARE OUT   (repo root)

RUN's understanding chats with a share SHARE of them (seed 0) replaced by one describe turn about the same image,
answered with a caption drawn like the text-to-image captions (colours 3/4 of the time, a relation phrase half
the time, groups in mixed order; a caption naming a held-out combination keeps the original chat). Then the
recipe's Stage III of RUN on that understanding data (RUN's Stage II model, text-to-image and text data).
Writes OUT/data/und/und.jsonl and OUT/stage3.
"""
import json
import os
import sys
from pathlib import Path

import numpy as np

from januspro.shapes.language import caption, mentions_held_out
from januspro.shapes.world import Scene
from januspro.training.recipe import Recipe
from januspro.training.trainer import make_trainer

if len(sys.argv) != 4:
    sys.exit(__doc__)
run, share, out = Path(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
QUESTIONS = ("Describe the image.", "What do you see?", "Describe this picture.")
folder = out / "data" / "und"
und = folder / "und.jsonl"
if not und.is_file():
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "images").exists():
        os.symlink((run / "data" / "und" / "images").resolve(), folder / "images")
    rng = np.random.default_rng(0)
    rows, replaced = [], 0
    for line in (run / "data" / "und" / "und.jsonl").read_text().splitlines():
        row = json.loads(line)
        if rng.random() < share:
            text = caption(Scene.from_dict(row["scene"]), rng)
            if not mentions_held_out(text):
                q = QUESTIONS[int(rng.integers(len(QUESTIONS)))]
                row["messages"] = [{"role": "user", "content": "<image_placeholder>\n" + q},
                                   {"role": "assistant", "content": text}]
                row["kinds"] = ["describe"]
                replaced += 1
        rows.append(json.dumps(row))
    und.with_suffix(".tmp").write_text("\n".join(rows) + "\n")
    und.with_suffix(".tmp").replace(und)
    print(f"{replaced} of {len(rows)} chats are describe chats now", flush=True)
over = {"data.und": str(und), "model.init": str(run / "stage2" / "model")}
recipe = Recipe(run, overrides={"stage3": over}, progress=False)
trainer = make_trainer(recipe.run_config("stage3", out / "stage3"))
trainer.run()
