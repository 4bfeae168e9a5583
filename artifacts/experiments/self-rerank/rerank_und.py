"""Best-of-K by the model's own understanding path, on a GenEval-style suite.

    python artifacts/experiments/self-rerank/rerank_und.py MODEL METADATA OUT K [CFG TEMP [SCORES]]   (repo root)

Each prompt's 4 images are each the best of K candidates (4K sampled with CFG, seed = prompt index). A candidate's
score is the understanding path's log p(prompt | candidate image, "Describe the image.") (the library's
``answer_logprobs``, what ``ImageGenParams.best_of`` uses), teacher forced: the
model reads its own picture through the SigLIP encoder and is asked how likely the prompt is as a description
of it. K = 1 (or the first candidate of each group) is plain sampling. Writes OUT/k<K>/ and OUT/first/ in
GenEval's layout, every candidate under OUT/all/ with its scores (``und``: the score above; ``cond`` and
``uncond``: the generation path's log p(codes | prompt) and log p(codes | dropped prompt), teacher forced, no
guidance, for ``analyse.py``'s other rankings), and prints the shapes-GenEval scores of the
three (those of "all" are plain sampling over 4K images a prompt).

SCORES (comma-separated, default ``und,cond,uncond``) chooses the scores saved; ``ask`` adds the library's other
judge (``judge_scores(..., "ask")``: log p(yes) - log p(no) to "Does the image show <prompt>?"). OUT/k<K> keeps
the best by ``und`` when it is saved, else by the first score listed. Session 33 ran it with ``und,ask``
(``../match-judge/``).
"""
import json
import sys
from pathlib import Path

import torch

from januspro.checkpoint import load_processor
from januspro.eval.geneval import read_metadata
from januspro.generation.image import ImageGenParams, decode_codes, generate_codes, unconditional_ids
from januspro.generation.rerank import judge_scores
from januspro.generation.sampling import make_generator
from januspro.shapes.scoring import score_geneval_folder
from januspro.training.data import SampleBuilder
from januspro.training.packing import pack, packed_loss
from januspro.training.shapes_eval import load_shapes_model

torch.set_num_threads(2)
if len(sys.argv) < 5:
    sys.exit(__doc__)
model_dir, meta, out, k = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
cfg = float(sys.argv[5]) if len(sys.argv) > 5 else 3.0
temp = float(sys.argv[6]) if len(sys.argv) > 6 else 0.7
wanted = (sys.argv[7] if len(sys.argv) > 7 else "und,cond,uncond").split(",")
if not set(wanted) <= {"und", "ask", "cond", "uncond"}:
    sys.exit(f"unknown score in {wanted}")
model = load_shapes_model(Path(model_dir)).eval()
proc = load_processor(model)
pad = proc.tokenizer.pad_id
N = 4
mc = model.cfg
builder = SampleBuilder(proc.tokenizer, mc.chat_template, mc.vision.image_size, mc.vision.num_tokens,
                        mc.vision.image_mean, mc.vision.image_std, "")
image_shape = (3, mc.vision.image_size, mc.vision.image_size)


@torch.no_grad()
def gen_logp(prompt: str, codes: torch.Tensor, unconditional: bool) -> list[float]:
    """The generation path's log p(codes | prompt) per candidate, teacher forced, no guidance (the unconditional
    form is training's dropped prompt)."""
    out = []
    for c in codes.tolist():
        batch = pack([builder.t2i(prompt, c, unconditional)], 256, pad, image_shape)
        out.append(-packed_loss(model, batch, proc.tokenizer.image_id, 1.0).image_sum)
    return out


items = read_metadata(meta)
for idx, (line, m) in enumerate(items):
    cond = proc.encode_generation_prompt(m["prompt"])
    unc = unconditional_ids(cond, pad)
    p = ImageGenParams(cfg_weight=cfg, temperature=temp, n=N * k, seed=idx)
    codes = generate_codes(model, [cond], [unc], p, pad, [make_generator(idx)])
    imgs = decode_codes(model, codes)
    prompts = [m["prompt"]] * len(imgs)
    scores = {}
    for name in wanted:
        if name in ("und", "ask"):
            scores[name] = judge_scores(model, proc, imgs, prompts, "describe" if name == "und" else "ask").tolist()
        else:
            scores[name] = gen_logp(m["prompt"], codes, name == "uncond")
    score = torch.tensor(scores["und" if "und" in scores else wanted[0]])
    picks = {"first": torch.arange(N) * k, f"k{k}": score.view(N, k).argmax(-1) + torch.arange(N) * k,
             "all": torch.arange(N * k)}
    for name, pick in picks.items():
        sub = out / name / f"{idx:05d}"
        (sub / "samples").mkdir(parents=True, exist_ok=True)
        (sub / "metadata.jsonl").write_text(line.rstrip("\n") + "\n")
        for j, i in enumerate(pick.tolist()):
            imgs[i].save(sub / "samples" / f"{j:04d}.png")
    (out / "all" / f"{idx:05d}" / "scores.json").write_text(json.dumps(scores))
    print(idx, end=" ", flush=True)
print()
for name in ("first", f"k{k}", "all"):
    rep = score_geneval_folder(out / name, out / name).to_dict()
    print(json.dumps({"pick": name, "k": k, "cfg": cfg, "temp": temp, "overall": round(rep["overall"], 3),
                      "per_tag": {t: round(v, 3) for t, v in rep["per_tag"].items()}}))
