"""Do a model's understanding features keep colour and shape apart? Linear probes on the ViT tokens (and on the
understanding aligner's outputs) of a model: per patch, a colour probe and a shape probe, trained on patches of
objects of seen colour-shape pairs and tested on patches of seen pairs (fresh scenes) and of the held-out pairs.
If held-out patches are read as well as seen ones, the features are compositional and the held-out failures of the
answers come from the LLM; if not, from the encoder.

    python artifacts/experiments/vit-probe/probe.py MODEL [N_SCENES]   (repo root; default 3000 scenes a set)
"""
import sys

import numpy as np
import torch
from PIL import Image

from januspro.checkpoint import load_model
from januspro.processing.image import preprocess_understanding
from januspro.shapes.render import PATCH_CLASSES, factor_patch_labels, patch_labels, render
from januspro.shapes.world import COLORS, HELD_OUT, SHAPES, sample_scene

N_COLORS = len(COLORS)


def scenes(n: int, seed: int, held: bool):
    """``n`` scenes; with ``held``, each shows at least one held-out pair (otherwise none)."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        s = sample_scene(rng, held_out=None)
        if HELD_OUT.scene_is_clean(s) != held:
            out.append(s)
    return out


@torch.no_grad()
def features(model, batch):
    v = model.cfg.vision
    px = torch.stack([preprocess_understanding(Image.fromarray(render(s, 64)), v.image_size, v.image_mean, v.image_std)
                      for s in batch])
    vit = model.vision(px)  # [B, T, Dv]
    return vit, model.aligner(vit)  # and [B, T, D]


def dataset(model, items):
    feats = {"vit": [], "aligner": []}
    labels = []
    v = model.cfg.vision
    for i in range(0, len(items), 64):
        batch = items[i:i + 64]
        vit, al = features(model, batch)
        feats["vit"].append(vit.flatten(0, 1).float())
        feats["aligner"].append(al.flatten(0, 1).float())
        labels.append(torch.from_numpy(np.stack([patch_labels(s, v.image_size, v.patch_size) for s in batch])).flatten())
    return {k: torch.cat(x) for k, x in feats.items()}, torch.cat(labels)


def split(label: torch.Tensor):
    """(shape index, colour index) of object classes (label 0, the background, is left out by the caller)."""
    shape, colour = factor_patch_labels(label)
    return shape - 1, colour - 1


def train_probe(x, y, classes, steps=300):
    mu, sd = x.mean(0), x.std(0) + 1e-5
    lin = torch.nn.Linear(x.shape[1], classes)
    opt = torch.optim.Adam(lin.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin((x - mu) / sd), y)
        loss.backward()
        opt.step()
    return lambda z: lin((z - mu) / sd).argmax(-1)


def probe_model(model, n: int, layers=("vit", "aligner")) -> dict:
    """Shape and colour accuracy of the probes on seen pairs' and held-out pairs' object patches, per layer."""
    assert PATCH_CLASSES == 1 + len(SHAPES) * N_COLORS
    train_f, train_y = dataset(model, scenes(n, 1, held=False))
    seen_f, seen_y = dataset(model, scenes(n // 3, 2, held=False))
    held_f, held_y = dataset(model, scenes(n // 3, 3, held=True))
    held_pair = torch.tensor([HELD_OUT.pair_held(c, s) for s in SHAPES for c in COLORS])  # by class - 1
    out = {}
    for name in layers:
        obj = train_y > 0
        sh, co = split(train_y[obj])
        shape_p = train_probe(train_f[name][obj], sh, len(SHAPES))
        color_p = train_probe(train_f[name][obj], co, N_COLORS)
        for tag, f, y, pick in (("seen", seen_f, seen_y, lambda y: y > 0),
                                ("heldout", held_f, held_y, lambda y: (y > 0) & held_pair[(y - 1).clamp(min=0)])):
            m = pick(y)
            sh, co = split(y[m])
            ps, pc = shape_p(f[name][m]), color_p(f[name][m])
            out[f"{name}_{tag}"] = {"shape": round(float((ps == sh).float().mean()), 3),
                                    "colour": round(float((pc == co).float().mean()), 3),
                                    "both": round(float(((ps == sh) & (pc == co)).float().mean()), 3),
                                    "patches": int(m.sum())}
    return out


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    torch.manual_seed(0)
    for k, v in probe_model(load_model(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) == 3 else 3000).items():
        print(k, v)
