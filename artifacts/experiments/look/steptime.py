"""Seconds per Stage III step on a run's own Stage III data (eager, a short constant-then-decay schedule), to tell
a slower host from heavier data.

    python artifacts/experiments/look/steptime.py RUN STEPS   (repo root; trains into /tmp/steptime_<run>)
"""
import json
import shutil
import sys
import time
from pathlib import Path

from januspro.training.recipe import Recipe
from januspro.training.trainer import make_trainer


def main(run: Path, steps: int) -> None:
    over = {"train.steps": str(steps), "train.compile": "false", "optim.decay_steps": "10"}
    recipe = Recipe(run, progress=False, overrides={"stage3": over})
    out = Path(f"/tmp/steptime_{run.name}")
    shutil.rmtree(out, ignore_errors=True)
    trainer = make_trainer(recipe.run_config("stage3", out))
    t0 = time.time()
    trainer.run()
    seconds = time.time() - t0
    rows = [json.loads(line) for line in open(out / "log.jsonl")][5:]  # past the first steps' warm-up
    tokens = sum(r["tokens_per_s"] for r in rows) / len(rows)
    print(f"{run.name}: {seconds / steps:.3f} s/step (startup included), {tokens:.0f} tokens/s")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), int(sys.argv[2]))
