"""Stage III with "Does the image show <prompt>?" turns, from a finished run's Stage II model.

    python artifacts/experiments/match-judge/match_stage3.py RUN SHARE OUT   (repo root)

What the recipe does with ``--sft-match-share SHARE``, for a run whose data part ran before that option existed:
writes RUN/data/und/und_sft.jsonl (``januspro.shapes.datasets.match_rows``: RUN's understanding chats, a share
SHARE of them opened by a judge turn about the same image, a GenEval-style prompt true or false by GenEval's
rule, answered yes or no), then trains the recipe's Stage III of RUN on it into OUT/stage3 (RUN's Stage II model,
its Stage III encoder, text-to-image and text data).

Run s33-match was made by the first version of this script, which wrote the same lines to OUT/data/und/und.jsonl
(checked byte-identical) and pointed Stage III at them.
"""
import sys
from pathlib import Path

from januspro.shapes.datasets import match_rows
from januspro.training.recipe import Recipe
from januspro.training.trainer import make_trainer

if len(sys.argv) != 4:
    sys.exit(__doc__)
run, share, out = Path(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
recipe = Recipe(run, progress=False, sft_match_share=share)
und = recipe.data / "und"
(und / "und_sft.tmp").write_text("".join(match_rows(und / "und.jsonl", share)))
(und / "und_sft.tmp").replace(und / "und_sft.jsonl")
make_trainer(recipe.run_config("stage3", out / "stage3")).run()
