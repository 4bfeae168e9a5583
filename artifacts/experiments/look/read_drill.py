"""Can the model learn to read its own inventory for colour, shape and count questions? A drill from a finished
model (default: the shipped one) with Stage III's settings for STEPS steps on understanding chats only; then VQA
with and without --look on the recipe's evaluation suite (seed 1000, 288 questions), per kind and held-out or not.

MODE says what the drill trains on (fresh scenes without held-out combinations; 20,000 chats of each part):
  pure       "read" chats only: a look turn ("List the objects." and the scene's inventory), then one question
             that the inventory settles (colour of the only <shape>, shape of the only <colour> object, number of
             <shape>s)
  mix        Stage III-style chats (the recipe's chats: half opened by a judge turn, half by a look turn and an
             existence question) + read chats
  mix-text   the same + the read chats as text alone: the inventory given in the user turn, no image, so that
             only the list answers the question

    python artifacts/experiments/look/read_drill.py OUT STEPS MODE [MODEL]   (repo root)
"""
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from januspro.checkpoint import resolve_model_path
from januspro.shapes.datasets import (
    _save_png,
    image_name,
    item_rng,
    look_rows,
    match_rows,
    with_look_turn,
    write_task,
)
from januspro.shapes.language import layout_plan, qa_pairs
from januspro.shapes.render import render
from januspro.shapes.scoring import normalize_answer
from januspro.shapes.world import sample_scene
from januspro.training.config import load_run_config
from januspro.training.recipe import Recipe, write_eval_suites
from januspro.training.trainer import make_trainer

READ_KINDS = ("color", "shape", "count")


def read_chats(folder: Path, n: int, seed: int = 7, text_only: bool = False) -> list[str]:
    rows = []
    for i in range(n):
        rng = item_rng(seed, i, 11)
        scene = sample_scene(rng)
        qas = [x for x in qa_pairs(scene, rng) if x[2] in READ_KINDS]
        if not qas:
            continue
        q, a, kind = qas[int(rng.integers(len(qas)))]
        if text_only:
            rows.append(json.dumps({"messages": [{"role": "user", "content": f"{layout_plan(scene)}\n{q}"},
                                                 {"role": "assistant", "content": a}], "kinds": [kind],
                                    "images": []}) + "\n")
            continue
        rows.append(look_chat_row(folder, "read", i, scene, q, a, kind))
    return rows


def look_chat_row(folder: Path, task: str, i: int, scene, question: str, answer: str, kind: str) -> str:
    """One chat line: the look turn on the scene's image (rendered to ``folder/images``), then the question and
    its answer."""
    messages, kinds = with_look_turn([{"role": "user", "content": "<image_placeholder>\n" + question},
                                      {"role": "assistant", "content": answer}], [kind], scene)
    name = image_name(task, i)
    _save_png(render(scene, 64), folder / name)
    return json.dumps({"messages": messages, "kinds": kinds, "images": [name],
                       "scene": json.loads(scene.to_json())}) + "\n"


def train_drill(model: Path, und: Path, out: Path, steps: int, extra: tuple[str, ...] = ()) -> Path:
    """STEPS steps of Stage III's settings from ``model`` on the understanding chats ``und`` alone (constant LR;
    ``extra`` run-config overrides come last, e.g. text and text-to-image data back in); returns the trained model
    folder (``out/stage3/model``)."""
    overrides = Recipe(out / "recipe").run_config_overrides("stage3", out / "stage3") + [
        f"model.init={model}", "model.vision=", f"data.und={und}", "data.text=", "data.t2i=", "data.ratio=[1,0,0]",
        f"train.steps={steps}", "optim.decay_steps=0", f"train.save_every={steps}", *extra]
    make_trainer(load_run_config(None, overrides)).run()
    return out / "stage3" / "model"


def recipe_chats(folder: Path, n: int) -> list[str]:
    """n Stage III-style chats (the recipe's: half opened by a judge turn, half by a look turn and an existence
    question) on fresh scenes, images under ``folder/images``."""
    recipe = Recipe(folder / "recipe")
    std = write_task("und", folder, n, seed=5, style=recipe.style, workers=2)
    return look_rows(match_rows(std, recipe.sft_match_share), recipe.sft_look_share, seed=2,
                     exist_share=recipe.sft_look_exist_share)


def drill_chats(folder: Path, mode: str, n: int = 20000) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = read_chats(folder, n)
    if mode in ("mix", "mix-text"):
        rows += recipe_chats(folder, n)
    if mode == "mix-text":
        rows += read_chats(folder, n, seed=8, text_only=True)
    path = folder / "drill.jsonl"
    path.write_text("".join(rows))
    return path


def breakdown(suite: Path, answers: Path) -> dict:
    got = {r["question_id"]: r["answer"] for r in map(json.loads, open(answers))}
    acc = defaultdict(list)
    for r in map(json.loads, open(suite)):
        ok = normalize_answer(got[r["question_id"]]) == normalize_answer(r["answer"])
        acc[f"{r['kind']}{'_heldout' if r['heldout'] else ''}"].append(ok)
        acc["all"].append(ok)
    return {k: round(sum(v) / len(v), 3) for k, v in sorted(acc.items())}


def vqa(model: Path, out: Path) -> dict:
    suites = out.parent / "evalsuite"
    if not (suites / "vqa" / "vqa.jsonl").is_file():
        write_eval_suites(suites, 24)
    res = {}
    for mode in ("--look", "--no-look"):
        folder = out / mode.strip("-")
        subprocess.run(["januspro", "eval", "vqa", "--model", str(model), "--data", str(suites / "vqa" / "vqa.jsonl"),
                        "--images", str(suites / "vqa"), "--out", str(folder), "--quiet", mode], check=True)
        res[mode.strip("-")] = breakdown(suites / "vqa" / "vqa.jsonl", folder / "answers.jsonl")
    return res


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5) or sys.argv[3] not in ("pure", "mix", "mix-text"):
        sys.exit(__doc__)
    out, steps, mode = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    model = resolve_model_path(sys.argv[4] if len(sys.argv) == 5 else "janus-pro-shapes")
    data = out / "data"
    und = data / "drill.jsonl" if (data / "drill.jsonl").is_file() else drill_chats(data, mode)
    results = {"mode": mode, "steps": steps, "before": vqa(model, out / "before")}
    results["after"] = vqa(train_drill(model, und, out, steps), out / "after")
    (out / "read_drill.json").write_text(json.dumps(results, indent=2) + "\n")
    for when in ("before", "after"):
        for look, accs in results[when].items():
            print(when, look, accs)
