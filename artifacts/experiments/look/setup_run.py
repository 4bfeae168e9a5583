"""A run folder that shares a finished run's parts up to Stage II and all its data but Stage III's chats, which it
rewrites with a share of them opened by a look turn ("List the objects." answered with the scene's inventory).

    python artifacts/experiments/look/setup_run.py RUN OUT SHARE [EXIST [SPACE]]   (repo root)
    januspro train recipe shapes --out OUT --sft-look-share SHARE --sft-look-exist-share EXIST \
        --sft-look-space-share SPACE [--vq FILE as RUN had it]

(EXIST and SPACE are 0 when omitted here; the recipe's own default for EXIST is 1, so pass both to the recipe.)

RUN is a run of the recipe's defaults (Stage II pairs with plans in ``t2i_stage2.jsonl``, or in ``t2i_plan.jsonl``
for run s35-plan2, which holds the same lines). OUT gets links to RUN's part folders up to Stage II and to its
data folders but ``t2i`` and ``und``, which are its own: ``t2i`` links RUN's images and lines and hard-links RUN's
Stage II-III pairs with their cached codes; ``und`` links RUN's images and chats, and holds its own
``und_sft.jsonl``: RUN's Stage III chats through ``januspro.shapes.datasets.look_rows`` (seed 2), as the recipe
writes them with ``--sft-look-share SHARE`` (and ``--sft-look-exist-share EXIST``: that share of the look-opened
chats next ask about a present object or a near miss of one; ``--sft-look-space-share SPACE``: that share of them
then ask where one object is relative to another, see README's Result 3). The stamp of Stage II-III's data says the
recipe's defaults with ``sft_look_share`` SHARE. OUT/recipe.json holds RUN's records up to Stage II.
"""
import json
import os
import sys
from pathlib import Path

from januspro.shapes.datasets import look_rows
from januspro.training.recipe import ORDER, Recipe

if len(sys.argv) not in (4, 5, 6):
    sys.exit(__doc__)
run, out, share = Path(sys.argv[1]).resolve(), Path(sys.argv[2]), float(sys.argv[3])
exist = float(sys.argv[4]) if len(sys.argv) >= 5 else 0.0
space = float(sys.argv[5]) if len(sys.argv) == 6 else 0.0
parts = json.loads((run / "recipe.json").read_text())["parts"]
shared = ORDER[1:ORDER.index("stage3")]


def link(src: Path, dest: Path, names, hard: bool = False) -> None:
    """``dest/name`` -> ``src/name`` (a symlink, or a hard link of the file) for each name ``src`` has and
    ``dest`` lacks."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (src / name).exists() and not (dest / name).exists():
            (os.link if hard else os.symlink)((src / name).resolve(), dest / name)


link(run, out, shared)
data = out / "data"
link(run / "data", data, ("text", "classname", "eval"))
src = run / "data" / "t2i"
t2i = data / "t2i"
link(src, t2i, ("images", "t2i.jsonl", "style.json"))
pairs = [p.name for p in src.glob("t2i_synthetic*")]
stage2 = "t2i_stage2" if (src / "t2i_stage2.jsonl").exists() else "t2i_plan"
link(src, t2i, pairs, hard=True)
for f in src.glob(f"{stage2}.*"):  # same lines, same images: the cache key is the VQ and the row count
    dest = t2i / f.name.replace(stage2, "t2i_stage2")
    if not dest.exists():
        os.link(f.resolve(), dest)
und = data / "und"
link(run / "data" / "und", und, ("images", "und.jsonl"))
chats = look_rows(open(run / "data" / "und" / "und_sft.jsonl").readlines(), share, seed=2, exist_share=exist,
                   space_share=space)
(und / "und_sft.jsonl").write_text("".join(chats))
recipe = Recipe(out, progress=False, sft_look_share=share, sft_look_exist_share=exist,
                sft_look_space_share=space)
recipe.stamp_stage_data()
records = {k: v for k, v in parts.items() if k in ("data", *shared)}
records["data"] = {**parts["data"], **recipe.stage_data_settings(),
                   "note": f"{run.name}'s data; Stage III's chats with look turns on a share {share}, of which {exist} "
                           f"next ask about a present object or a near miss and {space} where one object is "
                           "relative to another (look/setup_run.py)"}
(out / "recipe.json").write_text(json.dumps({"parts": records}, indent=2) + "\n")
n_look = sum('"look"' in x for x in chats)
print(f"{out}: {n_look} of {len(chats)} Stage III chats open with a look turn; parts {', '.join(records)}")
