"""Images per second of a VQ training step (batch 32) and of encoding (batches of 64), fp32 or bf16 autocast,
with or without channels-last memory, on this machine (2 threads).

    python artifacts/experiments/depth/vq_bf16.py   (repo root)
"""
import time

import torch
import torch.nn.functional as F

from januspro.config import preset
from januspro.models.vq import VQModel

torch.set_num_threads(2)
cfg = preset("shapes").vq
torch.manual_seed(0)
x = torch.rand(32, 3, 64, 64) * 2 - 1
big = torch.rand(256, 3, 64, 64) * 2 - 1


def train_step(m, opt, x, bf16):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        rec, q = m(x)
    rec = rec.float()
    loss = (rec - x).abs().mean() + F.mse_loss(rec, x) + q.codebook_loss + q.commit_loss
    opt.zero_grad()
    loss.backward()
    opt.step()


for channels_last in (False, True):
    for bf16 in (False, True):
        torch.manual_seed(0)
        m = VQModel(cfg)
        xx, bb = x, big
        if channels_last:
            m = m.to(memory_format=torch.channels_last)
            xx, bb = (t.contiguous(memory_format=torch.channels_last) for t in (x, big))
        opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
        times = []
        for _ in range(8):
            t0 = time.perf_counter()
            train_step(m, opt, xx, bf16)
            times.append(time.perf_counter() - t0)
        m.eval()
        enc = []
        with torch.inference_mode():
            for _ in range(4):
                t0 = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    for j in range(0, len(bb), 64):
                        m.encode(bb[j:j + 64])
                enc.append(time.perf_counter() - t0)
        print(f"channels_last={channels_last} bf16={bf16}: train {32 / min(times[2:]):.1f} images/s, "
              f"encode {len(bb) / min(enc[1:]):.0f} images/s", flush=True)
