"""Stage III of a finished run with another understanding encoder put into its Stage II model.

    python artifacts/experiments/self-rerank/encoder_swap_stage3.py RUN SIGLIP_MODEL OUT   (repo root)

The recipe's Stage III of RUN (its data and settings) with ``model.vision=SIGLIP_MODEL``: RUN's Stage II model
with its ViT weights replaced by SIGLIP_MODEL's (same architecture; e.g. a siglip part trained with another
dense weight by ../siglip-variants/run.py). The understanding aligner and the ViT train in Stage III and adapt
to the new features. Run s31-d4swap was made this way, before the recipe took the swap in as its siglip_sft
part (session 32). Writes OUT/stage3.
"""
import sys
from pathlib import Path

from januspro.training.recipe import Recipe
from januspro.training.trainer import make_trainer

if len(sys.argv) != 4:
    sys.exit(__doc__)
run, siglip, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
recipe = Recipe(run, overrides={"stage3": {"model.vision": str(siglip)}}, progress=False)
trainer = make_trainer(recipe.run_config("stage3", out / "stage3"))
trainer.run()
