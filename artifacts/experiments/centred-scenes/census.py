"""How many objects each shapes-GenEval image shows, and where, for finished evaluation folders.

    python artifacts/experiments/centred-scenes/census.py EVAL_DIR...   (EVAL_DIR: an eval part's geneval folder)

Prints, per folder: the share of images with no object, the mean objects asked vs drawn, the share of drawn
objects whose centre lies within 1 px of a grid-cell centre, and the score.
"""
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from januspro.shapes.detect import detect
from januspro.shapes.scoring import evaluate_geneval
from januspro.shapes.world import GRID

if len(sys.argv) < 2:
    sys.exit(__doc__)
centres = np.array([(i + 0.5) / GRID for i in range(GRID)])
for folder in map(Path, sys.argv[1:]):
    empty = n_img = drawn = asked = centred = ok = 0
    for meta_path in sorted(folder.glob("*/metadata.jsonl")):
        meta = json.loads(meta_path.read_text())
        for png in sorted((meta_path.parent / "samples").glob("*.png")):
            dets = detect(Image.open(png).convert("RGB"))
            n_img += 1
            empty += not dets
            drawn += len(dets)
            asked += sum(inc.get("count", 1) for inc in meta.get("include", []))
            for d in dets:
                near = [np.abs(centres - c).min() * 64 < 1.0 for c in (d.cx, d.cy)]
                centred += all(near)
            ok += evaluate_geneval(dets, meta)[0]
    print(f"{folder}: {n_img} images, empty {empty / n_img:.3f}, objects asked {asked / n_img:.2f} drawn "
          f"{drawn / n_img:.2f}, centred objects {centred / max(drawn, 1):.3f}, correct {ok / n_img:.3f}")
