"""The understanding encoder's dense loss with pair labels (one class per shape-colour pair, the recipe's),
factored labels (shape and colour by two classifiers), and factored labels with 16 or 64 greyscale copies a step for
the shape classifier (stage.dense_grey): the recipe's siglip_sft part trained each way from scratch on the recipe's first
80,000 text-to-image records, then probe.py's linear probes on each ViT's tokens.

    python artifacts/experiments/vit-probe/run.py OUT [STEPS]   (repo root; default: the part's 1200 steps)
"""
import json
import sys
from pathlib import Path

import torch

from januspro.checkpoint import load_model
from januspro.shapes.datasets import usable_cpus, write_task
from januspro.shapes.tokenizer import build_shapes_tokenizer
from januspro.training.config import load_run_config
from januspro.training.recipe import Recipe
from januspro.training.trainer import make_trainer

sys.path.insert(0, str(Path(__file__).parent))
from probe import probe_model  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    recipe = Recipe(out, progress=True)
    t2i = recipe.data / "t2i" / "t2i.jsonl"
    if not t2i.is_file():
        write_task("t2i", t2i.parent, 80000, seed=0, variant="mixed", style=recipe.style, workers=usable_cpus())
    if not (recipe.tok / "tokenizer.json").is_file():
        build_shapes_tokenizer(recipe.tok, n=6000)
    results = {}
    for labels, grey in (("pair", 0), ("factored", 0), ("factored", 16), ("factored", 64)):
        name = f"{labels}-grey{grey}" if grey else labels
        run = out / f"siglip_sft-{name}"
        if not (run / "model" / "config.json").is_file():
            overrides = recipe.run_config_overrides("siglip_sft", run) + [f"stage.dense_labels={labels}",
                                                                         f"stage.dense_grey={grey}"]
            if len(sys.argv) == 3:
                overrides.append(f"train.steps={sys.argv[2]}")
            trainer = make_trainer(load_run_config(None, overrides))
            trainer.run()
            results[f"{name}_eval"] = trainer.evaluate()
        torch.manual_seed(0)
        results[name] = probe_model(load_model(run / "model"), 1500, layers=("vit",))
        print(name, results[name], flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
