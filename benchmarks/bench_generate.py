"""Generation speed: januspro vs transformers' JanusForConditionalGeneration, same weights, same inputs, one process.

Measures text-to-image (ms per decode step, images/s for n=1 and n=8 with CFG, VQ decode included) and
understanding (time to first token, tokens/s), and the decode step against the memory-bandwidth roofline
(bytes of weights + KV cache read per step / measured copy bandwidth, and the same against the read bandwidth of a
large sum) and the compute roofline (FLOPs per step /
measured matrix-product throughput: with CFG, n=8 is 16 rows per step, which on a few CPU cores makes the
step compute-bound). Prints a table and writes
benchmarks/RESULTS.md.

    python benchmarks/bench_generate.py                       # tiny + Janus-Pro-1B widths (2 layers), fp32
    python benchmarks/bench_generate.py --dtypes fp32,bf16 --layers 4
    python benchmarks/bench_generate.py --device cuda --dtypes bf16 --layers 24
    python benchmarks/bench_generate.py --configs 1b --tasks understanding --repeat 5
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# time the CPU Linear kernels in this run (the table lists what this run chose), not an earlier run's choice
os.environ.setdefault("JANUSPRO_KERNEL_CACHE", "off")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# before torch, as in a user's program: importing januspro turns on huge pages for large tensors
import januspro  # noqa: E402, F401

# isort: split
import torch  # noqa: E402
from results_file import write_section  # noqa: E402

from januspro.checkpoint import load_model  # noqa: E402
from januspro.eval.geneval import hardware as cpu_hardware  # noqa: E402
from januspro.generation.image import ImageGenParams, decode_codes, generate_codes, unconditional_ids  # noqa: E402
from januspro.generation.text import TextGenParams, generate_token_steps  # noqa: E402
from januspro.models.linear import choices as linear_choices  # noqa: E402
from januspro.processing.processor import ChatBatch  # noqa: E402

BOS, EOS, PAD, BOI, EOI, IMG = 1, 2, 0, 5, 6, 7
TASKS = ("t2i", "understanding")
MODES = ("eager", "compiled")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Spec:
    name: str
    vocab: int
    hidden: int
    ffn: int
    layers: int
    heads: int
    v_hidden: int
    v_layers: int
    v_heads: int
    image: int
    patch: int
    vq_mult: tuple[int, ...]
    vq_ch: int
    codes: int


def specs(layers: int) -> dict[str, Spec]:
    return {
        # tiny widths, but the real 24x24 = 576 image codes per image
        "tiny": Spec("tiny", 512, 64, 160, 2, 4, 32, 2, 2, 96, 4, (1, 2, 2), 32, 64),
        "1b": Spec(f"1B widths, {layers} layers", 102400, 2048, 5632, layers, 16, 1024, layers, 16, 384, 16,
                   (1, 1, 2, 2, 4), 128, 16384),
    }


def build_pair(s: Spec, dtype: torch.dtype, device: str, folder: Path):
    from transformers import (
        JanusConfig,
        JanusForConditionalGeneration,
        JanusVisionConfig,
        JanusVQVAEConfig,
        LlamaConfig,
    )

    torch.manual_seed(0)
    tc = LlamaConfig(vocab_size=s.vocab, hidden_size=s.hidden, intermediate_size=s.ffn, num_hidden_layers=s.layers,
                     num_attention_heads=s.heads, max_position_embeddings=4096, tie_word_embeddings=False)
    grid = s.image // s.patch
    vc = JanusVisionConfig(hidden_size=s.v_hidden, num_hidden_layers=s.v_layers, num_attention_heads=s.v_heads,
                           image_size=s.image, patch_size=s.patch, projection_dim=s.hidden, num_image_tokens=grid * grid)
    qc = JanusVQVAEConfig(num_embeddings=s.codes, base_channels=s.vq_ch, channel_multiplier=list(s.vq_mult),
                          projection_dim=s.hidden, image_token_embed_dim=s.hidden)
    hf = JanusForConditionalGeneration(JanusConfig(text_config=tc, vision_config=vc, vq_config=qc, image_token_id=IMG,
                                                   tie_word_embeddings=False)).eval()
    with torch.no_grad():  # bigger weights so greedy/sampled sequences are not degenerate
        for n, p in hf.named_parameters():
            if p.dim() >= 2 and "norm" not in n:
                p.mul_(5.0)
    gc_ = hf.generation_config
    gc_.bos_token_id, gc_.pad_token_id, gc_.eos_token_id = BOS, PAD, None
    gc_.generation_kwargs = {"boi_token_id": BOI}
    hf.save_pretrained(folder)
    ours = load_model(folder, dtype=dtype, device=device)
    hf = hf.to(device=device, dtype=dtype)
    return hf, ours


def timeit(fn, repeat: int, device: str) -> float:
    """Median wall time of ``fn`` over ``repeat`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bandwidth_gbs(device: str, mb: int = 512) -> float:
    """Copy bandwidth: (read + write) bytes per second of a large tensor copy."""
    x = torch.empty(mb * (1 << 20) // 4, dtype=torch.float32, device=device)
    y = torch.empty_like(x)
    t = timeit(lambda: y.copy_(x), 5, device)
    return 2 * x.numel() * 4 / t / 1e9


def read_bandwidth_gbs(device: str, mb: int = 512) -> float:
    """Read bandwidth: bytes per second of summing a large tensor (only reads, as a decode step's weights)."""
    x = torch.ones(mb * (1 << 20) // 4, dtype=torch.float32, device=device)
    t = timeit(lambda: x.sum(), 5, device)
    return x.numel() * 4 / t / 1e9


def matmul_gflops(device: str, dtype: torch.dtype, size: int = 2048) -> float:
    """Compute throughput of this machine: FLOP/s of a large square matrix product in ``dtype``."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    t = timeit(lambda: torch.mm(a, b), 5, device)
    return 2 * size**3 / t / 1e9


def _step_weights(ours) -> list[torch.nn.Parameter]:
    """The weights one image decode step multiplies by (the code embedding is a row lookup, not a product)."""
    mods = [ours.llm.layers, ours.llm.norm, ours.gen_aligner, ours.gen_head]
    return [p for m in mods for p in m.parameters()]


def step_bytes(ours, rows: int, ctx: int) -> int:
    """Bytes a decode step must read: every weight it touches plus the KV cache up to ``ctx`` (the embedding
    lookup reads ``rows`` rows of its table, not the table)."""
    w = sum(p.numel() * p.element_size() for p in _step_weights(ours))
    w += rows * ours.gen_embed.weight.shape[1] * ours.gen_embed.weight.element_size()
    c = ours.cfg.llm
    kv = 2 * c.num_layers * rows * c.num_kv_heads * ctx * c.head_dim * ours.lm_head.weight.element_size()
    return w + kv


def step_flops(ours, rows: int, ctx: int) -> int:
    """Multiply-add FLOPs of a decode step: ``rows`` vectors through every matrix it touches, plus attention
    (scores and weighted values) over ``ctx`` cached positions in every layer."""
    mat = sum(p.numel() for p in _step_weights(ours) if p.dim() >= 2)
    c = ours.cfg.llm
    attn = 4 * c.num_layers * rows * ctx * c.num_heads * c.head_dim
    return 2 * rows * mat + attn


def roofline(step_s: float, mem_s: float, compute_s: float) -> str:
    """A decode step against both rooflines: the larger bound is what the step cannot beat."""
    bound = "memory" if mem_s >= compute_s else "compute"
    return (f"{max(mem_s, compute_s) / step_s * 100:.0f}% of {bound}-bound (memory {mem_s * 1e3:.2f} ms: "
            f"{mem_s / step_s * 100:.0f}%; compute {compute_s * 1e3:.2f} ms: {compute_s / step_s * 100:.0f}%)")


def bench_config(s: Spec, dtype: torch.dtype, device: str, repeat: int, flops: float, new_tokens: int,
                 modes: list[str], tasks: list[str]) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        hf, ours = build_pair(s, dtype, device, Path(tmp))
    rows = bench_t2i(s, hf, ours, device, repeat, flops, modes) if "t2i" in tasks else []
    if "understanding" in tasks:
        rows.append(bench_understanding(s, hf, ours, device, repeat, new_tokens))
    return rows


def bench_t2i(s: Spec, hf, ours, device: str, repeat: int, flops: float, modes: list[str]) -> list[dict]:
    """Text-to-image rows: n = 1 and n = 8 with CFG, each of our ``modes`` against transformers."""
    dtype = ours.lm_head.weight.dtype
    g = torch.Generator().manual_seed(0)
    prompt = [BOS] + torch.randint(10, min(s.vocab, 30000), (24,), generator=g).tolist() + [BOI]
    num_tokens = ours.cfg.vq.num_tokens
    rows = []
    one = generate_codes(ours, [prompt], None, ImageGenParams(cfg_weight=1.0, temperature=0), PAD)
    for n in (1, 8):
        ids = torch.tensor([prompt], device=device)
        codes = one.repeat(n, 1)
        with torch.inference_mode():  # the n images of a request decoded in one call by each implementation
            t_dec_ours = timeit(lambda codes=codes: decode_codes(ours, codes), repeat, device)
            t_dec_hf = timeit(lambda codes=codes: hf.decode_image_tokens(codes), repeat, device)

        def ours_codes(compile, n=n):
            params = ImageGenParams(cfg_weight=5.0, temperature=1.0, n=n, seed=0, compile=compile)
            return lambda: generate_codes(ours, [prompt], [unconditional_ids(prompt, PAD)], params, PAD,
                                          torch.Generator(device=device).manual_seed(0))

        def hf_codes(ids=ids, n=n):
            torch.manual_seed(0)
            with torch.inference_mode():
                return hf.generate(ids, attention_mask=torch.ones_like(ids), generation_mode="image", do_sample=True,
                                   guidance_scale=5.0, num_return_sequences=n)

        t_hf = timeit(hf_codes, repeat, device)
        print(f"  t2i n={n}: transformers {t_hf / num_tokens * 1e3:.2f} ms/step", flush=True)
        ctx = len(prompt) + num_tokens // 2
        compute_s = step_flops(ours, 2 * n, ctx) / (flops * 1e9)
        for mode in modes:
            t_ours = timeit(ours_codes(mode == "compiled"), repeat, device)
            step_ours = t_ours / num_tokens
            # a shared host's bandwidth moves by 2x within minutes: measure it again right after this row
            bw_row, read_row = bandwidth_gbs(device), read_bandwidth_gbs(device)
            nbytes = step_bytes(ours, 2 * n, ctx)
            mem_s, read_s = nbytes / (bw_row * 1e9), nbytes / (read_row * 1e9)
            print(f"  t2i n={n}: ours {mode} {step_ours * 1e3:.2f} ms/step", flush=True)
            rows.append({
                "config": s.name, "dtype": str(dtype).replace("torch.", ""),
                "task": f"t2i n={n} (cfg, {num_tokens} codes), ours {mode}",
                "ours": f"{step_ours * 1e3:.2f} ms/step, {n / (t_ours + t_dec_ours):.3f} img/s",
                "transformers": f"{t_hf / num_tokens * 1e3:.2f} ms/step, {n / (t_hf + t_dec_hf):.3f} img/s",
                "ratio": f"{(t_hf + t_dec_hf) / (t_ours + t_dec_ours):.2f}x img/s ({t_hf / t_ours:.2f}x steps)",
                "roofline": f"{roofline(step_ours, mem_s, compute_s)} at {bw_row:.0f} GB/s; "
                            f"read-only bound {read_s * 1e3:.2f} ms: {read_s / step_ours * 100:.0f}% at "
                            f"{read_row:.0f} GB/s read",
            })
        gc.collect()
    return rows


def bench_understanding(s: Spec, hf, ours, device: str, repeat: int, new_tokens: int) -> dict:
    """Understanding row: one image + text, greedy; time to first token and tokens/s."""
    dtype = ours.lm_head.weight.dtype
    g = torch.Generator().manual_seed(1)  # its own inputs, the same whether or not the t2i rows ran
    grid = s.image // s.patch
    text_ids = torch.randint(10, min(s.vocab, 30000), (30,), generator=g).tolist()
    u_ids = torch.tensor([[BOS] + text_ids[:10] + [BOI] + [IMG] * grid * grid + [EOI] + text_ids[10:]], device=device)
    mask = torch.ones_like(u_ids)
    pixels = torch.randn(1, 3, s.image, s.image, generator=g).to(device=device, dtype=dtype)
    batch = ChatBatch(u_ids, mask, pixels)

    def ours_text(k):
        def run():
            for _ in generate_token_steps(ours, batch, TextGenParams(max_new_tokens=k), -1, IMG):
                pass
        return run

    def hf_text(k):
        def run():
            with torch.inference_mode():
                hf.generate(input_ids=u_ids, pixel_values=pixels, attention_mask=mask, max_new_tokens=k,
                            min_new_tokens=k, do_sample=False, eos_token_id=None, pad_token_id=PAD)
        return run

    ttft_o, ttft_h = timeit(ours_text(1), repeat, device), timeit(hf_text(1), repeat, device)
    full_o, full_h = timeit(ours_text(new_tokens), repeat, device), timeit(hf_text(new_tokens), repeat, device)
    tps_o = (new_tokens - 1) / max(full_o - ttft_o, 1e-9)
    tps_h = (new_tokens - 1) / max(full_h - ttft_h, 1e-9)
    return {
        "config": s.name, "dtype": str(dtype).replace("torch.", ""),
        "task": f"understanding ({u_ids.shape[1]}-token prompt, {new_tokens} new)",
        "ours": f"TTFT {ttft_o * 1e3:.1f} ms, {tps_o:.1f} tok/s",
        "transformers": f"TTFT {ttft_h * 1e3:.1f} ms, {tps_h:.1f} tok/s",
        "ratio": f"TTFT {ttft_h / ttft_o:.2f}x, tok/s {tps_o / tps_h:.2f}x", "roofline": "",
    }


def hardware(device: str) -> str:
    return torch.cuda.get_device_name(0) if device.startswith("cuda") else cpu_hardware()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--configs", default="tiny,1b", help="comma list of: tiny, 1b")
    ap.add_argument("--layers", type=int, default=2, help="LLM and ViT layers of the 1B-width config")
    ap.add_argument("--dtypes", default="fp32", help="comma list of fp32, bf16, fp16")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--modes", default="eager,compiled",
                    help="our decode-step modes to time: eager, compiled (torch.compile, CUDA graphs on GPU)")
    ap.add_argument("--tasks", default="t2i,understanding",
                    help="comma list of what to time: t2i (image generation), understanding (TTFT, tokens/s)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    args = ap.parse_args()
    tasks = args.tasks.split(",")
    for name, given, known in (("--tasks", tasks, TASKS), ("--modes", args.modes.split(","), MODES),
                               ("--configs", args.configs.split(","), tuple(specs(args.layers))),
                               ("--dtypes", args.dtypes.split(","), tuple(DTYPES))):
        bad = [x for x in given if x not in known]
        if bad:
            ap.error(f"{name}: unknown {', '.join(bad)} (choose from {', '.join(known)})")
    bw, bw_read = bandwidth_gbs(args.device), read_bandwidth_gbs(args.device)
    rows, peaks = [], {}
    for dname in args.dtypes.split(","):
        peaks[dname] = matmul_gflops(args.device, DTYPES[dname])
        for cname in args.configs.split(","):
            s = specs(args.layers)[cname]
            print(f"benchmarking {s.name} {dname} on {args.device} ...", flush=True)
            rows += bench_config(s, DTYPES[dname], args.device, args.repeat, peaks[dname], args.new_tokens,
                                 args.modes.split(","), tasks)
    cols = ["config", "dtype", "task", "ours", "transformers", "ratio", "roofline"]
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    table = head + "".join("| " + " | ".join(r[c] for c in cols) + " |\n" for r in rows)
    hw = hardware(args.device)
    # a run of some tasks only keeps its own section, so it does not replace the full table
    marker = "## bench_generate.py" + ("" if set(tasks) == set(TASKS) else f" --tasks {','.join(tasks)}") + " ("
    text = (f"{marker}{time.strftime('%Y-%m-%d')})\n\nHardware: {hw}; torch {torch.__version__}; "
            f"measured copy bandwidth {bw:.1f} GB/s ((read + written bytes) / time of a 512 MiB copy) and read "
            f"bandwidth {bw_read:.1f} GB/s (a 512 MiB sum) at the start (each t2i row's roofline uses both measured "
            f"right after it); measured matrix-product throughput "
            f"{', '.join(f'{k} {v:.0f} GFLOP/s' for k, v in peaks.items())}. Same random weights and inputs for both implementations, "
            f"one process; median of {args.repeat} runs after a warm-up. img/s = n / (code generation time + the "
            f"time of VQ-decoding the n images in one call). 'ratio' > 1 means januspro is faster. 'ours eager' / "
            f"'ours compiled': our decode step run eagerly or through torch.compile (--compile). "
            f"'roofline': the memory bound (weights + KV cache bytes one decode step must read) / bandwidth and "
            f"the compute bound (its FLOPs: every row through every weight matrix, plus attention over the cache) / "
            f"matrix-product throughput, each as a share of the measured step; the larger bound is the one the "
            f"step cannot beat. The read-only bound is the same bytes at the read bandwidth: a decode step only "
            f"reads its weights, and on hosts where one core cannot keep enough reads in flight a copy (which "
            f"streams reads and writes together) moves more bytes per second than any read-only loop.\n\n{table}")
    picked = linear_choices()
    if picked:  # the CPU Linear kernel each weight shape and row bucket timed fastest on this machine
        text += ("\nCPU Linear kernels chosen by timing (weight out x in, dtype, threads, rows): "
                 + "; ".join(f"{k}: {v}" for k, v in picked.items()) + ".\n")
    print(text)
    write_section(args.out, marker, text)

if __name__ == "__main__":
    main()
