"""Where does the shipped model's understanding fail? VQA accuracy by question kind x number of objects.

    python artifacts/experiments/vqa-diagnosis/diagnose.py [MODEL_DIR] [OUT]   (repo root; ~5 min on 2 cores)

Draws scenes like the recipe's VQA suite (seed 3000, another seed than training and evaluation), training-style
scenes only (no held-out combinations), and asks one question of every kind the scene allows, so each kind gets
the same scenes; then tabulates greedy exact-match accuracy per kind and object count, and the answers given
to shape and where questions.
"""
import collections
import json
import sys
from pathlib import Path

from januspro.checkpoint import load_model, load_processor
from januspro.eval.vqa import run_vqa
from januspro.shapes.datasets import _save_png, item_rng
from januspro.shapes.language import qa_pairs
from januspro.shapes.render import render
from januspro.shapes.scoring import normalize_answer
from januspro.shapes.world import sample_scene

model_dir = sys.argv[1] if len(sys.argv) > 1 else "src/januspro/assets/janus-pro-shapes"
out = Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/vqa-diagnosis")
SCENES = 300
folder = out / "suite"
folder.mkdir(parents=True, exist_ok=True)
rows = []
for i in range(SCENES):
    rng = item_rng(3000, i, 7)
    scene = sample_scene(rng)
    name = f"images/d_{i:05d}.png"
    _save_png(render(scene, 64), folder / name)
    by_kind = collections.defaultdict(list)
    for q, a, kind in qa_pairs(scene, rng):
        by_kind[kind].append((q, a))
    for kind, qas in sorted(by_kind.items()):
        q, a = qas[int(rng.integers(len(qas)))]
        rows.append({"question_id": len(rows), "image": name, "question": q, "answer": a, "kind": kind,
                     "n_objects": len(scene.objects)})
(folder / "vqa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
model = load_model(model_dir, dtype="fp32")
proc = load_processor(model)
run_vqa(model, proc, folder / "vqa.jsonl", folder, out / "vqa", batch_size=16)
answers = {json.loads(line)["question_id"]: json.loads(line) for line in open(out / "vqa" / "answers.jsonl")}
table = collections.defaultdict(list)
given = collections.defaultdict(collections.Counter)
for r in rows:
    a = answers[r["question_id"]]
    pred = a["answer"]
    ok = normalize_answer(str(pred)) == normalize_answer(r["answer"])
    table[(r["kind"], r["n_objects"])].append(ok)
    table[(r["kind"], "all")].append(ok)
    if r["kind"] in ("shape", "where", "color", "relation"):
        given[r["kind"]][(r["answer"], normalize_answer(str(pred)))] += 1
kinds = sorted({k for k, _ in table})
cols = [1, 2, 3, 4, "all"]
lines = ["| kind | " + " | ".join(f"{c} obj" if c != "all" else "all" for c in cols) + " |",
         "|---|" + "---|" * len(cols)]
for k in kinds:
    cells = []
    for c in cols:
        v = table.get((k, c))
        cells.append(f"{sum(v) / len(v):.2f} ({len(v)})" if v else "-")
    lines.append(f"| {k} | " + " | ".join(cells) + " |")
print("\n".join(lines))
for k, cnt in given.items():
    print(f"\n{k}: (truth, answer) counts")
    for (t, p), n in sorted(cnt.items(), key=lambda x: -x[1])[:16]:
        print(f"  {t!r:14s} -> {p!r:14s} {n}")
