"""Questions that teach a model to judge its own drawings: "Does the image show <prompt>?".

Best-of-K generation (``generation/rerank.py``) shows each candidate image to the model's understanding path
and keeps the one it believes. A model can only judge what it was taught to check, so the shapes world can add
such questions to its understanding chats (``DataStyle.match_share``): a GenEval-style prompt (one of its six
categories: a shape, two shapes, a count, a coloured shape, a relation, two coloured shapes) about the chat's
image, answered "yes" when the image satisfies it by GenEval's own rule (the scorer of
:mod:`januspro.shapes.scoring`, run on the scene's true objects) and "no" otherwise.

About half the prompts are drawn to be false, and false in the ways a drawing goes wrong: a shape missing, a
count off by one, a colour on the wrong object, a relation that does not hold. Prompts naming a held-out
combination are never asked, so the evaluation's held-out split stays unseen.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..generation.rerank import ASK_QUESTION
from ..processing.chat import IMAGE_TAG
from .detect import Detection
from .language import _pick, count_question, group_phrase, mentions_held_out
from .scoring import evaluate_geneval
from .suites import TAGS
from .world import (
    COLORS,
    HELD_OUT,
    RELATIONS,
    SHAPES,
    HeldOut,
    Obj,
    Scene,
    SceneSpec,
    relations,
    sample_scene,
)

JUDGE_QUESTION = ASK_QUESTION  # the phrasing best-of-K asks with (generation.rerank's "ask" judge)
MATCH_QUESTIONS = (JUDGE_QUESTION, "Is this a picture of {}?", "Does this picture match: {}?")


def truth(scene: Scene) -> list[Detection]:
    """The scene's objects as perfect detections, for GenEval's scorer."""
    return [Detection(o.shape, o.color, o.size, o.bbox, o.extent ** 2, 1.0) for o in scene.objects]


def satisfies(scene: Scene, meta: dict) -> bool:
    """Does the scene satisfy a GenEval metadata line (GenEval's rule on the scene's true objects)?"""
    return evaluate_geneval(truth(scene), meta)[0]


def _other_color(rng: np.random.Generator, color: str) -> str:
    return _pick(rng, [c for c in COLORS if c != color])


def _match_meta(tag: str, want_yes: bool, scene: Scene, rng: np.random.Generator) -> dict | None:
    """A GenEval metadata line of category ``tag`` meant to be true (``want_yes``) or false of the scene, or
    None when the scene offers no such prompt. Colour and position prompts name only shapes that occur at
    most once, so GenEval's verdict does not depend on which of several equal shapes it looks at."""
    count = Counter(o.shape for o in scene.objects)
    present = [s for s in SHAPES if count[s]]
    absent = [s for s in SHAPES if not count[s]]
    once: dict[str, Obj] = {o.shape: o for o in scene.objects if count[o.shape] == 1}
    if tag == "single_object":
        pool = present if want_yes else absent
        if not pool:
            return None
        s = _pick(rng, pool)
        return {"include": [{"class": s, "count": 1}], "prompt": group_phrase(None, s, 1)}
    if tag == "two_object":
        if want_yes:
            if len(present) < 2:
                return None
            s1, s2 = (present[int(i)] for i in rng.choice(len(present), 2, replace=False))
        else:
            if not absent:
                return None
            s1, s2 = _pick(rng, present), _pick(rng, absent)
            if rng.random() < 0.5:
                s1, s2 = s2, s1
        return {"include": [{"class": s1, "count": 1}, {"class": s2, "count": 1}], "prompt": f"{group_phrase(None, s1, 1)} and {group_phrase(None, s2, 1)}"}
    if tag == "counting":
        if want_yes:
            pool = [s for s in present if 2 <= count[s] <= 4]
            if not pool:
                return None
            s = _pick(rng, pool)
            n = count[s]
        else:
            s = _pick(rng, list(SHAPES))
            n = _pick(rng, [k for k in (2, 3, 4) if k != count[s]])
        return {"include": [{"class": s, "count": n}], "exclude": [{"class": s, "count": n + 1}],
                "prompt": group_phrase(None, s, n)}
    if tag == "colors":
        if not once:
            return None
        o = once[_pick(rng, sorted(once))]
        c = o.color if want_yes else _other_color(rng, o.color)
        return {"include": [{"class": o.shape, "count": 1, "color": c}], "prompt": group_phrase(c, o.shape, 1)}
    if len(once) < 2:
        return None
    a, b = (once[s] for s in (sorted(once)[int(i)] for i in rng.choice(len(once), 2, replace=False)))
    if tag == "position":  # "a <a> <r> a <b>": a relative to b
        held = sorted(relations(a.bbox, b.bbox))
        pool = held if want_yes else [r for r in RELATIONS if r not in held]
        if not pool:
            return None
        r = _pick(rng, pool)
        return {"include": [{"class": b.shape, "count": 1}, {"class": a.shape, "count": 1, "position": [r, 0]}],
                "prompt": f"{group_phrase(None, a.shape, 1)} {r} {group_phrase(None, b.shape, 1)}"}
    # color_attr
    ca, cb = a.color, b.color
    if not want_yes:
        if ca != cb and rng.random() < 0.5:
            ca, cb = cb, ca  # the colours on the wrong objects: the attribution error
        elif rng.random() < 0.5:
            ca = _other_color(rng, ca)
        else:
            cb = _other_color(rng, cb)
    return {"include": [{"class": a.shape, "count": 1, "color": ca}, {"class": b.shape, "count": 1, "color": cb}],
            "prompt": f"{group_phrase(ca, a.shape, 1)} and {group_phrase(cb, b.shape, 1)}"}


def match_prompt(scene: Scene, rng: np.random.Generator, held_out: HeldOut = HELD_OUT, tries: int = 20
                 ) -> dict | None:
    """A GenEval metadata line (``tag``, ``include``, ``exclude``, ``prompt``) about the scene: the category drawn
    uniformly, meant true or false with even odds. None when ``tries`` draws found no prompt the scene offers
    that names no held-out combination."""
    for _ in range(tries):
        tag = TAGS[int(rng.integers(len(TAGS)))]
        meta = _match_meta(tag, bool(rng.random() < 0.5), scene, rng)
        if meta is not None and not mentions_held_out(meta["prompt"], held_out):
            return {"tag": tag, **meta}
    return None


def match_question(scene: Scene, rng: np.random.Generator, held_out: HeldOut = HELD_OUT, tries: int = 20
                   ) -> tuple[str, str] | None:
    """(question, "yes" | "no"): does the scene show :func:`match_prompt`'s prompt, by GenEval's rule."""
    meta = match_prompt(scene, rng, held_out, tries)
    if meta is None:
        return None
    question = MATCH_QUESTIONS[int(rng.integers(len(MATCH_QUESTIONS)))].format(meta["prompt"])
    return question, "yes" if satisfies(scene, meta) else "no"


# counting chats (:func:`count_chat`): how many objects of the counted shape a scene may hold; a drawing of
# "three squares" that goes wrong mostly shows 4-6, more than the 1-4 objects of the world's own scenes
COUNT_CHAT_MAX = 6
COUNT_CHAT_EXTRA = 2  # at most this many objects of other shapes beside them


def count_chat(rng: np.random.Generator, held_out: HeldOut = HELD_OUT) -> tuple[list[dict], list[str], Scene]:
    """A chat that teaches the judge to count: a scene like a drawing of a GenEval counting prompt, right or
    wrong, and two questions about it.

    The prompt is "<n> <shape>s" with n in 2-4 (GenEval's counting prompts); with even odds the scene shows
    exactly n objects of that shape, otherwise any other number from 1 to :data:`COUNT_CHAT_MAX`; 0 to
    :data:`COUNT_CHAT_EXTRA` objects of other shapes sit beside them. The chat asks whether the image shows the
    prompt (answered by GenEval's rule on the scene, :func:`satisfies`) and then how many objects of that shape
    there are (answered in digits, as the world's count questions are)."""
    shape = _pick(rng, SHAPES)
    n = int(rng.integers(2, 5))
    wrong = [v for v in range(1, COUNT_CHAT_MAX + 1) if v != n]
    k = n if rng.random() < 0.5 else wrong[int(rng.integers(len(wrong)))]
    others = [s for s in SHAPES if s != shape]
    extra = tuple((None, _pick(rng, others)) for _ in range(int(rng.integers(0, COUNT_CHAT_EXTRA + 1))))
    scene = sample_scene(rng, SceneSpec(n_objects=k + len(extra), objects=((None, shape),) * k + extra), held_out)
    meta = {"include": [{"class": shape, "count": n}], "exclude": [{"class": shape, "count": n + 1}],
            "prompt": group_phrase(None, shape, n)}
    question = MATCH_QUESTIONS[int(rng.integers(len(MATCH_QUESTIONS)))].format(meta["prompt"])
    messages = [{"role": "user", "content": f"{IMAGE_TAG}\n{question}"},
                {"role": "assistant", "content": "yes" if satisfies(scene, meta) else "no"},
                {"role": "user", "content": count_question(shape, rng)}, {"role": "assistant", "content": str(k)}]
    return messages, ["match", "count"], scene


__all__ = ["COUNT_CHAT_EXTRA", "COUNT_CHAT_MAX", "JUDGE_QUESTION", "MATCH_QUESTIONS", "count_chat", "match_prompt",
           "match_question", "satisfies", "truth"]
