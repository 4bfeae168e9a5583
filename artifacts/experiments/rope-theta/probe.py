"""The shapes recipe's text, assemble, Stage I and the first STEPS of Stage II with another RoPE base.

    python artifacts/experiments/rope-theta/probe.py RUN THETA STEPS OUT   (repo root)

RUN is a finished recipe run whose data, tokenizer, VQ and SigLIP records (and folders) are reused (hard links);
OUT gets the LLM parts trained again with ``rope_theta=THETA`` (the text part starts from OUT/arch.json, the
shapes preset with that one field changed; the assembled model takes the text part's architecture), with the
recipe's settings otherwise, Stage II cut to STEPS steps.
"""
import json
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from januspro.config import preset
from januspro.training.recipe import Recipe

if len(sys.argv) != 5:
    sys.exit(__doc__)
run, theta, steps, out = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
out.mkdir(parents=True, exist_ok=True)
reused = ("data", "tokenizer", "vq", "vq_polish", "siglip")
parts = json.loads((run / "recipe.json").read_text())["parts"]
for p in ("data", "tokenizer", "siglip"):
    if not (out / p).exists():
        shutil.copytree(run / p, out / p, copy_function=os.link)  # hard links: no second copy on disk
(out / "recipe.json").write_text(json.dumps({"parts": {p: parts[p] for p in reused}}, indent=2))
vq = parts["vq"].get("reused", "")
cfg = preset("shapes")
(out / "arch.json").write_text(json.dumps(replace(cfg, llm=replace(cfg.llm, rope_theta=theta)).to_dict(), indent=2))
recipe = Recipe(out, overrides={"text": {"model.init": str(out / "arch.json")}, "stage2": {"train.steps": steps}},
                vq=vq, progress=False)
recipe.run(until="stage2")
