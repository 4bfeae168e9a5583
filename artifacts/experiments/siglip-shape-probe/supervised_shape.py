"""Upper bound: can the shapes ViT learn shape at all? Train it from random init with a linear head on
4-way shape classification of single-object scenes, then report held-out accuracy. Throwaway experiment.
    python artifacts/experiments/siglip-shape-probe/supervised_shape.py STEPS [POOL=mean|flat] [PATCH] (env LR, default 5e-4; env RES renders
at that resolution and sets the ViT's image size to it, patch = RES / 8 unless PATCH is given)
"""
import dataclasses
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from januspro.checkpoint import load_model
from januspro.models.siglip import SigLIPViT
from januspro.shapes.render import render
from januspro.shapes.world import SHAPES, SceneSpec, sample_scene

LR = float(os.environ.get("LR", "5e-4"))
steps, pool = int(sys.argv[1]), (sys.argv[2] if len(sys.argv) > 2 else "mean")
torch.manual_seed(0)
cfg = load_model("src/januspro/assets/janus-pro-shapes").cfg.vision
RES = int(os.environ.get("RES", cfg.image_size))
cfg = dataclasses.replace(cfg, image_size=RES, patch_size=int(sys.argv[3]) if len(sys.argv) > 3 else RES // 8)
vit = SigLIPViT(cfg)
for p in vit.parameters():
    if p.dim() > 1:
        torch.nn.init.normal_(p, std=0.02)
width = cfg.hidden_size * (cfg.image_size // cfg.patch_size) ** 2 if pool == "flat" else cfg.hidden_size
head = torch.nn.Linear(width, len(SHAPES))
params = list(vit.parameters()) + list(head.parameters())
opt = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.95), weight_decay=0.0)
rng = np.random.default_rng(0)


def batch(n):
    scenes = [sample_scene(rng, SceneSpec(n_objects=1), held_out=None) for _ in range(n)]
    px = torch.from_numpy(np.stack([render(s, RES) for s in scenes])).permute(0, 3, 1, 2).float() / 255
    return (px - 0.5) / 0.5, torch.tensor([SHAPES.index(s.objects[0].shape) for s in scenes])


def logits(px):
    h = vit(px)
    return head(h.flatten(1) if pool == "flat" else h.mean(1))


test_x, test_y = batch(1000)
t0 = time.time()
for step in range(steps):
    for g in opt.param_groups:
        g["lr"] = LR * min(1.0, (step + 1) / 50)
    px, y = batch(64)
    loss = F.cross_entropy(logits(px), y)
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    if step % 100 == 0 or step == steps - 1:
        with torch.no_grad():
            acc = (logits(test_x).argmax(1) == test_y).float().mean().item()
        print(f"step {step} loss {loss.item():.3f} test_acc {acc:.3f} {time.time() - t0:.0f}s", flush=True)
