"""SigLIP on shapes-world captions with shape-only hard negatives, then the same linear shape probe.

Every batch holds pairs: a scene and a copy with one object's shape changed (same colours, sizes, places),
each with its own true caption, so colour alone cannot tell the pairs apart. Throwaway experiment script.
    python artifacts/experiments/siglip-shape-probe/hardneg_siglip.py STEPS OUT.safetensors
"""
import dataclasses
import sys
import time

import numpy as np
import torch
from safetensors.torch import save_file

from januspro.checkpoint import load_model
from januspro.models.siglip import SigLIPViT
from januspro.processing.tokenizer import JanusTokenizer
from januspro.shapes.language import caption
from januspro.shapes.render import render
from januspro.shapes.world import SHAPES, sample_scene
from januspro.training.components import SigLIPHeads, sigmoid_loss

steps, out = int(sys.argv[1]), sys.argv[2]
torch.manual_seed(0)
asset = "src/januspro/assets/janus-pro-shapes"
cfg = load_model(asset).cfg.vision
tok = JanusTokenizer.from_dir(asset)
vit = SigLIPViT(cfg)
for p in vit.parameters():
    if p.dim() > 1:
        torch.nn.init.normal_(p, std=0.02)
heads = SigLIPHeads(cfg.hidden_size, tok.vocab_size)
params = list(vit.parameters()) + list(heads.parameters())
opt = torch.optim.AdamW(params, lr=5e-4, betas=(0.9, 0.95), weight_decay=0.0)
rng = np.random.default_rng(0)


def pair():
    s = sample_scene(rng)
    k = int(rng.integers(len(s.objects)))
    other = str(rng.choice([x for x in SHAPES if x != s.objects[k].shape]))
    objs = list(s.objects)
    objs[k] = dataclasses.replace(objs[k], shape=other)
    return [s, dataclasses.replace(s, objects=tuple(objs))]


def batch(n):
    scenes = [x for _ in range(n // 2) for x in pair()]
    px = torch.from_numpy(np.stack([render(s) for s in scenes])).permute(0, 3, 1, 2).float() / 255
    caps = [caption(s, rng) for s in scenes]
    ids = [tok.encode(c, add_bos=False)[:64] for c in caps]
    t = max(map(len, ids))
    idt = torch.full((n, t), tok.pad_id)
    mask = torch.zeros(n, t, dtype=torch.bool)
    for i, r in enumerate(ids):
        idt[i, :len(r)] = torch.tensor(r)
        mask[i, :len(r)] = True
    return (px - 0.5) / 0.5, idt, mask


t0 = time.time()
for step in range(steps):
    lr = 5e-4 * min(1.0, (step + 1) / 50)
    for g in opt.param_groups:
        g["lr"] = lr
    px, ids, mask = batch(64)
    img = heads.image_proj(vit(px).mean(1))
    loss = sigmoid_loss(img, heads.text(ids, mask), heads.log_t, heads.bias)
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    if step % 50 == 0 or step == steps - 1:
        print(f"step {step} loss {loss.item():.3f} {time.time() - t0:.0f}s", flush=True)
save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, out)
