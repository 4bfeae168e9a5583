"""Does a model read an inventory? Colour, shape and count questions of the recipe's VQA suite (seed 1000) asked
after the scene's true inventory, (1) as text alone (the list in the user turn, no image) and (2) teacher-forced
in the look chat (image, "List the objects.", the true list as the model's answer, then the question); accuracy
per kind, seen and held-out ("_h").

    python artifacts/experiments/look/read_probe.py MODEL [SUITE]   (repo root; SUITE: write_eval_suites' folder)
"""
import json
import sys
from pathlib import Path

from PIL import Image

from januspro.checkpoint import load_model, load_processor
from januspro.generation.text import TextGenParams, generate_text
from januspro.shapes.language import LOOK_QUESTION, layout_plan
from januspro.shapes.scoring import normalize_answer
from januspro.training.shapes_eval import vqa_item_scene

if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    suite = Path(sys.argv[2] if len(sys.argv) == 3 else "runs/evalsuite") / "vqa"
    model = load_model(sys.argv[1])
    proc = load_processor(model)
    items = [r for r in map(json.loads, open(suite / "vqa.jsonl")) if r["kind"] in ("color", "shape", "count")]
    text, forced = [], []
    for r in items:
        inventory = layout_plan(vqa_item_scene(1000, r["question_id"])[0])
        text.append([{"role": "user", "content": f"{inventory}\n{r['question']}"}])
        image = Image.open(suite / r["image"]).convert("RGB")
        forced.append([{"role": "user", "content": "<image_placeholder>\n" + LOOK_QUESTION, "images": [image]},
                       {"role": "assistant", "content": inventory}, {"role": "user", "content": r["question"]}])
    for name, convs in (("text list", text), ("image + true list", forced)):
        acc: dict[str, list[bool]] = {}
        for r, out in zip(items, generate_text(model, proc, convs, TextGenParams(max_new_tokens=8)), strict=True):
            acc.setdefault(r["kind"] + ("_h" if r["heldout"] else ""), []).append(
                normalize_answer(out) == normalize_answer(r["answer"]))
        print(name, {k: round(sum(v) / len(v), 2) for k, v in sorted(acc.items())})
