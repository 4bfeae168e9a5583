"""A run folder that shares a finished run's parts up to Stage II and its understanding chats, and trains its own
Stage III with drawing plans on a share of the clean text-to-image pairs.

    python artifacts/experiments/plan/setup_run.py RUN OUT SHARE [STAGE2_SHARE]   (repo root)
    januspro train recipe shapes --out OUT --sft-plan-share SHARE [--plan-share STAGE2_SHARE] [--vq FILE as RUN had it]

With STAGE2_SHARE, OUT shares RUN's parts up to Stage I only and also gets Stage II's pairs ``t2i_stage2.jsonl``:
RUN's ``t2i.jsonl`` (clean and noisy) with a share STAGE2_SHARE of them given their scene's plan, as the recipe
writes them with ``--plan-share`` (``plan_rows``, seed 1). (Run s35-plan2 was set up by an earlier version of this
script that named that file ``t2i_plan.jsonl`` and trained with ``--set stage2.data.t2i={data}/t2i/t2i_plan.jsonl``:
the same lines.)

OUT gets links to RUN's part folders (tokenizer ... stage2) and data folders but ``t2i`` and ``und``:
``t2i`` links RUN's images and text-to-image lines and holds its own ``t2i_synthetic.jsonl``, RUN's with a share
SHARE of the lines given their scene's drawing plan (``januspro.shapes.datasets.plan_rows``, seed 0) and RUN's
cached image codes for it (same images, same order); ``und`` links RUN's Stage III chats. The stamp of Stage III's
data says the recipe's defaults with ``sft_plan_share`` SHARE (RUN's chats are the default ones). OUT/recipe.json holds RUN's records up to Stage II.
"""
import json
import os
import shutil
import sys
from pathlib import Path

from januspro.shapes.datasets import plan_rows
from januspro.training.recipe import ORDER, Recipe

if len(sys.argv) not in (4, 5):
    sys.exit(__doc__)
run, out, share = Path(sys.argv[1]).resolve(), Path(sys.argv[2]), float(sys.argv[3])
stage2_share = float(sys.argv[4]) if len(sys.argv) == 5 else None
parts = json.loads((run / "recipe.json").read_text())["parts"]
shared = ORDER[1:ORDER.index("stage3" if stage2_share is None else "stage2")]


def link(src: Path, dest: Path, names) -> None:
    """``dest/name`` -> ``src/name`` for each name ``src`` has and ``dest`` lacks."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (src / name).exists() and not (dest / name).exists():
            os.symlink((src / name).resolve(), dest / name)


link(run, out, shared)
data = out / "data"
link(run / "data", data, ("text", "classname", "eval"))
src = (run / "data" / "t2i").resolve()
t2i = data / "t2i"
link(src, t2i, ("images", "t2i.jsonl", "style.json"))
lines = open(src / "t2i_synthetic.jsonl").readlines()
(t2i / "t2i_synthetic.jsonl").write_text("".join(plan_rows(lines, share, seed=0)))
for cache in src.glob("t2i_synthetic.codes-*.npy"):
    shutil.copy(cache, t2i / cache.name)
# Stage II's pairs as the recipe writes them (unused when Stage II is RUN's: they complete Stage III's data stamp)
(t2i / "t2i_stage2.jsonl").write_text("".join(plan_rows(open(src / "t2i.jsonl").readlines(), stage2_share or 0.0,
                                                        seed=1)))
if stage2_share is not None:
    for cache in src.glob("t2i.codes-*.npy"):  # same images, same order: the cache key is the VQ and the row count
        shutil.copy(cache, t2i / cache.name.replace("t2i.codes-", "t2i_stage2.codes-"))
link(run / "data" / "und", data / "und", ("images", "und.jsonl", "und_sft.jsonl"))
recipe = Recipe(out, progress=False, sft_plan_share=share, plan_share=stage2_share or 0.0, sft_look_share=0.0)
recipe.stamp_stage_data()
records = {k: v for k, v in parts.items() if k in ("data", *shared)}
records["data"] = {**parts["data"], **recipe.stage_data_settings(),
                   "note": f"{run.name}'s data; Stage III's clean t2i pairs with plans on a share {share} (plan/setup_run.py)"}
(out / "recipe.json").write_text(json.dumps({"parts": records}, indent=2) + "\n")
n_plan = sum('"plan"' in x for x in open(t2i / "t2i_synthetic.jsonl"))
print(f"{out}: {n_plan} of {len(lines)} clean t2i pairs with a plan; parts {', '.join(records)}")
