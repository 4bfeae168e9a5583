"""Forward + backward time of candidate decoder shapes (batch 64 x 256 tokens, bf16 autocast, causal mask).

    python artifacts/experiments/depth/step_cost.py   (repo root)
"""
import time
from dataclasses import replace

import torch

from januspro.config import preset
from januspro.models.llm import DecoderLM

torch.set_num_threads(2)
base = preset("shapes").llm
SHAPES = [(6, 256, 8, 704), (8, 256, 8, 704), (10, 192, 6, 528), (12, 192, 6, 528), (12, 256, 8, 704)]
B, T = 64, 256
for layers, width, heads, ffn in SHAPES:
    cfg = replace(base, num_layers=layers, hidden_size=width, num_heads=heads, num_kv_heads=heads,
                  intermediate_size=ffn)
    torch.manual_seed(0)
    model = DecoderLM(cfg)
    head = torch.nn.Linear(width, 512)
    x = torch.randn(B, T, width)
    mask = torch.ones(T, T, dtype=torch.bool).tril().expand(B, 1, T, T)
    times = []
    for _ in range(6):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = head(model(x, mask=mask)).float().logsumexp(-1).mean()
        y.backward()
        times.append(time.perf_counter() - t0)
    n = sum(p.numel() for p in model.layers.parameters())
    print(f"{layers} x {width}, {heads} heads: layers {n / 1e6:.2f} M parameters, {min(times[2:]):.3f} s/step",
          flush=True)
