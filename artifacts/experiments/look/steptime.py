"""Seconds per Stage III step on a run's own Stage III data (eager, a short constant-then-decay schedule), to tell
a slower host from heavier data.

    python artifacts/experiments/look/steptime.py RUN STEPS   (repo root; writes /tmp/probe/st_<run>)
"""
import json, sys, time
from pathlib import Path
from januspro.training.recipe import Recipe
from januspro.training.trainer import make_trainer
run = Path(sys.argv[1]); steps = int(sys.argv[2])
r = Recipe(run, progress=False, overrides={"stage3": {"train.steps": str(steps), "train.compile": "false", "optim.decay_steps": "10"}})
out = Path("/tmp/probe/st_" + run.name)
import shutil; shutil.rmtree(out, ignore_errors=True)
cfg = r.run_config("stage3", out)
t = make_trainer(cfg); t0 = time.time(); stats = t.run(); dt = time.time() - t0
rows = [json.loads(l) for l in open(out / "log.jsonl")]
print(run.name, f"{dt / steps:.3f} s/step", "tokens/s", round(sum(x["tokens_per_s"] for x in rows[5:]) / len(rows[5:])))
