"""Few-row products on CPU: how fast each of januspro's Linear kernels reads a weight, against a plain read.

A decode step multiplies 2 (n=1 with CFG) or 16 rows by every weight, so on CPU its speed is how fast the
product kernel streams the weight from memory. For each weight shape and dtype this times januspro's four
kernels (``packed``: oneDNN's prepacked GEMM, ``linear``: ``F.linear``, ``wmajor``: ``(W @ x.T).T``, fp32 only,
``gemv``: januspro's own C kernel for 1-4 rows, where this machine's compiler builds it) and a plain read of the
weight (``W.sum()``, the speed a perfect product kernel could stream it at), interleaved, median of ``--repeat``,
and reports each as GB/s of weight bytes. Weights smaller than the CPU's last-level cache stay in cache between
repeats, so their GB/s are cache speeds, not memory speeds.

    python benchmarks/bench_kernels.py                              # Janus-Pro-1B shapes, fp32 and bf16, 2 rows
    python benchmarks/bench_kernels.py --rows 16 --dtypes fp32
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402
from results_file import write_section  # noqa: E402

from januspro.models.linear import Linear  # noqa: E402
from januspro.system import cpu_name  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# (out, in) of the Janus-Pro-1B decode-step weights: image head's second layer, fused gate/up, down, q/o
SHAPES_1B = "16384x2048,11264x2048,2048x5632,2048x2048"


def parse_shapes(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        try:
            o, i = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"shape {item!r}: expected OUTxIN, e.g. 2048x5632") from None
        if o < 1 or i < 1:
            raise argparse.ArgumentTypeError(f"shape {item!r}: sizes must be positive")
        out.append((o, i))
    return out


def parse_dtypes(text: str) -> list[str]:
    names = [d for d in text.split(",") if d]
    bad = [d for d in names if d not in DTYPES]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown dtype(s) {bad}; choose from {', '.join(DTYPES)}")
    return names


def measure(out_f: int, in_f: int, dtype: torch.dtype, rows: int, repeat: int) -> dict[str, float]:
    """Median seconds of each kernel (those that apply) and of a plain read, timed interleaved."""
    lin = Linear(in_f, out_f, bias=False).to(dtype).eval()
    x = torch.randn(rows, in_f, dtype=dtype)
    with torch.no_grad():
        fns = {k: (lambda k=k: lin._run(k, x)) for k in lin.candidates(rows)}
        fns["plain read"] = lambda: lin.weight.sum()
        times: dict[str, list[float]] = {k: [] for k in fns}
        for fn in fns.values():  # warm-up: packing, oneDNN primitive creation
            fn()
        for _ in range(repeat):
            for k, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", type=parse_shapes, default=parse_shapes(SHAPES_1B),
                    help=f"comma list of weight shapes OUTxIN (default: the 1B decode weights, {SHAPES_1B})")
    ap.add_argument("--dtypes", type=parse_dtypes, default=parse_dtypes("fp32,bf16"),
                    help="comma list of fp32, bf16 (default: fp32,bf16)")
    ap.add_argument("--rows", type=int, default=2, help="rows of the product (2 = one image with CFG; default 2)")
    ap.add_argument("--repeat", type=int, default=20, help="interleaved timed calls per kernel (default 20)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"), help="results file")
    args = ap.parse_args(argv)
    if args.rows < 1 or args.repeat < 1:
        ap.error("--rows and --repeat must be at least 1")
    kinds = ("packed", "wmajor", "gemv", "linear", "plain read")
    lines = [f"## bench_kernels.py ({time.strftime('%Y-%m-%d')})", "",
             f"{cpu_name()}, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}, torch "
             f"{torch.__version__}. Products of {args.rows} rows with one weight, each kernel and a plain read of the "
             f"weight (`W.sum()`) timed interleaved, median of {args.repeat}; GB/s = weight bytes / time. Weights "
             "that fit the last-level cache show cache speeds.", "",
             "| weight | dtype | MB | " + " | ".join(kinds) + " | best kernel speed / plain read |",
             "|---|---|---|" + "---|" * len(kinds) + "---|"]
    for o, i in args.shapes:
        for name in args.dtypes:
            dtype = DTYPES[name]
            t = measure(o, i, dtype, args.rows, args.repeat)
            mb = o * i * torch.finfo(dtype).bits / 8 / 1e6
            cells = [f"{t[k] * 1e3:.2f} ms ({mb / 1e3 / t[k]:.0f} GB/s)" if k in t else "-" for k in kinds]
            best = min(t[k] for k in kinds[:-1] if k in t)
            row = f"| {o}x{i} | {name} | {mb:.0f} | " + " | ".join(cells) + f" | {t['plain read'] / best:.2f} |"
            print(row, flush=True)
            lines.append(row)
    write_section(args.out, "## bench_kernels.py", "\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
