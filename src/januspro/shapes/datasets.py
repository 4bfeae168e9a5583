"""Dataset writers for the shapes world (JSONL + PNG), in the formats the training readers consume.

Every item is drawn from its own generator seeded by ``(seed, index)``, so the same seed gives byte-identical
files and any range of items can be regenerated alone.

Formats (one JSON object per line):
  t2i.jsonl   {"prompt", "image", "variant": "synthetic"|"real", "scene"}
  und.jsonl   {"messages": [{"role", "content"}...], "images": [path], "kinds": [...], "scene"}
  text.jsonl  {"text"}
  evaluation_metadata.jsonl   GenEval's metadata lines (+ "heldout")
  pope_<split>.jsonl          {"question_id", "image", "text", "label", "object"}
Image paths are relative to the folder of the JSONL file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..processing.chat import IMAGE_TAG
from .judge import count_chat, match_question
from .language import (
    LOOK_QUESTION,
    ORDERS,
    caption,
    cited_answer,
    conversation,
    group_phrase,
    layout_plan,
    near_miss,
    noisy_caption,
    spatial_questions,
    text_line,
)
from .render import render
from .suites import POPE_SPLITS, geneval_suite, pope_questions, scene_for_metadata, write_jsonl
from .world import COLORS, HELD_OUT, SHAPES, Scene, SceneSpec, sample_scene

TASKS = ("t2i", "classname", "und", "text", "geneval", "pope")


@dataclass(frozen=True)
class DataStyle:
    """Knobs of the training data (the defaults give the world's plain data; ``Recipe.style`` takes one)."""

    synthetic_jitter: float = 1.0  # placement jitter of clean text-to-image scenes; 0 puts objects at cell centres
    single_turn_share: float = 0.7  # understanding chats that ask one question; the rest ask 2..max_turns
    max_turns: int = 3
    hard_negatives: float = 0.0  # share of "is there ...?" questions that ask for a near miss of a present object
    caption_order: str = "mixed"  # text-to-image captions: "mixed" (shape order or shuffled) or "raster"
    # share of understanding chats whose questions are drawn kind by kind (every kind the scene offers equally
    # likely) instead of uniformly over the scene's questions (~40% counts, ~6% relations, ~4% "where")
    kind_balance: float = 0.0
    # share of clean text-to-image scenes drawn from three simple families instead of 1-4 random objects (see
    # :func:`simple_spec`): one object, two objects of two shapes, or 2-4 objects of one shape
    simple_scenes: float = 0.0
    # share of understanding chats that are one "Describe the image." turn answered with a caption drawn like the
    # text-to-image captions (the rest still offer a describe question among their others 15% of the time); it
    # teaches the understanding path to judge drafts for best-of-K generation (generation/rerank.py)
    describe_share: float = 0.0
    # share of understanding chats that open with "Does the image show <prompt>?" (a GenEval-style prompt, true or
    # false of the image by GenEval's rule; :mod:`.judge`) before their usual questions; it teaches the model to
    # judge its own drawings for best-of-K generation with the "ask" judge (generation/rerank.py)
    match_share: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.synthetic_jitter <= 1.0:
            raise ValueError("synthetic_jitter must be in [0, 1]")
        for name in ("single_turn_share", "hard_negatives", "kind_balance", "simple_scenes", "describe_share",
                     "match_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.max_turns < 1:
            raise ValueError("max_turns must be >= 1")
        if self.caption_order not in ORDERS:
            raise ValueError(f"caption_order must be one of {ORDERS}")


PLAIN = DataStyle()


def item_rng(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, stream, index])


def image_name(task: str, i: int) -> str:
    """Path (relative to the task's JSONL) of item ``i``'s image."""
    return f"images/{task}_{i:07d}.png"


def item_index(name: str) -> int:
    """The item index an :func:`image_name` encodes."""
    return int(Path(name).stem.rsplit("_", 1)[1])


def _save_png(arr: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format="PNG", optimize=False, compress_level=6)


def real_variant(scene: Scene, rng: np.random.Generator) -> Scene:
    """Noisy "real" rendering: per-object colour jitter and 0-3 clutter specks (too small to count)."""
    jitter = tuple(tuple(int(x) for x in rng.integers(-25, 26, 3)) for _ in scene.objects)
    n_clutter = int(rng.integers(0, 4))
    clutter = tuple((float(rng.uniform(0.03, 0.97)), float(rng.uniform(0.03, 0.97)), float(rng.uniform(0.01, 0.025)),
                     str(rng.choice(list(COLORS)))) for _ in range(n_clutter))
    return Scene(scene.objects, jitter, clutter)  # type: ignore[arg-type]


def t2i_item(seed: int, i: int, variant: str = "synthetic", style: DataStyle = PLAIN) -> tuple[str, Scene]:
    """(prompt, scene) of text-to-image item ``i``: clean exact captions (placed with the style's jitter), or
    the noisy "real" variant (always fully jittered)."""
    rng = item_rng(seed, i, 1)
    if variant == "real":
        scene = sample_scene(rng)
        return noisy_caption(scene, rng, style.caption_order), real_variant(scene, rng)
    # the draw is only made when the share is set, so the plain data's random stream stays as it was
    simple = style.simple_scenes > 0 and rng.random() < style.simple_scenes
    spec = simple_spec(rng, style.synthetic_jitter) if simple else SceneSpec(jitter=style.synthetic_jitter)
    scene = sample_scene(rng, spec)
    return caption(scene, rng, order=style.caption_order), scene


def simple_spec(rng: np.random.Generator, jitter: float = 1.0) -> SceneSpec:
    """A scene family chosen uniformly: one object; two objects of two different shapes; or 2, 3 or 4 objects
    of one shape (colours free). Random scenes of 1-4 objects rarely show the last two (three objects of one
    shape and nothing else: ~1.6% of them; four: ~0.4%), which are what "a circle and a square" or "three
    squares" describe."""
    family = int(rng.integers(3))
    if family == 0:
        return SceneSpec(n_objects=1, jitter=jitter)
    if family == 1:
        a, b = (str(x) for x in rng.choice(SHAPES, 2, replace=False))
        return SceneSpec(n_objects=2, objects=((None, a), (None, b)), jitter=jitter)
    shape, n = str(rng.choice(SHAPES)), int(rng.integers(2, 5))
    return SceneSpec(n_objects=n, objects=((None, shape),) * n, jitter=jitter)


def classname_item(seed: int, i: int, style: DataStyle = PLAIN) -> tuple[str, Scene]:
    """Single-object scene and its class name ("red circle"): the Stage I analogue of ImageNet labels
    (clean data: placed with the style's synthetic jitter)."""
    rng = item_rng(seed, i, 2)
    scene = sample_scene(rng, SceneSpec(n_objects=1, jitter=style.synthetic_jitter))
    return scene.objects[0].name, scene


def und_item(seed: int, i: int, style: DataStyle = PLAIN) -> tuple[list[dict], list[str], Scene]:
    rng = item_rng(seed, i, 3)
    scene = sample_scene(rng)
    one = style.max_turns == 1 or rng.random() < style.single_turn_share
    turns = 1 if one else int(rng.integers(2, style.max_turns + 1))
    messages, kinds = conversation(scene, rng, turns, style.hard_negatives, style.kind_balance, style.describe_share)
    # drawn after the chat, and only when the share is on, so the plain data's chats stay as they were
    if style.match_share > 0 and rng.random() < style.match_share:
        messages, kinds = with_match_turn(messages, kinds, scene, rng)
    return messages, kinds, scene


def with_match_turn(messages: list[dict], kinds: list[str], scene: Scene, rng: np.random.Generator
                    ) -> tuple[list[dict], list[str]]:
    """The chat with a first turn asking whether the image shows a GenEval-style prompt (:func:`match_question`);
    the image moves to that turn. Unchanged when the scene offers no such question."""
    qa = match_question(scene, rng)
    if qa is None:
        return messages, kinds
    tag = IMAGE_TAG + "\n"
    rest = [dict(m) for m in messages]
    if rest and rest[0]["content"].startswith(tag):
        rest[0]["content"] = rest[0]["content"][len(tag):]
    return [{"role": "user", "content": tag + qa[0]}, {"role": "assistant", "content": qa[1]}] + rest, ["match"] + kinds


def with_look_turn(messages: list[dict], kinds: list[str], scene: Scene) -> tuple[list[dict], list[str]]:
    """The chat with a first turn that asks for the scene's inventory (:data:`~.language.LOOK_QUESTION`, answered
    with :func:`~.language.layout_plan`: each object's colour, shape and grid cell); the image moves to that turn."""
    tag = IMAGE_TAG + "\n"
    rest = [dict(m) for m in messages]
    if rest and rest[0]["content"].startswith(tag):
        rest[0]["content"] = rest[0]["content"][len(tag):]
    return [{"role": "user", "content": tag + LOOK_QUESTION},
            {"role": "assistant", "content": layout_plan(scene)}] + rest, ["look"] + kinds


def _record(task: str, seed: int, i: int, variant: str, style: DataStyle) -> tuple[dict, Scene | None]:
    """The JSON fields of item ``i`` (without image path and scene) and the scene to render, if any."""
    if task == "classname":
        prompt, scene = classname_item(seed, i, style)
        return {"prompt": prompt, "variant": "synthetic"}, scene
    if task == "t2i":
        v = variant if variant != "mixed" else ("real" if i % 2 else "synthetic")
        prompt, scene = t2i_item(seed, i, v, style)
        return {"prompt": prompt, "variant": v}, scene
    if task == "und":
        messages, kinds, scene = und_item(seed, i, style)
        return {"messages": messages, "kinds": kinds}, scene
    return {"text": text_line(item_rng(seed, i, 4))}, None


_CHUNK = 1000  # items per parallel job of write_task


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _write_item(job: tuple, i: int) -> str:
    """Item ``i`` of a training task: renders and saves its image (if any) and returns its JSONL line."""
    task, out, seed, variant, style, resolution = job
    row, scene = _record(task, seed, i, variant, style)
    if scene is not None:
        name = image_name(task, i)
        _save_png(render(scene, resolution), Path(out) / name)
        if task == "und":
            row["images"] = [name]
        else:
            row["image"] = name
        row["scene"] = json.loads(scene.to_json())
    return json.dumps(row) + "\n"


def _write_chunk(chunk: tuple) -> str:
    job, start, stop = chunk
    return "".join(_write_item(job, i) for i in range(start, stop))


def write_task(task: str, out: str | Path, n: int, seed: int = 0, resolution: int = 64,
               variant: str = "synthetic", progress: Callable[[int], None] | None = None,
               style: DataStyle = PLAIN, workers: int = 1) -> Path:
    """Write ``n`` items of ``task`` into folder ``out``; returns the JSONL path. ``style`` shapes the
    training tasks (t2i placement, und turns and negatives); the evaluation suites ignore it. ``workers`` > 1
    writes the training tasks' items in that many processes (the same files as one process)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    if n < 1:
        raise ValueError("n must be >= 1")
    if variant not in ("synthetic", "real", "mixed"):
        raise ValueError("variant must be synthetic, real or mixed")
    if workers < 1:
        raise ValueError("workers must be >= 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tick = progress or (lambda _k: None)
    if task in ("t2i", "classname", "und", "text"):
        path = out / f"{task}.jsonl"
        job = (task, str(out), seed, variant, style, resolution)
        with open(path, "w") as f:
            if workers == 1 or n < 2 * _CHUNK:
                for i in range(n):
                    f.write(_write_item(job, i))
                    tick(i + 1)
                return path
            # items are independent (own generator per index): chunks run in parallel, lines are written in order
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            chunks = [(job, a, min(a + _CHUNK, n)) for a in range(0, n, _CHUNK)]
            # fork where there is one: the children only render and save (no torch), and unlike spawn it does not
            # re-run the caller's __main__ (a script without a main guard, or code fed through stdin)
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            with ProcessPoolExecutor(workers, mp_context=mp.get_context(method)) as pool:
                for (_, _, stop), lines in zip(chunks, pool.map(_write_chunk, chunks), strict=True):
                    f.write(lines)
                    tick(stop)
        return path
    if task == "geneval":
        per_tag = max(1, n)
        meta = geneval_suite(per_tag, seed)
        path = out / "evaluation_metadata.jsonl"
        write_jsonl(meta, path)
        # reference renders in GenEval's layout (images that satisfy each prompt), for checking the scorer
        ref = out / "reference"
        for k, m in enumerate(meta):
            sub = ref / f"{k:05d}"
            write_jsonl([m], sub / "metadata.jsonl")
            _save_png(render(scene_for_metadata(m, item_rng(seed, k, 5)), resolution), sub / "samples" / "0000.png")
            tick(k + 1)
        return path
    # pope: n scenes with 2-4 distinct objects, three splits over the same images
    scenes, names = [], []
    for i in range(n):
        rng = item_rng(seed, i, 6)
        while True:
            scene = sample_scene(rng, SceneSpec(n_objects=int(rng.integers(2, 5))), held_out=None)
            if len({o.name for o in scene.objects}) >= 2:
                break
        name = f"images/pope_{i:07d}.png"
        _save_png(render(scene, resolution), out / name)
        scenes.append(scene)
        names.append(name)
        tick(i + 1)
    for split in POPE_SPLITS:
        items = pope_questions(scenes, names, split, per_scene=2, seed=seed)
        write_jsonl([it.to_json() for it in items], out / f"pope_{split}.jsonl")
    return out / "pope_random.jsonl"


def t2i_rows(jsonl: str | Path, seed: int = 0, style: DataStyle | None = None,
             variants: tuple[str, ...] = ("synthetic", "real")) -> list[str]:
    """The lines of a ``t2i.jsonl`` written by :func:`write_task` with ``seed`` whose variant is in
    ``variants``; with ``style``, each prompt is drawn again in that style. The images stay valid: an item's
    generator draws the scene before the caption, and a caption draws the same numbers in either order, so only
    the wording can differ (e.g. another ``caption_order``) and the result equals a dataset written in that
    style from the start."""
    rows = []
    for line in open(jsonl):
        row = json.loads(line)
        if row["variant"] not in variants:
            continue
        if style is not None:
            row["prompt"] = t2i_item(seed, item_index(row["image"]), row["variant"], style)[0]
            line = json.dumps(row) + "\n"
        rows.append(line)
    return rows


def clean_t2i_rows(jsonl: str | Path, seed: int = 0, style: DataStyle | None = None) -> list[str]:
    """The clean ("synthetic") lines of a ``t2i.jsonl`` (see :func:`t2i_rows`)."""
    return t2i_rows(jsonl, seed, style, ("synthetic",))


def edit_share(lines: Iterable[str], share: float, seed: int, what: str,
               edit: Callable[[dict, np.random.Generator], bool]) -> list[str]:
    """JSON lines with a share ``share`` of them passed to ``edit(row, rng)``, which changes the row in place and
    says whether it did (an unchanged row keeps its line byte for byte). One generator seeded with ``seed`` draws,
    line by line, which lines, and ``edit`` draws from it too. Share 0 gives the lines unchanged. The one loop of
    :func:`plan_rows`, :func:`match_rows` and :func:`look_rows`; ``what`` names the share in errors."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"{what} share must be in [0, 1], got {share}")
    rng = np.random.default_rng(seed)
    out = []
    for line in lines:
        if share > 0 and rng.random() < share:
            row = json.loads(line)
            if edit(row, rng):
                line = json.dumps(row) + "\n"
        out.append(line)
    return out


def plan_rows(lines: list[str], share: float, seed: int = 0) -> list[str]:
    """Text-to-image lines, a share ``share`` of them given the scene's drawing plan (``"plan"``,
    :func:`~januspro.shapes.language.layout_plan`), drawn by :func:`edit_share`."""
    def edit(row: dict, rng: np.random.Generator) -> bool:
        row["plan"] = layout_plan(Scene.from_dict(row["scene"]))
        return True

    return edit_share(lines, share, seed, "plan", edit)


def match_rows(jsonl: str | Path, share: float, seed: int = 0) -> list[str]:
    """The lines of an ``und.jsonl``, a share ``share`` of its chats opened by a judge turn about the same image
    (:func:`with_match_turn`), drawn by :func:`edit_share`. Chats that already open with a judge turn are left
    as they are."""
    def edit(row: dict, rng: np.random.Generator) -> bool:
        if row["kinds"][:1] == ["match"]:
            return False
        row["messages"], row["kinds"] = with_match_turn(row["messages"], row["kinds"], Scene.from_dict(row["scene"]),
                                                        rng)
        return True

    with open(jsonl) as f:
        return edit_share(f, share, seed, "match", edit)


def look_exist_turn(scene: Scene, rng: np.random.Generator) -> list[dict] | None:
    """An existence question and its answer: about a present object or (even odds) about an absent one that the
    image alone answers badly: half of the time a near miss of a present object (its shape in another colour or its
    colour on another shape), half of the time an absent object whose colour and shape the scene shows on the most
    objects (a red circle beside a red square and a blue circle), the conjunction an inventory settles. None when
    the draw names a held-out pair."""
    o = scene.objects[int(rng.integers(len(scene.objects)))]
    present = {x.name for x in scene.objects}
    color, shape = o.color, o.shape
    if rng.random() < 0.5:
        if rng.random() < 0.5:
            absent = [(c, sh) for c in COLORS for sh in SHAPES
                      if f"{c} {sh}" not in present and not HELD_OUT.pair_held(c, sh)]
            # both halves shown (on different objects) first, then the number of objects sharing one of them
            hard = [(any(x.color == c for x in scene.objects) and any(x.shape == sh for x in scene.objects),
                     sum(x.color == c or x.shape == sh for x in scene.objects)) for c, sh in absent]
            best = [a for a, k in zip(absent, hard, strict=True) if k == max(hard)]
            color, shape = best[int(rng.integers(len(best)))]
        else:
            for _ in range(8):
                color, shape = near_miss(o, rng)
                if f"{color} {shape}" not in present:
                    break
            else:
                return None
    if HELD_OUT.pair_held(color, shape):
        return None
    q = f"Is there {group_phrase(color, shape, 1)} in the image?" if rng.random() < 0.5 else \
        f"Is there {group_phrase(color, shape, 1)}?"
    return [{"role": "user", "content": q},
            {"role": "assistant", "content": "yes" if f"{color} {shape}" in present else "no"}]


def look_space_turn(scene: Scene, rng: np.random.Generator) -> tuple[list[dict], str] | None:
    """A spatial question about two objects and its answer (one of :func:`~.language.spatial_questions`, relation
    or "where" at even odds when both are offered) with its kind; None when the scene has no pair to ask about.
    After an inventory, whose grid cells settle most of these, the answer is a comparison of the two objects'
    rows or columns."""
    qs = spatial_questions(scene, rng)
    if not qs:
        return None
    q, a, kind = qs[int(rng.integers(len(qs)))]
    return [{"role": "user", "content": q}, {"role": "assistant", "content": a}], kind


def look_rows(lines: list[str], share: float, seed: int = 0, exist_share: float = 0.0,
              space_share: float = 0.0, cite_share: float = 0.0) -> list[str]:
    """``und.jsonl`` lines, a share ``share`` of their chats opened by a look turn (:func:`with_look_turn`), drawn
    by :func:`edit_share`. A share ``exist_share`` of those chats also ask, right after the look turn, whether the
    image shows an object, present or easily confused (:func:`look_exist_turn`), and a share ``space_share`` of
    them ask next where one object is relative to another (:func:`look_space_turn`), so that answering from the
    inventory pays. In a share ``cite_share`` of them every colour and shape answer after the look turn first cites
    the inventory entry of the object it is about (:func:`~.language.cited_answer`: "blue circle 2 1: blue").
    Chats that already open with a look turn are left as they are."""
    for name, value in (("exist", exist_share), ("space", space_share), ("cite", cite_share)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"look {name} share must be in [0, 1], got {value}")

    def edit(row: dict, rng: np.random.Generator) -> bool:
        if row["kinds"][:1] == ["look"]:
            return False
        scene = Scene.from_dict(row["scene"])
        row["messages"], row["kinds"] = with_look_turn(row["messages"], row["kinds"], scene)
        # each drawn only when its share is on, so data made without it stays as it was
        extra = look_exist_turn(scene, rng) if exist_share > 0 and rng.random() < exist_share else None
        if extra is not None:
            row["messages"][2:2] = extra
            row["kinds"].insert(1, "exist")
        space = look_space_turn(scene, rng) if space_share > 0 and rng.random() < space_share else None
        if space is not None:
            at = 2 if extra is not None else 1  # after the look turn and the existence question
            row["messages"][2 * at:2 * at] = space[0]
            row["kinds"].insert(at, space[1])
        if cite_share > 0 and rng.random() < cite_share:
            for t, kind in enumerate(row["kinds"][1:], start=1):
                q, a = row["messages"][2 * t], row["messages"][2 * t + 1]
                a["content"] = cited_answer(scene, q["content"], a["content"], kind)
        return True

    return edit_share(lines, share, seed, "look", edit)


def count_rows(folder: str | Path, n: int, seed: int = 0, resolution: int = 64) -> list[str]:
    """``n`` counting chats (:func:`~januspro.shapes.judge.count_chat`) as ``und.jsonl`` lines, their images
    rendered into ``folder/images/count_<i>.png`` (paths relative to ``folder``, where the lines' JSONL goes).
    Item ``i`` is drawn from its own generator seeded by ``(seed, i)``."""
    if n < 0:
        raise ValueError(f"the number of counting chats must be >= 0, got {n}")
    rows = []
    for i in range(n):
        messages, kinds, scene = count_chat(item_rng(seed, i, 7))
        name = image_name("count", i)
        _save_png(render(scene, resolution), Path(folder) / name)
        rows.append(json.dumps({"messages": messages, "kinds": kinds, "images": [name],
                                "scene": json.loads(scene.to_json())}) + "\n")
    return rows


def held_out_violations(rows: list[dict]) -> list[str]:
    """Training rows (t2i/und/text) that show or mention a held-out combination (should be none)."""
    from .language import mentions_held_out

    bad = []
    for r in rows:
        text = r.get("prompt") or r.get("text") or " ".join(m["content"] for m in r.get("messages", []))
        if mentions_held_out(text):
            bad.append(text)
        elif "scene" in r and not HELD_OUT.scene_is_clean(Scene.from_dict(r["scene"])):
            bad.append(f"scene: {r['scene']}")
    return bad
