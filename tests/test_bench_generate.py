"""benchmarks/bench_generate.py: the roofline arithmetic matches what a decode step really computes."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from januspro.config import preset
from januspro.generation.image import ImageGenParams, generate_codes, unconditional_ids
from januspro.models.janus import JanusModel

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("bench_generate")
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.parametrize("n", [1, 3])
def test_step_flops_equal_counted_flops_of_each_decode_step(bench, monkeypatch, n):
    # F.linear everywhere so that the FLOP counter sees every matrix product (the packed CPU kernel is opaque)
    monkeypatch.setenv("JANUSPRO_CPU_KERNEL", "linear")
    torch.manual_seed(0)
    model = JanusModel(preset("tiny")).eval()
    prompt = [1, 11, 12, 13, 14, 5]
    counter = FlopCounterMode(display=False)
    after_step: list[int] = []
    with counter:
        generate_codes(model, [prompt], [unconditional_ids(prompt, 0)], ImageGenParams(cfg_weight=3.0, n=n, seed=0),
                       0, progress=lambda i, total: after_step.append(counter.get_total_flops()))
    assert len(after_step) == model.cfg.vq.num_tokens > 2  # one call per code
    rows = 2 * n  # conditional + unconditional row per image
    # the work between two progress calls: the image head on step i's output, then the trunk on the new code,
    # attending over the prompt and the codes so far
    for i in range(1, len(after_step)):
        got = after_step[i] - after_step[i - 1]
        assert got == bench.step_flops(model, rows, len(prompt) + i + 1), i
    assert bench.step_flops(model, rows, 10) > bench.step_flops(model, rows, 9) > bench.step_flops(model, 1, 9)


def test_step_bytes_counts_weights_once_and_the_cache_per_row(bench):
    model = JanusModel(preset("tiny")).eval()
    c = model.cfg.llm
    one = bench.step_bytes(model, 2, 100)
    per_slot = 2 * c.num_layers * 2 * c.num_kv_heads * c.head_dim * 4  # K and V, 2 rows, fp32
    assert bench.step_bytes(model, 2, 101) - one == per_slot
    weights = sum(p.numel() for m in (model.llm.layers, model.llm.norm, model.gen_aligner, model.gen_head)
                  for p in m.parameters()) * 4
    assert one == weights + 2 * model.gen_embed.weight.shape[1] * 4 + 100 * per_slot


def test_roofline_names_the_larger_bound(bench):
    assert bench.roofline(0.010, 0.006, 0.002).startswith("60% of memory-bound")
    text = bench.roofline(0.030, 0.008, 0.027)
    assert text.startswith("90% of compute-bound") and "memory 8.00 ms: 27%" in text


def test_matmul_throughput_is_positive_and_finite(bench):
    g = bench.matmul_gflops("cpu", torch.float32, size=128)
    assert 0 < g < 1e6
