"""shapes-GenEval of a model that writes drawing plans, with and without them, and where a planned image fails:
in the plan (the plan itself does not satisfy the prompt) or in the drawing (the image differs from the plan).

    python artifacts/experiments/plan/plan_eval.py MODEL METADATA OUT SETTING...   (repo root)

SETTING: ``plain``, or ``plan:T`` (plans sampled at temperature T, 0 = greedy), optionally ``@K`` for the best of
K by the ``ask`` judge (``plan:1@8``). Every setting draws 4 images a prompt at cfg 3 / temperature 0.7, prompt i
with seed i (the same seeds for every setting). Writes OUT/<setting>.json (rows with plans and verdicts) and
prints a table.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from januspro.checkpoint import load_model, load_processor
from januspro.generation.image import ImageGenParams, generate_images
from januspro.shapes.detect import Detection, detect
from januspro.shapes.scoring import evaluate_geneval
from januspro.shapes.suites import TAGS
from januspro.shapes.world import GRID, SIZES

torch.set_num_threads(2)
model_dir, metadata, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
settings = sys.argv[4:]
out.mkdir(parents=True, exist_ok=True)
model = load_model(model_dir).eval()
proc = load_processor(model)
metas = [json.loads(x) for x in open(metadata)]


def plan_objects(plan: str) -> list[tuple[str, str, int, int]] | None:
    """(colour, shape, row, column) of each object a plan names; None when it does not parse."""
    objs = []
    for part in plan.split(","):
        w = part.split()
        if len(w) != 4 or not (w[2].isdigit() and w[3].isdigit()):
            return None
        objs.append((w[0], w[1], int(w[2]), int(w[3])))
    return objs


def plan_detections(objs: list[tuple[str, str, int, int]]) -> list[Detection]:
    h = SIZES["medium"] / 2
    out = []
    for color, shape, r, c in objs:
        cx, cy = (c + 0.5) / GRID, (r + 0.5) / GRID
        out.append(Detection(shape, color, "medium", (cx - h, cy - h, cx + h, cy + h), 4 * h * h, 1.0))
    return out


def image_objects(dets: list[Detection]) -> list[tuple[str, str, int, int]]:
    return sorted((d.color, d.shape, min(GRID - 1, int(d.cy * GRID)), min(GRID - 1, int(d.cx * GRID))) for d in dets)


rows_by_setting = {}
for setting in settings:
    name, _, k = setting.partition("@")
    best_of = int(k) if k else 1
    plan = name != "plain"
    params = ImageGenParams(cfg_weight=3.0, temperature=0.7, n=4, plan=plan,
                            plan_temperature=float(name.split(":")[1]) if plan else 1.0, best_of=best_of, judge="ask")
    t0 = time.time()
    rows = []
    for start in range(0, len(metas), 8):
        chunk = metas[start:start + 8]
        plans: list[list[str]] = []
        images = generate_images(model, proc, [m["prompt"] for m in chunk], params,
                                 seeds=list(range(start, start + len(chunk))), plans=plans)
        for j, (meta, ims) in enumerate(zip(chunk, images, strict=True)):
            for i, im in enumerate(ims):
                dets = detect(im)
                ok, why = evaluate_geneval(dets, meta)
                row = {"tag": meta["tag"], "heldout": meta.get("heldout", False), "prompt": meta["prompt"],
                       "correct": ok, "why": why, "image": image_objects(dets)}
                if plans:
                    p = plans[j][i]
                    objs = plan_objects(p)
                    row.update(plan=p, plan_parses=objs is not None,
                               plan_correct=objs is not None and evaluate_geneval(plan_detections(objs), meta)[0],
                               drawn_as_planned=objs is not None and sorted(objs) == row["image"])
                rows.append(row)
    secs = time.time() - t0
    (out / f"{setting.replace(':', '_')}.json").write_text(json.dumps(rows, indent=0))
    rows_by_setting[setting] = (rows, secs)

print("| setting | overall | " + " | ".join(TAGS) + " | held-out | plan parses | plan correct | drawn as planned |"
      " correct if plan correct | s |")
print("|---|---|" + "---|" * len(TAGS) + "---|---|---|---|---|---|")
for setting, (rows, secs) in rows_by_setting.items():
    per = {t: np.mean([r["correct"] for r in rows if r["tag"] == t]) for t in TAGS}
    overall = np.mean(list(per.values()))
    held = np.mean([r["correct"] for r in rows if r["heldout"]])
    if "plan" in rows[0]:
        pc = [r for r in rows if r["plan_correct"]]
        extra = (f"{np.mean([r['plan_parses'] for r in rows]):.2f} | {np.mean([r['plan_correct'] for r in rows]):.2f} | "
                 f"{np.mean([r['drawn_as_planned'] for r in rows]):.2f} | "
                 f"{np.mean([r['correct'] for r in pc]) if pc else float('nan'):.2f}")
    else:
        extra = "- | - | - | -"
    print(f"| {setting} | {overall:.3f} | " + " | ".join(f"{per[t]:.2f}" for t in TAGS) +
          f" | {held:.2f} | {extra} | {secs:.0f} |")
