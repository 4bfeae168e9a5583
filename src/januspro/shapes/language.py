"""Language about shapes-world scenes: class names, captions, questions and answers, a text-only corpus.

Several phrasings per fact, so a model must generalise rather than memorise one template. Every sentence
is true of its scene (the "real" variant adds controlled errors on purpose). Relations use GenEval's rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from .world import (
    COLORS,
    GRID,
    HELD_OUT,
    RELATIONS,
    SHAPES,
    HeldOut,
    Obj,
    Scene,
    number_word,
    plural,
    relations,
)

REL_PHRASES = {
    "left of": ("left of", "to the left of", "on the left of"),
    "right of": ("right of", "to the right of", "on the right of"),
    "above": ("above", "over"),
    "below": ("below", "under", "beneath"),
}
LEADS = ("", "", "", "an image of ", "a picture of ", "there is ", "a drawing of ")


def _pick(rng: np.random.Generator, options: Iterable[str]) -> str:
    opts = list(options)
    return opts[int(rng.integers(len(opts)))]


def group_phrase(color: str | None, shape: str, n: int, rng: np.random.Generator | None = None) -> str:
    """"a red circle", "two blue squares", "three triangles"."""
    noun = plural(shape, n)
    adj = f"{color} " if color else ""
    if n == 1:
        article = "an" if (adj or noun)[0] in "aeiou" else "a"
        return f"{article} {adj}{noun}"
    return f"{number_word(n)} {adj}{noun}"


def join_list(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def groups(scene: Scene, with_color: bool) -> list[tuple[str | None, str, int]]:
    """(colour or None, shape, count) groups in a stable order."""
    counts: dict[tuple[str | None, str], int] = {}
    for o in scene.objects:
        key = (o.color if with_color else None, o.shape)
        counts[key] = counts.get(key, 0) + 1
    return [(c, s, n) for (c, s), n in sorted(counts.items(), key=lambda kv: (SHAPES.index(kv[0][1]), kv[0][0] or ""))]


def unique_refs(scene: Scene) -> list[Obj]:
    """Objects that a "the red circle" (or "the circle") phrase picks out alone."""
    names = [o.name for o in scene.objects]
    return [o for o in scene.objects if names.count(o.name) == 1]


def ref_phrase(o: Obj, scene: Scene, rng: np.random.Generator | None = None, article: str = "a") -> str:
    """Shortest unambiguous noun phrase; the colour is kept when the shape alone is ambiguous."""
    same_shape = sum(1 for x in scene.objects if x.shape == o.shape)
    use_color = same_shape > 1 or (rng is not None and rng.random() < 0.7)
    words = f"{o.color} {o.shape}" if use_color else o.shape
    if article == "the":
        return f"the {words}"
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


def relation_pairs(scene: Scene, held_out: HeldOut | None = HELD_OUT) -> list[tuple[Obj, str, Obj]]:
    """(a, relation, b) for uniquely named objects a != b, excluding held-out relation triples."""
    refs = unique_refs(scene)
    out = []
    for a in refs:
        for b in refs:
            if a is b:
                continue
            for r in sorted(relations(a.bbox, b.bbox)):
                if held_out is not None and (a.shape, r, b.shape) in held_out.triples:
                    continue
                out.append((a, r, b))
    return out


ORDERS = ("mixed", "raster")
RASTER_ROWS = 8  # rows of the raster order (the shapes model's 8 x 8 image-code grid)


def raster_key(o: Obj) -> tuple[int, float]:
    """Where an object starts in raster order (image codes are generated row by row, left to right): the
    code row of its top edge, then its left edge."""
    x0, y0, _, _ = o.bbox
    return min(RASTER_ROWS - 1, max(0, int(y0 * RASTER_ROWS))), x0


def _in_raster_order(grouped: list[tuple[str | None, str, int]], objs: Iterable[Obj]
                     ) -> list[tuple[str | None, str, int]]:
    """Groups sorted by where their first member starts in raster order."""
    objs = list(objs)

    def first(g: tuple[str | None, str, int]) -> tuple[int, float]:
        c, shape, _ = g
        return min(raster_key(o) for o in objs if o.shape == shape and (c is None or o.color == c))

    return sorted(grouped, key=first)


def _group_phrases(objs: tuple[Obj, ...], with_color: bool, order: str) -> list[str]:
    """"a red circle", "two squares", ... for the groups of ``objs``: in :func:`groups`' shape order, or in
    raster order."""
    grouped = groups(Scene(objs), with_color)
    if order == "raster":
        grouped = _in_raster_order(grouped, objs)
    return [group_phrase(c, s, n) for c, s, n in grouped]


def caption(scene: Scene, rng: np.random.Generator, dense: bool | None = None, with_color: bool | None = None,
            order: str = "mixed") -> str:
    """A true description of the scene: object groups, optionally with a spatial relation.

    ``order``: "mixed" lists the groups in a fixed shape order or shuffled (half each); "raster" lists them in
    the order the image's codes reach them (:func:`raster_key`), so that the first group named is the first
    one generated (the relation phrase of a dense caption keeps its own order)."""
    if order not in ORDERS:
        raise ValueError(f"caption order must be one of {ORDERS}, got {order!r}")
    if with_color is None:
        with_color = rng.random() < 0.75
    if dense is None:
        dense = rng.random() < 0.5
    lead = _pick(rng, LEADS)
    if dense:
        pairs = relation_pairs(scene)
        if pairs:
            a, r, b = pairs[int(rng.integers(len(pairs)))]
            rel = f"{ref_phrase(a, scene, rng)} {_pick(rng, REL_PHRASES[r])} {ref_phrase(b, scene, rng)}"
            rest = tuple(o for o in scene.objects if o is not a and o is not b)
            if not rest:
                return lead + rel
            extra = _group_phrases(rest, with_color, order)
            return lead + rel + ", with " + join_list(extra) if rng.random() < 0.5 else \
                lead + join_list(extra) + " and " + rel
    parts = _group_phrases(scene.objects, with_color, order)
    # both orders draw the shuffle, so that a caption's order never changes what the generator draws after it
    # (the "real" variant's jitter): a raster re-caption of a mixed-order dataset describes the same images
    if rng.random() < 0.5:
        perm = rng.permutation(len(parts))
        if order == "mixed":
            parts = [parts[i] for i in perm]
    return lead + join_list(parts)


def noisy_caption(scene: Scene, rng: np.random.Generator, order: str = "mixed") -> str:
    """The "real" variant's alt-text: sometimes incomplete (a group left out) or partly wrong (a colour)."""
    objs = list(scene.objects)
    if len(objs) > 1 and rng.random() < 0.3:  # incomplete
        objs.pop(int(rng.integers(len(objs))))
    if rng.random() < 0.1:  # partly wrong: one object's colour
        k = int(rng.integers(len(objs)))
        o = objs[k]
        wrong = _pick(rng, [c for c in COLORS if c != o.color and not HELD_OUT.pair_held(c, o.shape)])
        objs[k] = Obj(o.shape, wrong, o.size, o.cx, o.cy)
    return caption(Scene(tuple(objs)), rng, dense=rng.random() < 0.3, order=order)


def cell_of(o: Obj) -> tuple[int, int]:
    """(row, column) of the grid cell that holds the object's centre, 0 to GRID - 1 from the top left."""
    return min(GRID - 1, max(0, int(o.cy * GRID))), min(GRID - 1, max(0, int(o.cx * GRID)))


def plan_entry(o: Obj) -> str:
    """One object's entry in a drawing plan or inventory: "red circle 0 2" (colour, shape, grid row and column)."""
    r, c = cell_of(o)
    return f"{o.color} {o.shape} {r} {c}"


def layout_plan(scene: Scene) -> str:
    """The scene as a drawing plan: "red circle 0 2, blue square 1 1": each object's colour, shape and grid cell
    (row, then column, 0-2 from the top left), cell by cell in the order the image codes reach them (row by
    row). A text-to-image record may carry it as ``plan``: the model learns to write it after the prompt and
    to draw what it wrote (generation's ``plan`` option)."""
    return ", ".join(plan_entry(o) for o in sorted(scene.objects, key=cell_of))


# an answer that cites inventory entries first ("blue circle 2 1: blue"): comma-separated entries, then a colon
_ENTRY = rf"(?:{'|'.join(COLORS)}) (?:{'|'.join(SHAPES)}) \d+ \d+"
_CITATION = re.compile(rf"^\s*{_ENTRY}(?:\s*,\s*{_ENTRY})*\s*:\s*")


def cited_answer(scene: Scene, question: str, answer: str, kind: str) -> str:
    """A colour or shape question's answer with the inventory entry of the object it asks about first ("What
    color is the circle?" -> "blue circle 2 1: blue"): the answer copies the entry from the list the model
    wrote before and reads its colour or shape from there. In an understanding-only drill this answered colour
    questions about held-out colour-shape pairs where bare answers did not; on Stage III's mix it did not
    (artifacts/experiments/cite/). Other kinds, and questions that do not name exactly one object, keep the bare
    answer."""
    if kind not in ("color", "shape"):
        return answer
    words = set(re.findall(r"[a-z]+", question.lower()))
    if kind == "color":
        objs = [o for o in scene.objects if o.shape in words]
    else:
        objs = [o for o in scene.objects if o.color in words]
    return f"{plan_entry(objs[0])}: {answer}" if len(objs) == 1 else answer


def strip_citation(answer: str) -> str:
    """The answer without the inventory entries a cited answer writes first (:func:`cited_answer`): "blue circle
    2 1: blue" -> "blue"; other text unchanged."""
    return _CITATION.sub("", answer, count=1)


# ----------------------------------------------------------------------------- questions and answers
def count_question(shape: str, rng: np.random.Generator) -> str:
    """"How many squares are there?" in one of its phrasings (answered with the number in digits)."""
    return _pick(rng, (f"How many {shape}s are there?", f"How many {shape}s are in the image?", f"Count the {shape}s."))


def qa_pairs(scene: Scene, rng: np.random.Generator, held_out: HeldOut | None = HELD_OUT,
             hard_negatives: float = 0.0) -> list[tuple[str, str, str]]:
    """(question, short answer, kind) about the scene; kinds: color, shape, count, exist, relation, where.

    ``hard_negatives``: the share of existence questions that ask for a near miss of a present object (its
    shape in another colour, or its colour on another shape), the kind of absent object POPE's adversarial
    split asks about; 0 asks for uniformly drawn objects only."""
    out: list[tuple[str, str, str]] = []
    objs = scene.objects
    for shape in SHAPES:
        with_shape = [o for o in objs if o.shape == shape]
        if len(with_shape) == 1:
            q = _pick(rng, (f"What color is the {shape}?", f"Which color does the {shape} have?",
                            f"What is the color of the {shape}?"))
            out.append((q, with_shape[0].color, "color"))
        if with_shape or rng.random() < 0.5:
            out.append((count_question(shape, rng), str(len(with_shape)), "count"))
    for color in COLORS:
        with_color = [o for o in objs if o.color == color]
        if len(with_color) == 1:
            q = _pick(rng, (f"What shape is the {color} object?", f"Which shape is {color}?"))
            out.append((q, with_color[0].shape, "shape"))
    out.append((_pick(rng, ("How many objects are there?", "How many shapes are in the image?")),
                str(len(objs)), "count"))
    present = {o.name for o in objs}
    for _ in range(2):
        color, shape = _pick(rng, COLORS), _pick(rng, SHAPES)
        if rng.random() < 0.5 and objs:
            o = objs[int(rng.integers(len(objs)))]
            color, shape = o.color, o.shape
        elif hard_negatives > 0 and objs and rng.random() < hard_negatives:
            color, shape = near_miss(objs[int(rng.integers(len(objs)))], rng)
        if held_out is not None and held_out.pair_held(color, shape):
            continue
        q = f"Is there a {color} {shape} in the image?" if rng.random() < 0.5 else f"Is there a {color} {shape}?"
        out.append((q, "yes" if f"{color} {shape}" in present else "no", "exist"))
    out += spatial_questions(scene, rng, held_out)
    return [x for x in out if held_out is None or not mentions_held_out(x[0] + " " + x[1], held_out)]


def spatial_questions(scene: Scene, rng: np.random.Generator, held_out: HeldOut | None = HELD_OUT
                      ) -> list[tuple[str, str, str]]:
    """(question, short answer, kind) about one random pair of uniquely named objects: "Is the square below the
    circle?" (kind relation; yes or, at even odds, no about a relation that does not hold) and, when exactly one
    relation holds, "Where is the square relative to the circle?" (kind where). Empty when no pair qualifies.
    Relations follow GenEval's rule (:func:`~.world.relations`); with ``held_out``, no question names a held-out
    pair or triple."""
    pairs = relation_pairs(scene, held_out)
    if not pairs:
        return []
    a, r, b = pairs[int(rng.integers(len(pairs)))]
    rels_ab = relations(a.bbox, b.bbox)
    if rng.random() < 0.5:
        asked = r
    else:
        asked = _pick(rng, [x for x in RELATIONS if x not in rels_ab])
        if held_out is not None and (a.shape, asked, b.shape) in held_out.triples:
            asked = r
    the_a, the_b = ref_phrase(a, scene, None, "the"), ref_phrase(b, scene, None, "the")
    out = [(f"Is {the_a} {asked} {the_b}?", "yes" if asked in rels_ab else "no", "relation")]
    if len(rels_ab) == 1:
        out.append((f"Where is {the_a} relative to {the_b}?", r, "where"))
    return [x for x in out if held_out is None or not mentions_held_out(x[0] + " " + x[1], held_out)]


def by_kind(qas: list[tuple[str, str, str]], rng: np.random.Generator) -> list[int]:
    """Indices into ``qas`` that visit its kinds in random order, one random question of each kind."""
    kinds = sorted({k for _, _, k in qas})
    out = []
    for j in rng.permutation(len(kinds)):
        of_kind = [i for i, (_, _, k) in enumerate(qas) if k == kinds[int(j)]]
        out.append(of_kind[int(rng.integers(len(of_kind)))])
    return out


def near_miss(o: Obj, rng: np.random.Generator) -> tuple[str, str]:
    """(colour, shape) that differs from object ``o`` in exactly one of the two."""
    if rng.random() < 0.5:
        return _pick(rng, [c for c in COLORS if c != o.color]), o.shape
    return o.color, _pick(rng, [s for s in SHAPES if s != o.shape])


def mentions_held_out(text: str, held_out: HeldOut = HELD_OUT) -> bool:
    """Does the text name a held-out colour-shape pair or state a held-out relation triple?"""
    t = " " + text.lower().replace(",", " ").replace("?", " ").replace(".", " ") + " "
    for color, shape in held_out.pairs:
        if f" {color} {shape} " in t or f" {color} {shape}s " in t:
            return True
    for a, r, b in held_out.triples:
        for phrase in REL_PHRASES[r]:
            for ca in ("",) + tuple(f"{c} " for c in COLORS):
                for cb in ("",) + tuple(f"{c} " for c in COLORS):
                    if f" {ca}{a} {phrase} a {cb}{b} " in t or f" {ca}{a} {phrase} the {cb}{b} " in t \
                            or f" {ca}{a} {phrase} an {cb}{b} " in t:
                        return True
    return False


DESCRIBE_QUESTIONS = ("Describe the image.", "What do you see?", "Describe this picture.")
# the question of a look turn: answered with the scene's inventory, :func:`layout_plan`'s text (each object's colour,
# shape and grid cell); a chat may open with it, and understanding with a look first (TextGenParams.look) asks it
# before the user's question
LOOK_QUESTION = "List the objects."


def conversation(scene: Scene, rng: np.random.Generator, turns: int = 1, hard_negatives: float = 0.0,
                 kind_balance: float = 0.0, describe_share: float = 0.0) -> tuple[list[dict], list[str]]:
    """A chat about the scene: the image in the first user turn, then ``turns`` question/answer pairs
    (fewer when the scene offers fewer questions). Returns the messages and the kinds of question asked.

    Questions are drawn uniformly from the scene's :func:`qa_pairs`, so kinds with many questions per scene
    (counts: one per shape) dominate. With probability ``kind_balance`` the chat instead asks about kinds
    drawn uniformly from the kinds the scene offers, one question per kind (see :func:`by_kind`).

    With probability ``describe_share`` the chat is instead one describe turn answered with a caption drawn as
    the text-to-image captions are (:func:`caption`'s defaults), unless that caption names a held-out
    combination."""
    # the draws are only made when the share is on, so the plain data's random stream stays as it was
    if describe_share > 0 and rng.random() < describe_share:
        text = caption(scene, rng)
        if not mentions_held_out(text):
            return [{"role": "user", "content": "<image_placeholder>\n" + _pick(rng, DESCRIBE_QUESTIONS)},
                    {"role": "assistant", "content": text}], ["describe"]
    qas = qa_pairs(scene, rng, hard_negatives=hard_negatives)
    if rng.random() < 0.15:
        qas.append((_pick(rng, DESCRIBE_QUESTIONS),
                    caption(scene, rng, dense=True, with_color=True), "describe"))
    # the draw is only made when balancing is on, so the plain data's random stream stays as it was
    if kind_balance > 0 and rng.random() < kind_balance:
        order = by_kind(qas, rng)[:turns]
    else:
        order = rng.permutation(len(qas))[:turns]
    messages: list[dict] = []
    kinds = []
    for k, i in enumerate(order):
        q, a, kind = qas[int(i)]
        messages.append({"role": "user", "content": ("<image_placeholder>\n" if k == 0 else "") + q})
        messages.append({"role": "assistant", "content": a})
        kinds.append(kind)
    return messages, kinds


# ----------------------------------------------------------------------------- text-only corpus
_SHAPE_FACTS = {
    "circle": ("is round", "has no corners", "looks like a disc"),
    "square": ("has four equal sides", "has four corners", "has four right angles"),
    "triangle": ("has three sides", "has three corners", "points upwards in this world"),
    "diamond": ("is a square turned on its corner", "has four corners", "has four equal sides"),
}


def text_line(rng: np.random.Generator, scene: Scene | None = None) -> str:
    """One line of the text-only corpus about the world (no image)."""
    kind = int(rng.integers(5))
    if kind == 0:
        shape = _pick(rng, SHAPES)
        return f"A {shape} {_pick(rng, _SHAPE_FACTS[shape])}."
    if kind == 1:
        colors = list(COLORS)
        return f"The colors in this world are {join_list(colors)}."
    if kind == 2:
        a, b = int(rng.integers(0, 3)), int(rng.integers(1, 3))
        s = _pick(rng, SHAPES)
        return (f"{group_phrase(None, s, a or 1).capitalize()} and {group_phrase(None, s, b)} make "
                f"{number_word((a or 1) + b)} {plural(s, (a or 1) + b)}.")
    if scene is None:
        from .world import sample_scene

        scene = sample_scene(rng)
    desc = caption(scene, rng, with_color=True)
    qas = qa_pairs(scene, rng)
    q, a, _ = qas[int(rng.integers(len(qas)))]
    if kind == 3:
        return f"Picture {desc}. {q} {a}."
    return f"Q: In a picture of {desc}, {q[0].lower() + q[1:]} A: {a}"
