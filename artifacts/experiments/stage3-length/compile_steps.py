"""Stage III step time with and without ``train.compile`` (every LLM decoder layer through torch.compile), on a
finished run's Stage III model and data, alternating blocks of steps so that a noisy host affects both alike.

    python artifacts/experiments/stage3-length/compile_steps.py RUN [BLOCKS] [STEPS]   (repo root)

Each variant first runs 10 steps (compilation, warm-up), then BLOCKS (default 4) blocks of STEPS (default 25)
steps each; prints the median step time of each variant and their ratio, and the first losses of both (equal
to a few digits: compile changes only rounding).
"""
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from januspro.training.recipe import Recipe
from januspro.training.trainer import make_trainer

if len(sys.argv) not in (2, 3, 4):
    sys.exit(__doc__)
run = Path(sys.argv[1])
blocks = int(sys.argv[2]) if len(sys.argv) > 2 else 4
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 25
torch.set_num_threads(2)
trainers, times, losses = {}, {}, {}
with tempfile.TemporaryDirectory() as tmp:
    for comp in ("false", "true"):
        over = {"model.init": str(run / "stage3" / "model"), "train.steps": str(10 + blocks * steps),
                "optim.decay_steps": "1", "train.save_every": "0", "train.compile": comp}
        trainers[comp] = make_trainer(Recipe(run, overrides={"stage3": over}, progress=False)
                                      .run_config("stage3", Path(tmp) / comp))
        losses[comp] = [round(trainers[comp].train_step().loss, 4) for _ in range(10)]
        times[comp] = []
    for _ in range(blocks):
        for comp, tr in trainers.items():
            for _ in range(steps):
                t0 = time.perf_counter()
                tr.train_step()
                times[comp].append(time.perf_counter() - t0)
eager, compiled = statistics.median(times["false"]), statistics.median(times["true"])
print(f"eager {eager:.3f} s/step, compiled {compiled:.3f} s/step, ratio {eager / compiled:.3f}x "
      f"({blocks} x {steps} steps each)")
print("first losses eager:   ", losses["false"][:5])
print("first losses compiled:", losses["true"][:5])
