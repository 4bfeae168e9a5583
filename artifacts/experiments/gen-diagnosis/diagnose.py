"""Why shapes-GenEval fails on counting and colour attribution: generate for a fresh suite's prompts of
those categories, read every image with the exact detector, and tabulate what was drawn.

    python artifacts/experiments/gen-diagnosis/diagnose.py [MODEL_DIR] [--per-tag 48] [--cfg 3 --temperature 0.7]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses

import numpy as np

from januspro.checkpoint import load_model, load_processor
from januspro.generation.image import ImageGenParams, generate_images
from januspro.shapes.detect import detect
from januspro.shapes.scoring import evaluate_geneval, group_detections
from januspro.shapes.suites import geneval_suite


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="janus-pro-shapes")
    ap.add_argument("--per-tag", type=int, default=48)
    ap.add_argument("--seed", type=int, default=4242, help="suite seed (the recipe's suites use others)")
    ap.add_argument("--cfg", type=float, default=3.0)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--n", type=int, default=4)
    args = ap.parse_args()
    model = load_model(args.model, dtype="fp32")
    model.cfg = dataclasses.replace(model.cfg, system_prompt="")
    proc = load_processor(model)
    params = ImageGenParams(cfg_weight=args.cfg, temperature=args.temperature, n=args.n, seed=0)
    suite = [m for m in geneval_suite(args.per_tag, seed=args.seed) if m["tag"] in ("counting", "color_attr")]
    imgs = generate_images(model, proc, [m["prompt"] for m in suite], params)
    count_tab: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    total_tab: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    attr = collections.Counter()
    ok = collections.Counter()
    for meta, images in zip(suite, imgs, strict=True):
        for im in images:
            dets = detect(np.asarray(im))
            good, _ = evaluate_geneval(dets, meta)
            ok[meta["tag"]] += good
            by = group_detections(dets)
            if meta["tag"] == "counting":
                want = meta["include"][0]["count"]
                count_tab[want][len(by.get(meta["include"][0]["class"], []))] += 1
                total_tab[want][len(dets)] += 1
            else:
                a, b = meta["include"]
                da, db = by.get(a["class"], []), by.get(b["class"], [])
                if not da or not db:
                    attr["a shape missing"] += 1
                elif da[0].color == a["color"] and db[0].color == b["color"]:
                    attr["right"] += 1
                elif da[0].color == b["color"] and db[0].color == a["color"]:
                    attr["colours swapped"] += 1
                elif da[0].color == a["color"] or db[0].color == b["color"]:
                    attr["one colour wrong"] += 1
                else:
                    attr["both colours wrong"] += 1
    n_img = collections.Counter(m["tag"] for m in suite)
    print(f"model {args.model}  cfg {args.cfg}  t {args.temperature}  {args.n} images per prompt")
    for tag in ("counting", "color_attr"):
        print(f"{tag}: {ok[tag] / (n_img[tag] * args.n):.3f}")
    print("\ncounting: asked count -> detected objects of the asked shape (share of images)")
    for want in sorted(count_tab):
        tot = sum(count_tab[want].values())
        cells = "  ".join(f"{k}:{v / tot:.2f}" for k, v in sorted(count_tab[want].items()))
        tcells = "  ".join(f"{k}:{v / tot:.2f}" for k, v in sorted(total_tab[want].items()))
        print(f"  asked {want} ({tot} images)  shape count {cells}   | all objects {tcells}")
    tot = sum(attr.values())
    print("\ncolour attribution (first detection of each asked shape):")
    for k, v in attr.most_common():
        print(f"  {k}: {v / tot:.2f}")


if __name__ == "__main__":
    main()
