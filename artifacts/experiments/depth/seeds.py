"""shapes-GenEval of several model folders over several sampling seeds (same prompts, same settings), to tell
a difference between two trained models from the noise of sampling.

    python artifacts/experiments/depth/seeds.py SUITES OUT SEEDS MODEL...   (repo root; SUITES: RUN/data/eval)

SEEDS is a count (seeds 0..SEEDS-1); the sampling is the recipe's usual choice, cfg 3 / temperature 0.7.
Writes OUT/seeds.json and prints one line per model: the mean and spread of the overall score and the mean of
each category.
"""
import dataclasses
import json
import statistics
import sys
from pathlib import Path

import torch

from januspro.checkpoint import load_processor
from januspro.eval.geneval import run_geneval
from januspro.generation.image import ImageGenParams
from januspro.training.shapes_eval import EVAL_PROMPT_BATCH, load_shapes_model

torch.set_num_threads(2)
if len(sys.argv) < 5:
    sys.exit(__doc__)
suites, out, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
result = {}
for name in sys.argv[4:]:
    model = load_shapes_model(Path(name))
    processor = load_processor(model)
    runs = []
    for seed in range(n):
        params = ImageGenParams(cfg_weight=3.0, temperature=0.7, n=4, seed=seed)
        ge = run_geneval(model, processor, suites / "geneval" / "evaluation_metadata.jsonl",
                         out / f"model{len(result)}" / f"seed{seed}", params, scorer="shapes", batch_size=EVAL_PROMPT_BATCH)
        runs.append(ge["scores"])
    overall = [r["overall"] for r in runs]
    tags = {t: statistics.mean(r["per_tag"][t] for r in runs) for t in runs[0]["per_tag"]}
    result[name] = {"overall": overall, "mean": statistics.mean(overall), "stdev": statistics.stdev(overall),
                    "per_tag_mean": tags, "sampling": dataclasses.asdict(params)}
    print(name, f"{statistics.mean(overall):.3f} +- {statistics.stdev(overall):.3f}",
          {t: round(v, 2) for t, v in tags.items()}, flush=True)
out.mkdir(parents=True, exist_ok=True)
(out / "seeds.json").write_text(json.dumps(result, indent=1) + "\n")
