"""A run folder that shares a finished run's parts up to Stage II and trains its own Stage III with counting chats.

    python artifacts/experiments/count-judge/setup_run.py RUN OUT N   (repo root)
    januspro train recipe shapes --out OUT --sft-count-chats N [--vq FILE as RUN had it]

OUT gets links to RUN's part folders (tokenizer ... stage2) and to RUN's data folders but ``t2i`` (RUN's images
and pairs linked, Stage III's pairs written here by the recipe) and ``und``, which it writes itself: RUN's ``und.jsonl`` with absolute image paths (same chats), then, through the recipe's own
``Recipe.write_stage_data`` with ``sft_count_chats=N``, Stage III's chats (judge turns at the recipe's share and N
counting chats, their images in OUT/data/und/images). OUT/recipe.json holds RUN's records up to Stage II and the
data record with ``sft_count_chats``. The recipe command then trains Stage III, evaluates and packages, exactly as
a whole run with ``--sft-count-chats N`` would from RUN's Stage II model.
"""
import json
import os
import shutil
import sys
from pathlib import Path

from januspro.training.recipe import ORDER, Recipe

if len(sys.argv) != 4:
    sys.exit(__doc__)
run, out, n = Path(sys.argv[1]).resolve(), Path(sys.argv[2]), int(sys.argv[3])
parts = json.loads((run / "recipe.json").read_text())["parts"]
shared = ORDER[1:ORDER.index("stage3")]


def link(src: Path, dest: Path, names) -> None:
    """``dest/name`` -> ``src/name`` for each name ``src`` has and ``dest`` lacks."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (src / name).exists() and not (dest / name).exists():
            os.symlink((src / name).resolve(), dest / name)


link(run, out, shared)
data = out / "data"
link(run / "data", data, ("text", "classname", "eval"))
# t2i: RUN's images and pairs linked; Stage III's pairs are written here (the recipe writes them with its chats)
t2i_src = (run / "data" / "t2i").resolve()
link(t2i_src, data / "t2i", ("images", "t2i.jsonl", "style.json"))
for cache in t2i_src.glob("t2i_synthetic.codes-*.npy"):  # the same images in the same order
    shutil.copy(cache, data / "t2i" / cache.name)
src = (run / "data" / "und").resolve()
und = data / "und"
und.mkdir(parents=True, exist_ok=True)
with open(und / "und.jsonl", "w") as f:
    for line in open(src / "und.jsonl"):
        row = json.loads(line)
        row["images"] = [str(src / p) for p in row["images"]]
        f.write(json.dumps(row) + "\n")
# this experiment's text-to-image pairs had no drawing plans (the recipe's default since session 35)
recipe = Recipe(out, progress=False, sft_count_chats=n, plan_share=0.0, sft_plan_share=0.0, sft_look_share=0.0)
recipe.write_stage_data()
records = {k: v for k, v in parts.items() if k in ("data", *shared)}
records["data"] = {**parts["data"], "sft_count_chats": recipe.count_chats,
                   "note": f"{run.name}'s data; Stage III's chats written by setup_run.py with {n} counting chats"}
(out / "recipe.json").write_text(json.dumps({"parts": records}, indent=2) + "\n")
print(f"{out}: {sum(1 for _ in open(recipe.sft_chats))} Stage III chats; parts {', '.join(records)}")
