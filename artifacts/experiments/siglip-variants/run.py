"""One SigLIP component run of the recipe (its `siglip` part settings) with changes, on a recipe run's data.

    python artifacts/experiments/siglip-variants/run.py RUN_DIR OUT [--res 128 --patch 16] [key=value ...]

RUN_DIR is a `januspro train recipe shapes --out RUN_DIR` folder whose data and tokenizer parts are done.
Extra `key=value` arguments override the run config (e.g. stage.dense_weight=4). With --res other than 64 the
understanding images are rendered again at that resolution (same scenes and captions as the first
`--items` records of RUN_DIR/data/t2i) and the ViT is built at that size and patch (same token count at
128 px / patch 16). Then probe.py (../siglip-shape-probe) on OUT/model measures how much shape it keeps.
"""
import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from januspro.checkpoint import save_model
from januspro.config import preset
from januspro.models.janus import JanusModel
from januspro.shapes.datasets import DataStyle, usable_cpus, write_task
from januspro.training.config import load_run_config
from januspro.training.recipe import Recipe
from januspro.training.trainer import make_trainer

ap = argparse.ArgumentParser()
ap.add_argument("run_dir")
ap.add_argument("out")
ap.add_argument("--res", type=int, default=64)
ap.add_argument("--patch", type=int, default=8)
ap.add_argument("--items", type=int, default=80000, help="records rendered again at --res")
ap.add_argument("overrides", nargs="*")
a = ap.parse_args()
run, out = Path(a.run_dir), Path(a.out)
recipe = Recipe(out=run, progress=False)
ov = [o for o in recipe.run_config_overrides("siglip") if not o.startswith("train.out=")]
ov.append(f"train.out={out}")
if a.res != 64:
    data = out / "data"
    jsonl = data / "t2i.jsonl"
    if not jsonl.is_file():
        t0 = time.time()
        style = DataStyle(**json.loads((run / "recipe.json").read_text())["parts"]["data"]["style"])
        write_task("t2i", data, a.items, seed=0, resolution=a.res, variant="mixed", style=style, workers=usable_cpus())
        print(f"rendered {a.items} images at {a.res} px in {time.time() - t0:.0f} s", flush=True)
    init = out / "init"
    if not init.is_dir():
        torch.manual_seed(0)
        cfg = preset("shapes")
        cfg = replace(cfg, vision=replace(cfg.vision, image_size=a.res, patch_size=a.patch))
        m = JanusModel(cfg)
        m.init_weights_()
        save_model(m, init, tokenizer_dir=run / "tokenizer")
    ov = [o for o in ov if not o.startswith(("data.t2i=", "model.init="))]
    ov += [f"data.t2i={jsonl}", f"model.init={init}"]
ov += a.overrides
print("overrides:", " ".join(ov), flush=True)
t0 = time.time()
trainer = make_trainer(load_run_config(None, ov))
stats = trainer.run()
ev = trainer.evaluate()
record = {"seconds": round(time.time() - t0, 1), "overrides": ov, "final": stats[-1].row() if stats else {},
          "eval": ev}
(out / "result.json").write_text(json.dumps(record, indent=1, default=float) + "\n")
print(json.dumps(record, default=float), flush=True)
