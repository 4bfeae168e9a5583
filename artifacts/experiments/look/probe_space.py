"""Do a model's answers to spatial questions follow a written inventory?

    python artifacts/experiments/look/probe_space.py MODEL OUT.json [--trace]   (repo root)

300 relation questions ("Is the square below the circle?", yes/no) and 300 "where" questions ("Where is the square
relative to the circle?", one relation) on fresh scenes without held-out combinations (seed 91, 64 px), asked with
no look turn, after the true inventory (``layout_plan``), after the model's own inventory, and after another
scene's inventory; greedy. ``--trace``: the model was drilled to write the two objects' inventory entries before
its answer (``../space-trace/``): up to 40 new tokens, the answer read after the last ':', and how often the
written entries are right. Also: how often the inventory's grid cells alone settle the answer (a rule that compares
row and column digits), the ceiling of answering from the list by text comparison.
"""
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from probe import answers, ask  # this folder's probe.py (the script's folder is on the import path)

from januspro.checkpoint import load_processor
from januspro.shapes.language import LOOK_QUESTION, cell_of, layout_plan, plan_entry, qa_pairs, ref_phrase
from januspro.shapes.render import render
from januspro.shapes.world import sample_scene
from januspro.training.shapes_eval import load_shapes_model


def named_pair(scene, question: str):
    """The two objects a spatial question names, in the order it names them (None if it names fewer)."""
    objs = {ref_phrase(o, scene, None, "the"): o for o in scene.objects}
    names = sorted(objs, key=len, reverse=True)
    found = sorted((question.find(n), n) for n in names if n in question)
    if len(found) < 2:
        return None
    return objs[found[0][1]], objs[found[-1][1]]


def trace_of(scene, question: str) -> str | None:
    """The two named objects' inventory entries ("red circle 0 2, blue square 1 1"), in the question's order: the
    reading a trace answer (``TRACE: answer``) writes before its answer (``../space-trace/``)."""
    pair = named_pair(scene, question)
    return None if pair is None else ", ".join(plan_entry(o) for o in pair)


def answer_of(said: str) -> str:
    """The answer part of a reply: after the last ': ' where the reply writes a trace first, else all of it."""
    return said.rsplit(":", 1)[-1].strip().lower()


def cell_rule(scene, question: str, kind: str) -> str | None:
    """The answer a comparison of the grid cells gives, or None when the cells cannot tell the objects apart."""
    pair = named_pair(scene, question)
    if pair is None:
        return None
    (ra, ca), (rb, cb) = cell_of(pair[0]), cell_of(pair[1])
    held = set()
    if ca < cb:
        held.add("left of")
    if ca > cb:
        held.add("right of")
    if ra < rb:
        held.add("above")
    if ra > rb:
        held.add("below")
    if kind == "relation":
        rel = next(r for r in ("left of", "right of", "above", "below") if f" {r} " in question)
        return "yes" if rel in held else "no"
    return next(iter(held)) if len(held) == 1 else None


def main(model_dir: Path, out: Path, trace: bool = False) -> None:
    model = load_shapes_model(model_dir)
    proc = load_processor(model)
    rng = np.random.default_rng(91)
    items = {"relation": [], "where": []}
    while min(len(v) for v in items.values()) < 300:
        s = sample_scene(rng)
        for q, a, k in qa_pairs(s, rng):
            if k in items and len(items[k]) < 300:
                items[k].append((s, q, a, sample_scene(rng)))
    res: dict = {"model": str(model_dir)}
    for kind, its in items.items():
        rule = [cell_rule(s, q, kind) for s, q, _, _ in its]
        res[f"{kind}_cell_rule"] = round(float(np.mean([r == a for r, (_, _, a, _) in zip(rule, its, strict=True)])), 3)
        own = answers(model, proc, [ask(Image.fromarray(render(s, 64)), LOOK_QUESTION) for s, _, _, _ in its], 80)
        for mode in ("no look", "true inventory", "own inventory", "another scene's inventory"):
            convs = []
            for (s, q, _, other), inv_own in zip(its, own, strict=True):
                im = Image.fromarray(render(s, 64))
                if mode == "no look":
                    convs.append(ask(im, q))
                    continue
                inv = {"true inventory": layout_plan(s), "own inventory": inv_own}.get(mode, layout_plan(other))
                convs.append(ask(im, LOOK_QUESTION) + [{"role": "assistant", "content": inv},
                                                        {"role": "user", "content": q}])
            said = answers(model, proc, convs, 40 if trace else 6)
            res[f"{kind}: {mode}"] = round(float(np.mean([answer_of(g) == a for g, (_, _, a, _) in
                                                          zip(said, its, strict=True)])), 3)
            if trace:
                res[f"{kind}: {mode}, trace right"] = round(float(np.mean(
                    [g.rsplit(":", 1)[0].strip() == trace_of(s, q) for g, (s, q, _, _) in zip(said, its, strict=True)])), 3)
        print(json.dumps(res, indent=2), flush=True)
    out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--trace"]
    if len(args) != 2:
        sys.exit(__doc__)
    main(Path(args[0]), Path(args[1]), trace="--trace" in sys.argv)
