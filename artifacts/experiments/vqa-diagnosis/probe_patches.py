"""Does each ViT token say what is under it? A linear probe of shape and colour on the tokens of object patches
in multi-object scenes (the local information VQA needs to answer "what shape is the red object?").

    python artifacts/experiments/vqa-diagnosis/probe_patches.py [MODEL_DIR ...]   (repo root; ~1 min per model)

Scenes of 3-4 objects (seed 4000); every token whose patch shows an object (januspro.shapes.render.patch_labels)
is one example; train on the tokens of the first 1,500 scenes, test on those of the other 500. "object-mean":
one example per object (the mean of the tokens that show it). Also probes the same ViT with random weights and
the raw pixels of each patch.
"""
import copy
import sys

import numpy as np
import torch
import torch.nn.functional as F

from januspro.checkpoint import load_model
from januspro.processing.image import normalise_understanding
from januspro.shapes.render import PATCH_CLASSES, patch_labels, render
from januspro.shapes.world import COLORS, SHAPES, SceneSpec, sample_scene

N, TRAIN = 2000, 1500


def probe(xtr, ytr, xte, yte, k, steps=300):
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-5
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    w = torch.zeros(xtr.shape[1], k, requires_grad=True)
    b = torch.zeros(k, requires_grad=True)
    opt = torch.optim.Adam([w, b], 1e-2)
    for _ in range(steps):
        loss = F.cross_entropy(xtr @ w + b, ytr) + 1e-4 * (w**2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return ((xte @ w + b).argmax(1) == yte).float().mean().item()


def main(folders):
    torch.manual_seed(0)
    rng = np.random.default_rng(4000)
    scenes = [sample_scene(rng, SceneSpec(n_objects=int(rng.integers(3, 5))), held_out=None) for _ in range(N)]
    first = load_model(folders[0], dtype="fp32").eval()
    v = first.cfg.vision
    raw = torch.from_numpy(np.stack([render(s, v.image_size) for s in scenes])).permute(0, 3, 1, 2)
    px = normalise_understanding(raw, v.image_mean, v.image_std)
    labels = torch.from_numpy(np.stack([patch_labels(s, v.image_size, v.patch_size) for s in scenes]))
    assert PATCH_CLASSES == 1 + len(SHAPES) * len(COLORS)
    g = v.image_size // v.patch_size
    patches = px.reshape(N, 3, g, v.patch_size, g, v.patch_size).permute(0, 2, 4, 1, 3, 5).reshape(N, g * g, -1)

    obj = labels > 0
    tr = torch.zeros_like(obj)
    tr[:TRAIN] = True
    cls = labels - 1  # class = shape * len(COLORS) + colour (render.patch_labels' numbering)
    shape_y, colour_y = cls // len(COLORS), cls % len(COLORS)
    a, b = obj & tr, obj & ~tr
    # one example per object class in a scene: (scene, class) pairs, their shape label and split
    objects = [(i, k) for i in range(N) for k in labels[i].unique().tolist() if k > 0]
    obj_y = torch.tensor([(k - 1) // len(COLORS) for _, k in objects])
    obj_tr = torch.tensor([i < TRAIN for i, _ in objects])

    def table(name, tokens):
        s = probe(tokens[a], shape_y[a], tokens[b], shape_y[b], len(SHAPES))
        c = probe(tokens[a], colour_y[a], tokens[b], colour_y[b], len(COLORS))
        x = torch.stack([tokens[i][labels[i] == k].mean(0) for i, k in objects])  # mean of the tokens showing it
        so = probe(x[obj_tr], obj_y[obj_tr], x[~obj_tr], obj_y[~obj_tr], len(SHAPES))
        print(f"| {name} | {s:.3f} | {c:.3f} | {so:.3f} | {int(a.sum())} / {int(b.sum())} |", flush=True)

    print("| features | token shape acc (4-way) | token colour acc (6-way) | object-mean shape acc | "
          "object tokens train / test |\n|---|---|---|---|---|")

    @torch.no_grad()
    def tokens(vit):
        return torch.cat([vit(px[i:i + 250]) for i in range(0, N, 250)])

    for k, folder in enumerate(folders):
        m = first if k == 0 else load_model(folder, dtype="fp32").eval()
        table(folder, tokens(m.vision))
    rand = copy.deepcopy(first.vision)
    for p in rand.parameters():
        if p.dim() > 1:
            torch.nn.init.normal_(p, std=0.02)
    table("random-init ViT", tokens(rand))
    table("raw patch pixels", patches)


if __name__ == "__main__":
    main(sys.argv[1:] or ["src/januspro/assets/janus-pro-shapes"])
