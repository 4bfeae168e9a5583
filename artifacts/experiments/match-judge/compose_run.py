"""A run folder whose Stage III was trained again with judge turns: RUN's parts, STAGE3's Stage III.

    python artifacts/experiments/match-judge/compose_run.py RUN STAGE3 SHARE OUT   (repo root)

RUN is a finished recipe run whose data part predates ``--sft-match-share``; STAGE3 holds ``stage3/`` trained by
``match_stage3.py RUN SHARE STAGE3`` (it wrote RUN/data/und/und_sft.jsonl, so RUN's data folder is what the
recipe with ``--sft-match-share SHARE`` would have written). OUT gets links to RUN's part folders and data,
STAGE3's ``stage3/``, and a recipe.json with RUN's records but these two:
- data: ``sft_match_share`` SHARE, and a note that und_sft.jsonl was written after the run;
- stage3: STAGE3's steps, schedule and last logged numbers; its wall time is the time from the moment its chats
  were written (und_sft.jsonl, or STAGE3/data/und/und.jsonl where the first version of match_stage3.py put
  them) to the last line of its log (match_stage3.py starts training right after).
Then ``januspro train recipe shapes --out OUT --sft-match-share SHARE`` runs the evaluation and packages it.
"""
import json
import os
import sys
from pathlib import Path

from januspro.training.config import describe_schedule
from januspro.training.recipe import ORDER, Recipe

if len(sys.argv) != 5:
    sys.exit(__doc__)
run, stage3, share, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve(), float(sys.argv[3]), Path(sys.argv[4])
out.mkdir(parents=True, exist_ok=True)
parts = json.loads((run / "recipe.json").read_text())["parts"]
for name in ("data", *(p for p in ORDER if (run / p).is_dir() and p not in ("stage3", "eval", "package"))):
    if not (out / name).exists():
        os.symlink(run / name, out / name)
if not (out / "stage3").exists():
    os.symlink(stage3 / "stage3", out / "stage3")
first = stage3 / "data" / "und" / "und.jsonl"
start = (first if first.is_file() else run / "data" / "und" / "und_sft.jsonl").stat().st_mtime
log = stage3 / "stage3" / "log.jsonl"
last = json.loads(log.read_text().splitlines()[-1])
cfg = Recipe(out, progress=False, sft_match_share=share).run_config("stage3")
records = {k: v for k, v in parts.items() if k not in ("eval", "package")}
records["data"] = {**parts["data"], "sft_match_share": share,
                   "note": f"und_sft.jsonl written after {run.name} (match_stage3.py)"}
records["stage3"] = {"seconds": round(log.stat().st_mtime - start, 1), "steps": int(last["step"]),
                     "lr": describe_schedule(cfg.optim), "final": {k: round(float(v), 4) for k, v in last.items()},
                     "note": f"trained again in {stage3.name} on chats with judge turns"}
(out / "recipe.json").write_text(json.dumps({"parts": records}, indent=2) + "\n")
print(json.dumps(records["stage3"]))
