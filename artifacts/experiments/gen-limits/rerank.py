"""Best-of-K by the model's own likelihood, on a GenEval-style suite.

    python artifacts/experiments/gen-limits/rerank.py MODEL METADATA OUT K [CFG TEMP]   (repo root)

Each prompt's 4 images are each the best of K candidates (4K sampled with CFG, seed = prompt index). A candidate's
score is log p(codes | prompt) - lambda log p(codes | unconditional prompt), teacher forced, no guidance:
lambda 0 is the plain likelihood, 1 the pointwise mutual information of image and prompt; "nan" keeps the first
candidate (no reranking). Writes OUT/lam<lambda>/ in GenEval's layout and prints the shapes-GenEval scores.
"""
import json
import sys
from pathlib import Path

import torch

from januspro.checkpoint import load_processor
from januspro.eval.geneval import read_metadata
from januspro.generation.image import ImageGenParams, decode_codes, generate_codes, unconditional_ids
from januspro.generation.sampling import make_generator
from januspro.shapes.scoring import score_geneval_folder
from januspro.training.data import SampleBuilder
from januspro.training.packing import pack, packed_loss
from januspro.training.shapes_eval import load_shapes_model

torch.set_num_threads(2)
model_dir, meta, out, k = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
cfg = float(sys.argv[5]) if len(sys.argv) > 5 else 3.0
temp = float(sys.argv[6]) if len(sys.argv) > 6 else 0.7
model = load_shapes_model(Path(model_dir)).eval()
proc = load_processor(model)
pad = proc.tokenizer.pad_id
mc = model.cfg
builder = SampleBuilder(proc.tokenizer, mc.chat_template, mc.vision.image_size, mc.vision.num_tokens,
                        mc.vision.image_mean, mc.vision.image_std, "")
image_shape = (3, mc.vision.image_size, mc.vision.image_size)
N = 4
LAMBDAS = (0.0, 0.5, 1.0, 2.0, float("nan"))


@torch.no_grad()
def logp(prompt: str, codes: torch.Tensor, unconditional: bool) -> torch.Tensor:
    """log p(codes | prompt) per row of codes [R, T], teacher forced as in training (the unconditional form is
    training's dropped prompt, which is also what guidance samples against)."""
    out = []
    for c in codes.tolist():
        batch = pack([builder.t2i(prompt, c, unconditional)], 256, pad, image_shape)
        out.append(-packed_loss(model, batch, proc.tokenizer.image_id, 1.0).image_sum)
    return torch.tensor(out)


items = read_metadata(meta)
for idx, (line, m) in enumerate(items):
    cond = proc.encode_generation_prompt(m["prompt"])
    unc = unconditional_ids(cond, pad)
    p = ImageGenParams(cfg_weight=cfg, temperature=temp, n=N * k, seed=idx)
    codes = generate_codes(model, [cond], [unc], p, pad, [make_generator(idx)])
    lc, lu = logp(m["prompt"], codes, False), logp(m["prompt"], codes, True)
    for lam in LAMBDAS:
        score = torch.zeros_like(lc) if lam != lam else lc - lam * lu  # nan: every candidate ties, the first wins
        pick = score.view(N, k).argmax(-1) + torch.arange(N) * k
        imgs = decode_codes(model, codes[pick])
        sub = out / f"lam{lam:g}" / f"{idx:05d}"
        (sub / "samples").mkdir(parents=True, exist_ok=True)
        (sub / "metadata.jsonl").write_text(line.rstrip("\n") + "\n")
        for j, im in enumerate(imgs):
            im.save(sub / "samples" / f"{j:04d}.png")
for lam in LAMBDAS:
    rep = score_geneval_folder(out / f"lam{lam:g}", out / f"lam{lam:g}").to_dict()
    print(json.dumps({"k": k, "lambda": lam, "cfg": cfg, "temp": temp, "overall": round(rep["overall"], 3),
                      "per_tag": {t: round(v, 3) for t, v in rep["per_tag"].items()}}))
