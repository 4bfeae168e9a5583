"""shapes-GenEval of one model under several sampling settings (4 images a prompt, seed 0).

    python artifacts/experiments/gen-limits/cfg_sweep.py MODEL METADATA OUT SETTING...   (repo root)

A SETTING is comma-separated ImageGenParams fields, e.g. ``cfg_weight=2,temperature=0.7,cfg_end=1``.
"""
import sys
from pathlib import Path

import torch

from januspro.checkpoint import load_processor
from januspro.eval.geneval import run_geneval
from januspro.generation.image import ImageGenParams
from januspro.training.shapes_eval import load_shapes_model

torch.set_num_threads(2)
model = load_shapes_model(Path(sys.argv[1])).eval()
proc = load_processor(model)
meta, out = sys.argv[2], Path(sys.argv[3])
for setting in sys.argv[4:]:
    fields = {k: (int(v) if k == "top_k" else float(v)) for k, v in (kv.split("=") for kv in setting.split(","))}
    params = ImageGenParams(n=4, seed=0, **fields)
    res = run_geneval(model, proc, meta, out / setting.replace(",", "_").replace("=", ""), params, scorer="shapes",
                      batch_size=16)
    s = res["scores"]
    print(setting, round(s["overall"], 3), {t: round(v, 2) for t, v in s["per_tag"].items()}, flush=True)
