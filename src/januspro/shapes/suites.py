"""Evaluation suites: GenEval-style prompts with GenEval's metadata schema, and POPE-style yes/no questions.

GenEval's six categories, with its schema (``tag``, ``include`` with ``class``/``count``/``color``/
``position``, ``exclude``, ``prompt``); classes are shape names. Each prompt also says whether it uses a
combination held out from training (``"heldout": true``), an extra key that GenEval's own scorer ignores.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .language import group_phrase
from .world import (
    COLORS,
    HELD_OUT,
    RELATIONS,
    SHAPES,
    HeldOut,
    Obj,
    Scene,
    SceneSpec,
    number_word,
    plural,
    relations,
    sample_scene,
)

TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def geneval_suite(n_per_tag: int = 24, seed: int = 0, held_out: HeldOut = HELD_OUT, heldout_share: float = 0.5
                  ) -> list[dict]:
    """GenEval-style metadata lines. ``colors``, ``color_attr`` and ``position`` prompts are split between
    seen combinations and held-out ones (about ``heldout_share`` of each)."""
    rng = np.random.default_rng(seed)
    out: list[dict] = []
    colors = list(COLORS)

    def seen_pair() -> tuple[str, str]:
        while True:
            c, s = str(rng.choice(colors)), str(rng.choice(SHAPES))
            if not held_out.pair_held(c, s):
                return c, s

    for tag in TAGS:
        for i in range(n_per_tag):
            want_held = tag in ("colors", "color_attr", "position") and i < round(n_per_tag * heldout_share)
            if tag == "single_object":
                s = SHAPES[i % len(SHAPES)]
                meta = {"include": [{"class": s, "count": 1}], "prompt": _a(s)}
            elif tag == "two_object":
                a, b = rng.choice(len(SHAPES), 2, replace=False)
                s1, s2 = SHAPES[a], SHAPES[b]
                meta = {"include": [{"class": s1, "count": 1}, {"class": s2, "count": 1}],
                        "prompt": f"{_a(s1)} and {_a(s2)}"}
            elif tag == "counting":
                s, n = str(rng.choice(SHAPES)), int(rng.integers(2, 5))
                meta = {"include": [{"class": s, "count": n}], "exclude": [{"class": s, "count": n + 1}],
                        "prompt": f"{number_word(n)} {plural(s, n)}"}
            elif tag == "colors":
                c, s = held_out.pairs[i % len(held_out.pairs)] if want_held else seen_pair()
                meta = {"include": [{"class": s, "count": 1, "color": c}], "prompt": _a(f"{c} {s}")}
            elif tag == "position":
                if want_held:
                    s2, r, s1 = held_out.triples[i % len(held_out.triples)]
                else:
                    while True:
                        a, b = rng.choice(len(SHAPES), 2, replace=False)
                        s1, s2, r = SHAPES[a], SHAPES[b], str(rng.choice(RELATIONS))
                        if (s2, r, s1) not in held_out.triples:
                            break
                meta = {"include": [{"class": s1, "count": 1}, {"class": s2, "count": 1, "position": [r, 0]}],
                        "prompt": f"{_a(s2)} {r} {_a(s1)}"}
            else:  # color_attr
                a, b = rng.choice(len(SHAPES), 2, replace=False)
                s1, s2 = SHAPES[a], SHAPES[b]
                if want_held:
                    c1, s1 = held_out.pairs[i % len(held_out.pairs)]
                    s2 = str(rng.choice([x for x in SHAPES if x != s1]))
                    c2 = str(rng.choice([c for c in colors if c != c1 and not held_out.pair_held(c, s2)]))
                else:
                    c1 = str(rng.choice([c for c in colors if not held_out.pair_held(c, s1)]))
                    c2 = str(rng.choice([c for c in colors if c != c1 and not held_out.pair_held(c, s2)]))
                meta = {"include": [{"class": s1, "count": 1, "color": c1}, {"class": s2, "count": 1, "color": c2}],
                        "prompt": f"{_a(f'{c1} {s1}')} and {_a(f'{c2} {s2}')}"}
            out.append({"tag": tag, **meta, "heldout": bool(want_held)})
    return out


def scene_for_metadata(meta: dict, rng: np.random.Generator, max_tries: int = 500) -> Scene:
    """A scene that satisfies a GenEval metadata line exactly (used to check the scorer gives 1.0)."""
    wanted: list[tuple[str | None, str]] = []
    for req in meta["include"]:
        wanted += [(req.get("color"), req["class"])] * req["count"]
    spec = SceneSpec(n_objects=len(wanted), objects=tuple(wanted))
    for _ in range(max_tries):
        scene = sample_scene(rng, spec, held_out=None)
        if _positions_hold(meta, scene):
            return scene
    raise RuntimeError(f"no scene found for {meta['prompt']!r}")


def _positions_hold(meta: dict, scene: Scene) -> bool:
    groups: list[list[Obj]] = []
    k = 0
    for req in meta["include"]:
        groups.append(list(scene.objects[k:k + req["count"]]))
        k += req["count"]
    for gi, req in enumerate(meta["include"]):
        if "position" in req:
            rel, target = req["position"]
            for a in groups[gi]:
                for b in groups[target]:
                    if rel not in relations(a.bbox, b.bbox):
                        return False
    return True


# ----------------------------------------------------------------------------- POPE-style
POPE_SPLITS = ("random", "popular", "adversarial")


@dataclass
class PopeItem:
    question_id: int
    image: str
    text: str
    label: str  # "yes" | "no"
    object: str  # the colour-shape class asked about

    def to_json(self) -> str:
        return json.dumps({"question_id": self.question_id, "image": self.image, "text": self.text,
                           "label": self.label, "object": self.object})


def all_classes() -> list[str]:
    return [f"{c} {s}" for c in COLORS for s in SHAPES]


def pope_questions(scenes: list[Scene], image_names: list[str], split: str, per_scene: int = 2, seed: int = 0
                   ) -> list[PopeItem]:
    """``per_scene`` yes questions (present objects) and as many no questions (absent objects) per scene.

    random: absent objects drawn uniformly; popular: the absent objects most frequent over all scenes;
    adversarial: the absent objects most easily confused with the scene -- those sharing a colour or a shape
    with the most present objects -- and among them those that co-occur most with the present ones (POPE's
    rule; in this uniformly sampled world co-occurrence alone carries little signal). Scenes need at least ``per_scene`` distinct objects.
    """
    if split not in POPE_SPLITS:
        raise ValueError(f"unknown POPE split {split!r}; choose one of {POPE_SPLITS}")
    rng = np.random.default_rng(seed)
    classes = all_classes()
    freq = Counter(o.name for s in scenes for o in s.objects)
    co: Counter[tuple[str, str]] = Counter()
    for s in scenes:
        names = {o.name for o in s.objects}
        for a in names:
            for b in names:
                if a != b:
                    co[(a, b)] += 1
    items: list[PopeItem] = []
    for scene, image in zip(scenes, image_names, strict=True):
        present = sorted({o.name for o in scene.objects})
        if len(present) < per_scene:
            raise ValueError("a POPE scene needs at least per_scene distinct objects")
        absent = [c for c in classes if c not in present]
        yes = [present[i] for i in rng.choice(len(present), per_scene, replace=False)]
        if split == "random":
            no = [absent[i] for i in rng.choice(len(absent), per_scene, replace=False)]
        elif split == "popular":
            ranked = sorted(absent, key=lambda c: (-freq[c], rng.random()))
            no = ranked[:per_scene]
        else:
            def hardness(c: str, present: list[str] = present) -> tuple[float, float, float]:
                col, shp = c.split(" ")
                shares = sum(1 for p in present if p.split(" ")[0] == col or p.split(" ")[1] == shp)
                return (-shares, -sum(co[(p, c)] for p in present), rng.random())
            no = sorted(absent, key=hardness)[:per_scene]
        qs = [(c, "yes") for c in yes] + [(c, "no") for c in no]
        for k in rng.permutation(len(qs)):
            c, label = qs[int(k)]
            text = f"Is there {group_phrase(c.split(' ')[0], c.split(' ')[1], 1)} in the image?"
            items.append(PopeItem(len(items) + 1, image, text, label, c))
    return items


def write_jsonl(rows: list[dict] | list[str], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
