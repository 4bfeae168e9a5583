"""Linear shape / colour probe on frozen understanding-ViT features of single-object scenes.

    python artifacts/experiments/siglip-shape-probe/probe.py [VIT.safetensors | MODEL_DIR]   (repo root; ~2 min)

Without an argument: the whole table for the shipped janus-pro-shapes (its ViT, after the aligner, a random
init, raw pixels). With a ViT state dict (e.g. the output of hardneg_siglip.py) it probes that encoder in the
shipped model's architecture; with a model folder (e.g. a siglip run's OUT/model) it probes that folder's ViT,
rendering the scenes at that ViT's own resolution.
"""
import copy
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from januspro.checkpoint import load_model
from januspro.processing.image import normalise_understanding
from januspro.shapes.render import render
from januspro.shapes.world import COLORS, SHAPES, SceneSpec, sample_scene

N, TRAIN = 3000, 2000
torch.manual_seed(0)
arg = sys.argv[1] if len(sys.argv) > 1 else ""
from_folder = bool(arg) and Path(arg).is_dir()
model = load_model(arg if from_folder else "src/januspro/assets/janus-pro-shapes", dtype="fp32").eval()
res = model.cfg.vision.image_size
rng = np.random.default_rng(0)
scenes = [sample_scene(rng, SceneSpec(n_objects=1), held_out=None) for _ in range(N)]
px = normalise_understanding(torch.from_numpy(np.stack([render(s, res) for s in scenes])).permute(0, 3, 1, 2),
                             model.cfg.vision.image_mean, model.cfg.vision.image_std)
shape_y = torch.tensor([SHAPES.index(s.objects[0].shape) for s in scenes])
colour_y = torch.tensor([list(COLORS).index(s.objects[0].color) for s in scenes])


@torch.no_grad()
def feats(fn) -> torch.Tensor:
    return torch.cat([fn(px[i:i + 500]) for i in range(0, N, 500)])


def probe(x: torch.Tensor, y: torch.Tensor, k: int, steps: int = 400) -> float:
    """Test accuracy of an L2-regularised logistic regression trained on the first TRAIN items."""
    x = x.reshape(len(x), -1).float()
    x = (x - x[:TRAIN].mean(0)) / (x[:TRAIN].std(0) + 1e-5)
    w = torch.zeros(x.shape[1], k, requires_grad=True)
    b = torch.zeros(k, requires_grad=True)
    opt = torch.optim.Adam([w, b], 1e-2)
    for _ in range(steps):
        loss = F.cross_entropy(x[:TRAIN] @ w + b, y[:TRAIN]) + 1e-3 * (w**2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return ((x[TRAIN:] @ w + b).argmax(1) == y[TRAIN:]).float().mean().item()


def report(rows) -> None:
    for name, f in rows:
        print(f"{name:18s} shape {probe(f, shape_y, 4):.3f}  colour {probe(f, colour_y, 6):.3f}", flush=True)


if arg:
    given = model.vision
    if not from_folder:
        from safetensors.torch import load_file

        given = copy.deepcopy(model.vision)
        given.load_state_dict(load_file(arg))
    x = feats(given)
    print(f"ViT at {res} px, patch {model.cfg.vision.patch_size}")
    report([("given mean", x.mean(1)), ("given flat", x)])
    sys.exit(0)
trained = feats(model.vision)
random_vit = copy.deepcopy(model.vision)
for p in random_vit.parameters():
    if p.dim() > 1:
        torch.nn.init.normal_(p, std=0.02)
rand = feats(random_vit)
aligned = feats(lambda p: model.aligner(model.vision(p)))
report([("trained mean", trained.mean(1)), ("trained flat", trained), ("aligner flat", aligned),
        ("random-init mean", rand.mean(1)), ("random-init flat", rand), ("pixels", px)])
