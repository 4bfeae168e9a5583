"""Linear probes: do the trunk's hidden states at image positions know the row and column of the next code?

    python artifacts/experiments/gen-limits/column_probe.py MODEL   (repo root)

300 random scenes with raster-order captions, teacher forced; the output of every decoder layer at the 64
positions that predict image codes 0..63. A logistic regression per layer (LBFGS, 200 scenes to fit, 100 to
test) predicts the next code's column (8 classes) and row (8 classes). 0.125 is chance.
"""
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from januspro.checkpoint import load_processor
from januspro.processing.image import normalise_generation
from januspro.shapes.language import caption
from januspro.shapes.render import render
from januspro.shapes.world import sample_scene
from januspro.training.data import encode_codes
from januspro.training.shapes_eval import load_shapes_model

SCENES, FIT = 300, 200
torch.set_num_threads(2)
model = load_shapes_model(Path(sys.argv[1])).eval()
proc = load_processor(model)
rng = np.random.default_rng(5)
scenes = [sample_scene(rng) for _ in range(SCENES)]
pixels = torch.from_numpy(np.stack([render(s) for s in scenes])).permute(0, 3, 1, 2).float()
codes = torch.as_tensor(encode_codes(model.vq, normalise_generation(pixels)))
outputs: dict[int, list[torch.Tensor]] = {}
hooks = [layer.register_forward_hook(lambda m, i, o, k=k: outputs.setdefault(k, []).append(o[0]))
         for k, layer in enumerate(model.llm.layers)]
with torch.no_grad():
    for scene, c in zip(scenes, codes, strict=True):
        ids = proc.encode_generation_prompt(caption(scene, rng, order="raster"))
        emb = torch.cat([model.llm.embed_tokens(torch.tensor(ids))[None], model.embed_image_codes(c[None, :-1])], 1)
        model(emb, torch.arange(emb.shape[1])[None])
        for k in outputs:  # keep the positions that predict codes 0..63
            outputs[k][-1] = outputs[k][-1][len(ids) - 1:]
for h in hooks:
    h.remove()
index = torch.arange(64).repeat(SCENES)
targets = {"column": index % 8, "row": index // 8}
n_fit = FIT * 64


def probe(x: torch.Tensor, y: torch.Tensor) -> float:
    w = torch.zeros(x.shape[1], 8, requires_grad=True)
    b = torch.zeros(8, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x[:n_fit] @ w + b, y[:n_fit]) + 1e-4 * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return ((x[n_fit:] @ w + b).argmax(-1) == y[n_fit:]).float().mean().item()


for k in sorted(outputs):
    x = torch.cat(outputs[k]).float()
    x = (x - x[:n_fit].mean(0)) / (x[:n_fit].std(0) + 1e-6)
    print(f"layer {k}: " + "  ".join(f"{name} {probe(x, y):.3f}" for name, y in targets.items()), flush=True)
