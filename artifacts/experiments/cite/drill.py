"""Cite, then answer: after its inventory, the model first copies the inventory entries the question is about and
then answers from them.

The shipped model lists a scene right but reads its list badly (../look/, Results 3-4): spatial questions stay at
chance even after the true list and after a drill on them; colours of held-out pairs are answered from pair
statistics, not from the list ("purple triangle 2 0, blue circle 2 1" -> colour of the circle: "purple"). Both ask
one answer token to find entries by name *and* compute on them. Here the answer is split into two easy steps:

    List the objects.                              -> purple triangle 2 0, blue circle 2 1
    What color is the circle?                      -> blue circle 2 1: blue
    Where is the circle relative to the triangle?  -> blue circle 2 1, purple triangle 2 0: right of
    How many squares are there?                    -> none: 0

the citation (:func:`citation`: the entries of the objects the question names, in the list's order; for relation and
"where" questions the two named objects in the question's order; "none" when no entry fits) is a copy by name, and
the answer a look at the few words just written.

MODE `cite` trains that; `direct` (the control) the same chats answered without the citation; `cite-cs` cites only
colour and shape questions (one entry each, the kinds where citing helped or did not hurt) and answers count,
existence and spatial questions directly. Either way: 20,000
chats on fresh scenes without held-out combinations, each a look turn and one question of a kind drawn uniformly
(so a third are relation or "where"), plus as many Stage III-style chats (../look/read_drill.py's recipe_chats) so
that the rest is kept; Stage III's settings (batch 64, packed to 256 tokens, lr 2e-4) for STEPS steps from MODEL
(default: the shipped one). Then the recipe's VQA suite (seed 1000, 288 questions, half on held-out combinations)
with and without --look (up to 64 new tokens, the answer read after the last ':'), per kind, seen / held-out,
and how often the citation is right.

``--mix DATA`` (a recipe's data folder) trains on Stage III's mix instead (ratio 5:1:4, its text and its
text-to-image pairs with plans, the drill chats as its understanding data), so that generation is trained
alongside; ``--cool`` cools the LR down over the STEPS (linear to 0.05x) instead of keeping it constant.

    python artifacts/experiments/cite/drill.py OUT STEPS MODE [MODEL] [--mix DATA] [--cool]   (repo root)
"""
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "look"))
from probe_space import answer_of, trace_of  # noqa: E402
from read_drill import look_chat_row, recipe_chats, train_drill  # noqa: E402

from januspro.checkpoint import load_processor, resolve_model_path  # noqa: E402
from januspro.eval.vqa import run_vqa  # noqa: E402
from januspro.shapes.datasets import item_rng  # noqa: E402
from januspro.shapes.language import LOOK_QUESTION, by_kind, cell_of, plan_entry, qa_pairs  # noqa: E402
from januspro.shapes.scoring import normalize_answer  # noqa: E402
from januspro.shapes.world import COLORS, SHAPES, sample_scene  # noqa: E402
from januspro.training.recipe import EVAL_SEED, write_eval_suites  # noqa: E402
from januspro.training.shapes_eval import load_shapes_model, vqa_item_scene  # noqa: E402

MODES = ("cite", "direct", "cite-cs")
CITED = {"cite": None, "direct": (), "cite-cs": ("color", "shape")}


def citation(scene, question: str, kind: str) -> str:
    """The inventory entries a question is about: for relation and "where" the two named objects in the
    question's order; else every object of the shape and colour the question names (all of them for "How many
    objects ...?"), in the list's order; "none" when no entry fits."""
    if kind in ("relation", "where"):
        return trace_of(scene, question) or "none"
    words = {w.rstrip("s") if w.rstrip("s") in SHAPES else w for w in re.findall(r"[a-z]+", question.lower())}
    shapes, colors = words & set(SHAPES), words & set(COLORS)
    objs = [o for o in sorted(scene.objects, key=cell_of)
            if (not shapes or o.shape in shapes) and (not colors or o.color in colors)]
    return ", ".join(plan_entry(o) for o in objs) or "none"


def drill_rows(folder: Path, n: int, mode: str, seed: int = 17) -> list[str]:
    """n chats: a look turn, then one question (kind drawn uniformly among the scene's), answered with its citation
    first where MODE cites that kind (CITED: None = every kind)."""
    kinds = CITED[mode]
    rows = []
    for i in range(n):
        rng = item_rng(seed, i, 17)
        scene = sample_scene(rng)
        qas = qa_pairs(scene, rng)
        q, a, kind = qas[by_kind(qas, rng)[0]]
        rows.append(look_chat_row(folder, "cite", i, scene, q, cited(scene, q, a, kind, kinds), kind))
    return rows


def cited(scene, q: str, a: str, kind: str, kinds) -> str:
    """The drill's answer: "<citation>: <answer>" when KIND is cited (KINDS None: every kind), else the answer."""
    return f"{citation(scene, q, kind)}: {a}" if kinds is None or kind in kinds else a


def score(suite: Path, answers: Path) -> dict:
    """Accuracy per kind (seen / held-out) with the answer read after the last ':', and the share of answers
    whose citation is the right one."""
    got = {r["question_id"]: r["answer"] for r in map(json.loads, open(answers))}
    acc, cited = defaultdict(list), defaultdict(list)
    for r in map(json.loads, open(suite)):
        said = got[r["question_id"]]
        key = f"{r['kind']}{'_heldout' if r['heldout'] else ''}"
        ok = normalize_answer(answer_of(said)) == normalize_answer(r["answer"])
        acc[key].append(ok)
        acc["all"].append(ok)
        acc["heldout" if r["heldout"] else "seen"].append(ok)
        if ":" in said:
            scene, _ = vqa_item_scene(EVAL_SEED, r["question_id"])
            right = said.rsplit(":", 1)[0].strip() == citation(scene, r["question"], r["kind"])
            cited[key].append(right)
            cited["all"].append(right)
    out = {k: round(sum(v) / len(v), 3) for k, v in sorted(acc.items())}
    out["citation right"] = {k: round(sum(v) / len(v), 3) for k, v in sorted(cited.items())}
    return out


def vqa(model_dir: Path, out: Path) -> dict:
    suites = out / "evalsuite"
    if not (suites / "vqa" / "vqa.jsonl").is_file():
        write_eval_suites(suites, 24)
    model = load_shapes_model(model_dir)
    proc = load_processor(model)
    res = {}
    for name, look in (("look", LOOK_QUESTION), ("no-look", "")):
        folder = out / f"vqa-{name}"
        run_vqa(model, proc, suites / "vqa" / "vqa.jsonl", suites / "vqa", folder, batch_size=16, max_new_tokens=64,
                look=look)
        res[name] = score(suites / "vqa" / "vqa.jsonl", folder / "answers.jsonl")
        print(name, json.dumps(res[name]), flush=True)
    return res


def main(out: Path, steps: int, mode: str, model: Path, n: int = 20000, mix: Path | None = None,
         cool: bool = False) -> dict:
    data = out / "data"
    und = data / "drill.jsonl"
    if not und.is_file():
        data.mkdir(parents=True, exist_ok=True)
        und.write_text("".join(drill_rows(data, n, mode) + recipe_chats(data, n)))
    extra: tuple[str, ...] = ()
    if mix is not None:  # Stage III's mix: its text and text-to-image data back in
        extra = (f"data.text={mix / 'text' / 'text.jsonl'}", f"data.t2i={mix / 't2i' / 't2i_synthetic.jsonl'}",
                 "data.ratio=[5,1,4]")
    if cool:  # the LR cooled down over all steps (Stage III's schedule: linear to 0.05x)
        extra += (f"optim.decay_steps={steps}",)
    res = {"mode": mode, "steps": steps, "model": str(model), "mix": str(mix) if mix else None, "cool": cool,
           "vqa": vqa(train_drill(model, und, out, steps, extra), out)}
    (out / "cite_drill.json").write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("steps", type=int)
    ap.add_argument("mode", choices=MODES)
    ap.add_argument("model", nargs="?", default="janus-pro-shapes")
    ap.add_argument("--mix", type=Path, help="a recipe's data folder: train on Stage III's mix")
    ap.add_argument("--cool", action="store_true", help="cool the LR down over the steps")
    a = ap.parse_args()
    main(a.out, a.steps, a.mode, resolve_model_path(a.model), mix=a.mix, cool=a.cool)
