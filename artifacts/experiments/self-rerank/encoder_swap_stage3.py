"""Stage III of a finished run with another understanding encoder put into its Stage II model.

    python artifacts/experiments/self-rerank/encoder_swap_stage3.py RUN SIGLIP_MODEL OUT   (repo root)

RUN's Stage II model with its ViT weights replaced by SIGLIP_MODEL's (same architecture; e.g. a siglip part
trained with another dense weight by ../siglip-variants/run.py), then the recipe's Stage III of RUN (its data,
settings; the understanding aligner and the ViT train in Stage III and adapt to the new features). A probe of
what a judge with another encoder can do, not a recipe: the encoder changes after Stage II.
Writes OUT/init and OUT/stage3.
"""
import sys
from pathlib import Path

from januspro.checkpoint import load_model, save_model
from januspro.training.recipe import Recipe
from januspro.training.trainer import make_trainer

if len(sys.argv) != 4:
    sys.exit(__doc__)
run, siglip, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
init = out / "init"
if not init.is_dir():
    model = load_model(run / "stage2" / "model", dtype="fp32")
    vit = load_model(siglip, dtype="fp32")
    if vit.cfg.vision != model.cfg.vision:
        sys.exit(f"the encoders differ in architecture: {vit.cfg.vision} vs {model.cfg.vision}")
    model.vision.load_state_dict(vit.vision.state_dict())
    save_model(model, init, tokenizer_dir=run / "stage2" / "model")
recipe = Recipe(run, overrides={"stage3": {"model.init": str(init)}}, progress=False)
trainer = make_trainer(recipe.run_config("stage3", out / "stage3"))
trainer.run()
