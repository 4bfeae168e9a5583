"""Can the model learn to answer spatial questions from an inventory at all? A drill: Stage III's settings, but
only look-opened chats cut after their spatial question (look turn, existence question, relation or "where"
question), from a run's Stage III model, for STEPS steps; then probe_space.py on the result.

    python artifacts/experiments/look/space_drill.py RUN OUT STEPS   (repo root; RUN trained with --sft-look-space-share)
"""
import json
import os
import subprocess
import sys
from pathlib import Path

from januspro.training.config import load_run_config
from januspro.training.recipe import Recipe
from januspro.training.trainer import make_trainer

if len(sys.argv) != 4:
    sys.exit(__doc__)
run, out, steps = Path(sys.argv[1]).resolve(), Path(sys.argv[2]), int(sys.argv[3])
und = out / "data"
und.mkdir(parents=True, exist_ok=True)
if not (und / "images").exists():
    os.symlink((run / "data" / "und" / "images").resolve(), und / "images")
kept = []
for line in open(run / "data" / "und" / "und_sft.jsonl"):
    row = json.loads(line)
    kinds = row["kinds"]
    at = next((i for i, k in enumerate(kinds[:3]) if k in ("relation", "where")), None)
    if kinds[:1] != ["look"] or at is None:
        continue
    row["messages"], row["kinds"] = row["messages"][:2 * at + 2], kinds[:at + 1]
    kept.append(json.dumps(row) + "\n")
(und / "und.jsonl").write_text("".join(kept))
print(f"{len(kept)} drill chats")
recipe = Recipe(run, progress=True)
overrides = recipe.run_config_overrides("stage3", out / "stage3") + [
    f"model.init={run / 'stage3' / 'model'}", "model.vision=", f"data.und={und / 'und.jsonl'}", "data.ratio=[1,0,0]",
    f"train.steps={steps}", "optim.decay_steps=0", f"train.save_every={steps}"]
make_trainer(load_run_config(None, overrides)).run()
subprocess.run([sys.executable, str(Path(__file__).with_name("probe_space.py")), str(out / "stage3" / "model"),
                str(out / "probe_space.json")], check=True)
