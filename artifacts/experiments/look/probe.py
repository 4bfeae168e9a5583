"""How well a model trained with look turns lists a scene, and whether its answers use the list.

    python artifacts/experiments/look/probe.py MODEL SUITES OUT.json   (repo root; SUITES = a run's data/eval)

1. Inventories: "List the objects." on 200 fresh scenes (seed 4242, 64 px), greedy; the share written exactly as
   ``layout_plan`` would, by number of objects, and object-level (colour + shape) recall and precision.
2. shapes-POPE from the inventory: every POPE split's images listed by the model, each question answered "yes"
   when the model's own list names the object (a text lookup done here, outside the model): how good the
   answers could be if the model's answer followed its list.
3. Does the answer use the list? 300 near-miss existence questions (an object sharing its colour or its shape with
   one in the scene, absent from it) on fresh scenes (seed 77), asked with no look turn, after the true
   inventory, and after another scene's inventory; the share answered "yes" in each case.
"""
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from januspro.checkpoint import load_processor
from januspro.generation.text import TextGenParams, generate_text
from januspro.shapes.language import LOOK_QUESTION, layout_plan, near_miss
from januspro.shapes.render import render
from januspro.shapes.scoring import pope_metrics
from januspro.shapes.world import HELD_OUT, sample_scene
from januspro.training.shapes_eval import load_shapes_model

BATCH = 25


def answers(model, proc, convs: list, max_new_tokens: int) -> list[str]:
    out: list[str] = []
    for i in range(0, len(convs), BATCH):
        out += generate_text(model, proc, convs[i:i + BATCH], TextGenParams(max_new_tokens=max_new_tokens))
    return out


def ask(image, text: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": text}]}]


def listed(inventory: str) -> set[str]:
    return {" ".join(x.split()[:2]) for x in inventory.split(", ") if len(x.split()) >= 2}


def inventories(model, proc) -> dict:
    rng = np.random.default_rng(4242)
    scenes = [sample_scene(rng) for _ in range(200)]
    got = answers(model, proc, [ask(Image.fromarray(render(s, 64)), LOOK_QUESTION) for s in scenes], 80)
    by_n = defaultdict(list)
    tp = fp = fn = 0
    for s, g in zip(scenes, got, strict=True):
        truth = layout_plan(s)
        by_n[len(s.objects)].append(truth == g)
        t, h = listed(truth), listed(g)
        tp, fp, fn = tp + len(t & h), fp + len(h - t), fn + len(t - h)
    return {"exact": round(float(np.mean([v for vs in by_n.values() for v in vs])), 3),
            "exact_by_objects": {n: round(float(np.mean(v)), 3) for n, v in sorted(by_n.items())},
            "object_recall": round(tp / (tp + fn), 3), "object_precision": round(tp / max(1, tp + fp), 3)}


def pope_from_inventory(model, proc, suites: Path) -> dict:
    out = {}
    for split in ("random", "popular", "adversarial"):
        qs = [json.loads(x) for x in open(suites / "pope" / f"pope_{split}.jsonl")]
        images = sorted({q["image"] for q in qs})
        got = answers(model, proc, [ask(Image.open(suites / "pope" / i), LOOK_QUESTION) for i in images], 80)
        inv = dict(zip(images, got, strict=True))
        preds = ["yes" if q["object"] in listed(inv[q["image"]]) else "no" for q in qs]
        m = pope_metrics(preds, [q["label"] for q in qs])
        out[split] = {"f1": round(m["f1"], 3), "yes_ratio": round(m["yes_ratio"], 3)}
    return out


def answer_uses_list(model, proc) -> dict:
    rng = np.random.default_rng(77)
    items = []
    while len(items) < 300:
        s = sample_scene(rng)
        o = s.objects[int(rng.integers(len(s.objects)))]
        c, sh = near_miss(o, rng)
        if f"{c} {sh}" in {x.name for x in s.objects} or HELD_OUT.pair_held(c, sh):
            continue
        items.append((s, f"Is there a {c} {sh} in the image?", sample_scene(rng)))
    out = {}
    for mode in ("no look", "true inventory", "another scene's inventory"):
        convs = []
        for s, q, other in items:
            im = Image.fromarray(render(s, 64))
            if mode == "no look":
                convs.append(ask(im, q))
            else:
                inv = layout_plan(s if mode == "true inventory" else other)
                convs.append(ask(im, LOOK_QUESTION) + [{"role": "assistant", "content": inv},
                                                        {"role": "user", "content": q}])
        said = answers(model, proc, convs, 4)
        out[mode] = round(float(np.mean([a.lower().startswith("yes") for a in said])), 3)
    return out


def main(model_dir: Path, suites: Path, out: Path) -> None:
    model = load_shapes_model(model_dir)
    proc = load_processor(model)
    res = {"model": str(model_dir), "inventories": inventories(model, proc),
           "pope_answered_from_inventory": pope_from_inventory(model, proc, suites),
           "near_miss_yes_rate": answer_uses_list(model, proc)}
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
