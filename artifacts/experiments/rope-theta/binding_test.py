"""Does a trained model's p(image codes | prompt) tell the right image from a minimally different one?

    python artifacts/experiments/rope-theta/binding_test.py MODEL_FOLDER [PAIRS]   (repo root; PAIRS: 60)

For each category, PAIRS pairs of rendered scenes A, B with prompts pA, pB that differ in one fact (a colour,
a shape, a count, which colour goes with which shape, which shape is where). B is A with that fact changed
(a colour or a shape replaced, colours or positions swapped) or, for counts, a new scene. The model scores the
image codes of both images under both prompts (summed cross-entropy of the codes, no guidance). A pair is
right when NLL(A|pA) + NLL(B|pB) < NLL(A|pB) + NLL(B|pA), so how typical each image is cancels out; 0.5 is
chance. Only seen combinations are asked (no held-out colour-shape pair or relation triple).
"""

import sys
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from januspro import load_model
from januspro.processing import JanusTokenizer
from januspro.processing.image import normalise_generation
from januspro.shapes.render import render
from januspro.shapes.suites import _a as a  # the article rule of the GenEval suite's own prompts
from januspro.shapes.suites import scene_for_metadata
from januspro.shapes.world import COLORS, HELD_OUT, SHAPES, Scene, number_word, plural
from januspro.training.data import SampleBuilder, encode_codes
from januspro.training.packing import pack, packed_loss

Case = tuple[Scene, Scene, str, str]

torch.set_num_threads(2)
path = sys.argv[1]
PAIRS = int(sys.argv[2]) if len(sys.argv) > 2 else 60
model = load_model(path, dtype=torch.float32).eval()
tok = JanusTokenizer.from_dir(path)
mc = model.cfg
builder = SampleBuilder(tok, mc.chat_template, mc.vision.image_size, mc.vision.num_tokens, mc.vision.image_mean,
                        mc.vision.image_std, "")
rng = np.random.default_rng(11)
colors, shapes, held = list(COLORS), list(SHAPES), set(HELD_OUT.pairs)
INVERSE = {"above": "below", "below": "above", "left of": "right of", "right of": "left of"}


def codes(scenes: list[Scene]) -> np.ndarray:
    x = torch.from_numpy(np.stack([render(s) for s in scenes])).permute(0, 3, 1, 2).float()
    return encode_codes(model.vq, normalise_generation(x))


@torch.no_grad()
def nll(prompts: list[str], cds: np.ndarray) -> np.ndarray:
    out = []
    shape = (3, mc.vision.image_size, mc.vision.image_size)
    for p, c in zip(prompts, cds, strict=True):
        batch = pack([builder.t2i(p, c.tolist(), False)], 256, tok.pad_id, shape)
        out.append(packed_loss(model, batch, tok.image_id, 1.0).image_sum)
    return np.array(out)


def test(name: str, make: Callable[[], Case | None]) -> tuple[list[str], np.ndarray]:
    cases: list[Case] = []
    while len(cases) < PAIRS:
        case = make()
        if case is not None:
            cases.append(case)
    sa, sb, pa, pb = (list(x) for x in zip(*cases, strict=True))
    ca, cb = codes(sa), codes(sb)
    aa, ab, ba, bb = nll(pa, ca), nll(pb, ca), nll(pa, cb), nll(pb, cb)
    margin = ((ab + ba) - (aa + bb)) / 2
    per_image = np.mean(np.r_[aa < ab, bb < ba])
    print(f"{name:30s} pairs right {np.mean(margin > 0):.2f}  images right {per_image:.2f}  "
          f"mean margin {margin.mean():.2f} nats  (e.g. {pa[0]!r} vs {pb[0]!r})", flush=True)
    return pa, margin > 0


def seen_pair(not_shape: str = "") -> tuple[str, str]:
    while True:
        c, s = str(rng.choice(colors)), str(rng.choice(shapes))
        if (c, s) not in held and s != not_shape:
            return c, s


def colour_case() -> Case:
    c1, s = seen_pair()
    c2 = str(rng.choice([c for c in colors if c != c1 and (c, s) not in held]))
    sa = scene_for_metadata({"include": [{"class": s, "count": 1, "color": c1}]}, rng)
    return sa, Scene(tuple(replace(o, color=c2) for o in sa.objects)), a(f"{c1} {s}"), a(f"{c2} {s}")


def two_object_case() -> Case | None:
    s1, s2, s3 = (str(x) for x in rng.choice(shapes, 3, replace=False))
    sa = scene_for_metadata({"include": [{"class": s1, "count": 1}, {"class": s2, "count": 1}]}, rng)
    sb = Scene(tuple(replace(o, shape=s3) if o.shape == s2 else o for o in sa.objects))
    if any((o.color, o.shape) in held for o in sa.objects + sb.objects):
        return None
    return sa, sb, f"{a(s1)} and {a(s2)}", f"{a(s1)} and {a(s3)}"


def counting_case() -> Case:
    s, n = str(rng.choice(shapes)), int(rng.integers(2, 4))
    sa = scene_for_metadata({"include": [{"class": s, "count": n}]}, rng)
    sb = scene_for_metadata({"include": [{"class": s, "count": n + 1}]}, rng)
    return sa, sb, f"{number_word(n)} {plural(s, n)}", f"{number_word(n + 1)} {plural(s, n + 1)}"


def colour_attribution_case() -> Case | None:
    c1, s1 = seen_pair()
    c2, s2 = seen_pair(not_shape=s1)
    if c1 == c2 or (c2, s1) in held or (c1, s2) in held:
        return None
    sa = scene_for_metadata({"include": [{"class": s1, "count": 1, "color": c1},
                                         {"class": s2, "count": 1, "color": c2}]}, rng)
    sb = Scene(tuple(replace(o, color=c2 if o.color == c1 else c1) for o in sa.objects))
    return sa, sb, f"{a(f'{c1} {s1}')} and {a(f'{c2} {s2}')}", f"{a(f'{c2} {s1}')} and {a(f'{c1} {s2}')}"


def position_case() -> Case | None:
    s1, s2 = (str(x) for x in rng.choice(shapes, 2, replace=False))
    r = str(rng.choice(list(INVERSE)))
    triples = {(s2, r, s1), (s1, r, s2), (s2, INVERSE[r], s1), (s1, INVERSE[r], s2)}
    if triples & set(HELD_OUT.triples):
        return None
    try:
        sa = scene_for_metadata({"include": [{"class": s1, "count": 1},
                                             {"class": s2, "count": 1, "position": [r, 0]}]}, rng)
    except RuntimeError:
        return None
    o1, o2 = sa.objects
    sb = Scene((replace(o1, cx=o2.cx, cy=o2.cy), replace(o2, cx=o1.cx, cy=o1.cy)))  # the two swap places
    return sa, sb, f"{a(s2)} {r} {a(s1)}", f"{a(s1)} {r} {a(s2)}"


test("colors", colour_case)
test("two_object", two_object_case)
test("counting (n vs n+1)", counting_case)
test("colour attribution (swap)", colour_attribution_case)
prompts, right = test("position (swap places)", position_case)
by_relation = {r: [ok for p, ok in zip(prompts, right, strict=True) if f" {r} " in p] for r in INVERSE}
print("  position by relation: " + ", ".join(f"{r} {np.mean(v):.2f} (n={len(v)})" if v else f"{r} - (n=0)"
                                          for r, v in by_relation.items()))
