"""Training-step speed of the shapes model: januspro's attention (fp32 on CPU while training in bf16) against
plain ``F.scaled_dot_product_attention`` in bf16, on the same packed batches, in the same process.

    python benchmarks/bench_train.py [--stages stage2,stage3] [--reps 4] [--out benchmarks/RESULTS.md]

Builds a small shapes-world dataset in a temporary folder, then for each recipe stage (its real ratio,
batch and packing length, starting from the shipped janus-pro-shapes weights) times forward + backward of one
fixed packed batch with each attention variant, interleaved so that a noisy host affects both alike. It
reports the minimum step time and the attention operators' share of it (torch profiler, forward and backward).
"""

# isort: split
import januspro  # noqa: F401  (before torch: its CPU allocator settings)

# isort: split
import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from results_file import write_section
from torch.profiler import ProfilerActivity, profile

from januspro.models import llm, siglip
from januspro.models.attention import sdpa
from januspro.system import cpu_name
from januspro.training.config import load_run_config
from januspro.training.packing import pack
from januspro.training.recipe import DATA_SIZES, Recipe
from januspro.training.trainer import Trainer

MODULES = (llm, siglip)  # the attention a training step runs (the VQ only encodes the data, once)
VARIANTS = {"plain SDPA": F.scaled_dot_product_attention, "januspro sdpa": sdpa}


def use(fn) -> None:
    for m in MODULES:
        m.sdpa = fn  # type: ignore[attr-defined]


def trainer_for(recipe: Recipe, stage: str) -> Trainer:
    """The recipe's own run config for ``stage``, started from the shipped weights instead of the part before."""
    model = Path(januspro.__file__).parent / "assets" / "janus-pro-shapes"
    keep = [o for o in recipe.run_config_overrides(stage) if not o.startswith("model.")]
    return Trainer(load_run_config(None, [*keep, f"model.init={model}"]))


def step_fn(trainer: Trainer):
    mc = trainer.model.cfg
    batch = pack(trainer.step_samples(), trainer.cfg.data.pack_length, trainer.tokenizer.pad_id,
                 (3, mc.vision.image_size, mc.vision.image_size), trainer.task_weights)

    def step() -> None:
        trainer.model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=trainer.use_bf16):
            total, _ = trainer.loss_module(batch, 1000.0)
        total.backward()

    return step, batch


def measure(step, reps: int, inner: int) -> dict[str, dict[str, float]]:
    times: dict[str, list[float]] = {k: [] for k in VARIANTS}
    attn: dict[str, list[float]] = {k: [] for k in VARIANTS}
    for _ in range(reps):
        for name, fn in VARIANTS.items():
            use(fn)
            step()
            for _ in range(inner):
                t0 = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - t0)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                step()
            ev = prof.key_averages()
            attn[name].append(sum(e.self_cpu_time_total for e in ev if "scaled_dot_product" in e.key) / 1e3)
    use(sdpa)
    return {k: {"step_ms": 1e3 * min(times[k]), "attn_ms": min(attn[k])} for k in VARIANTS}


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stages", default="stage2,stage3", help="recipe stages to time (comma-separated)")
    ap.add_argument("--reps", type=positive, default=4, help="interleaved repetitions per variant (default 4)")
    ap.add_argument("--inner", type=positive, default=3, help="timed steps per repetition (default 3)")
    ap.add_argument("--items", type=positive, default=600, help="dataset items per task (default 600)")
    ap.add_argument("--out", default=str(Path(__file__).with_name("RESULTS.md")), help="results file")
    args = ap.parse_args()
    stages = [s for s in args.stages.split(",") if s]
    bad = [s for s in stages if s not in ("stage2", "stage3", "text")]
    if bad:
        ap.error(f"unknown stage(s) {bad}; choose from stage2, stage3, text")
    rows = []
    bf16 = False
    with tempfile.TemporaryDirectory() as tmp:
        print(f"writing the recipe's data at {args.items} items per task ...", flush=True)
        recipe = Recipe(out=Path(tmp), data_scale=args.items / DATA_SIZES["und"], eval_items=1, progress=False)
        recipe.part_data()
        for stage in stages:
            trainer = trainer_for(recipe, stage)
            step, batch = step_fn(trainer)
            bf16 = trainer.use_bf16
            r = measure(step, args.reps, args.inner)
            base, ours = r["plain SDPA"], r["januspro sdpa"]
            shape = f"{tuple(batch.ids.shape)}, {batch.pixel_values.shape[0]} images"
            rows.append((stage, shape, base, ours))
            print(f"{stage}: plain {base['step_ms']:.0f} ms (attention {base['attn_ms']:.0f}), "
                  f"januspro {ours['step_ms']:.0f} ms (attention {ours['attn_ms']:.0f})", flush=True)
    lines = [
        f"## bench_train.py ({time.strftime('%Y-%m-%d')})", "",
        f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}, train.dtype=auto "
        f"(bf16 autocast {'on' if bf16 else 'off: no fast bf16 on this CPU'}). Forward + backward of one fixed "
        "packed batch of each recipe stage (shipped janus-pro-shapes weights); minimum over "
        f"{args.reps}x{args.inner} interleaved steps; attention = the SDPA operators' self time in the profiler.",
        "", "| stage | packed batch | plain SDPA step (attention) | januspro step (attention) | step ratio | "
        "attention ratio |", "|---|---|---|---|---|---|"]
    for stage, shape, base, ours in rows:
        lines.append(f"| {stage} | {shape} | {base['step_ms']:.0f} ms ({base['attn_ms']:.0f} ms) | "
                     f"{ours['step_ms']:.0f} ms ({ours['attn_ms']:.0f} ms) | "
                     f"{base['step_ms'] / ours['step_ms']:.2f}x | {base['attn_ms'] / ours['attn_ms']:.2f}x |")
    text = "\n".join(lines)
    print(text)
    write_section(args.out, "## bench_train.py", text)


if __name__ == "__main__":
    main()
