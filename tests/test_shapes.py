"""The shapes world: renderer, detector, language, suites, scorers, writers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageFilter

from januspro.shapes.datasets import (
    DataStyle,
    classname_item,
    held_out_violations,
    t2i_item,
    und_item,
    write_task,
)
from januspro.shapes.detect import detect
from januspro.shapes.language import mentions_held_out, qa_pairs, strip_citation, text_line
from januspro.shapes.render import render
from januspro.shapes.scoring import (
    evaluate_geneval,
    normalize_answer,
    pope_answer,
    pope_metrics,
    score_geneval_folder,
    summarize,
    vqa_accuracy,
)
from januspro.shapes.suites import TAGS, geneval_suite, pope_questions, scene_for_metadata
from januspro.shapes.world import HELD_OUT, Obj, Scene, SceneSpec, relations, sample_scene


def _matches(scene: Scene, dets) -> bool:
    gt = sorted((o.shape, o.color, o.size) for o in scene.objects)
    if gt != sorted((d.shape, d.color, d.size) for d in dets):
        return False
    return all(any(d.shape == o.shape and d.color == o.color and abs(d.cx - o.cx) < 0.06 and abs(d.cy - o.cy) < 0.06
                   for d in dets) for o in scene.objects)


def _degrade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blur, a global colour shift and pixel noise: about what a VQ reconstruction does."""
    x = np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(0.8))).astype(np.float32)
    x += rng.uniform(-15, 15, 3) + rng.normal(0, 4, img.shape)
    return np.clip(x, 0, 255).astype(np.uint8)


def test_detector_exact_on_2000_scenes():
    rng = np.random.default_rng(123)
    scenes = [sample_scene(rng) for _ in range(2000)]
    clean = np.mean([_matches(s, detect(render(s))) for s in scenes])
    degraded = np.mean([_matches(s, detect(_degrade(render(s), rng))) for s in scenes])
    print(f"detector exact: clean {clean:.4f}, degraded {degraded:.4f}")
    assert clean >= 0.995
    assert degraded >= 0.99


def test_detector_reports_unknown_blobs():
    img = render(Scene((Obj("circle", "red", "large", 0.25, 0.25),)))
    img[40:44, 10:60] = (40, 90, 220)  # a long blue bar: no shape of this world
    dets = detect(img)
    assert {d.shape for d in dets} == {"circle", "unknown"}
    assert next(d for d in dets if d.shape == "unknown").color == "blue"


def test_other_resolutions_render_and_detect():
    rng = np.random.default_rng(7)
    for res in (32, 128):
        scenes = [sample_scene(rng) for _ in range(100)]
        assert render(scenes[0], res).shape == (res, res, 3)
        assert np.mean([_matches(s, detect(render(s, res))) for s in scenes]) >= 0.97


def test_render_determinism():
    # no speed assertion here (it failed on a host busy with training); ~8000 scenes/s on one core
    rng = np.random.default_rng(0)
    scenes = [sample_scene(rng) for _ in range(200)]
    first = [render(s) for s in scenes[:20]]
    assert all(np.array_equal(a, render(s)) for a, s in zip(first, scenes[:20], strict=True))
    again = [sample_scene(np.random.default_rng(0)) for _ in range(1)]
    assert again[0] == scenes[0]
    assert Scene.from_json(scenes[5].to_json()) == scenes[5]


def test_objects_never_overlap():
    rng = np.random.default_rng(1)
    for _ in range(500):
        s = sample_scene(rng, SceneSpec(n_objects=4, sizes=("large",)))
        for a in s.objects:
            for b in s.objects:
                if a is not b:
                    ax0, ay0, ax1, ay1 = a.bbox
                    bx0, by0, bx1, by1 = b.bbox
                    assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0


def test_language_is_true_of_the_scene():
    rng = np.random.default_rng(2)
    for _ in range(200):
        s = sample_scene(rng)
        for q, a, kind in qa_pairs(s, rng):
            if kind == "count" and q.startswith("How many objects"):
                assert a == str(len(s.objects))
            if kind == "color":
                shape = next(w for w in q.rstrip("?").split() if w in ("circle", "square", "triangle", "diamond"))
                assert [o.color for o in s.objects if o.shape == shape] == [a]
            if kind == "exist":
                words = q.replace("?", "").split()
                color, shape = words[3], words[4]
                assert (a == "yes") == any(o.color == color and o.shape == shape for o in s.objects)


def test_held_out_never_in_training_data():
    rows = []
    for i in range(3000):
        prompt, scene = t2i_item(11, i, "real" if i % 2 else "synthetic")
        rows.append({"prompt": prompt, "scene": json.loads(scene.to_json())})
        messages, _, scene = und_item(11, i)
        rows.append({"messages": messages, "scene": json.loads(scene.to_json())})
        rows.append({"text": text_line(np.random.default_rng([11, i]))})
    assert held_out_violations(rows) == []
    # and the check itself can fail
    assert mentions_held_out("a purple triangle and a red circle")
    assert mentions_held_out("a red circle above a green triangle")
    bad = Scene((Obj("triangle", "purple", "small", 0.2, 0.2),))
    assert held_out_violations([{"prompt": "x", "scene": json.loads(bad.to_json())}])


def test_data_style_layout_turns_and_hard_negatives():
    canonical = DataStyle(synthetic_jitter=0.0, single_turn_share=0.0, max_turns=8, hard_negatives=1.0)
    centres = {round((i + 0.5) / 3, 4) for i in range(3)}
    for i in range(200):
        _, scene = t2i_item(3, i, "synthetic", canonical)
        assert all(o.cx in centres and o.cy in centres for o in scene.objects)
        _, one = classname_item(3, i, canonical)
        assert one.objects[0].cx in centres
    # the "real" half stays jittered, and the plain style is the default
    real = [t2i_item(3, i, "real", canonical)[1] for i in range(50)]
    assert any(o.cx not in centres for s in real for o in s.objects)
    assert t2i_item(3, 7) == t2i_item(3, 7, "synthetic", DataStyle())
    assert und_item(3, 7) == und_item(3, 7, DataStyle())
    turns = [len(und_item(3, i, canonical)[0]) // 2 for i in range(200)]
    plain = [len(und_item(3, i)[0]) // 2 for i in range(200)]
    assert max(turns) == 8 and min(turns) >= 2 and max(plain) <= 3 and np.mean(turns) > 2 * np.mean(plain)
    # hard negatives: absent objects that share the colour or the shape of a present one
    near = total = 0
    for i in range(300):
        messages, kinds, scene = und_item(4, i, canonical)
        for q, a, k in zip(messages[0::2], messages[1::2], kinds, strict=True):
            if k == "exist" and a["content"] == "no":
                words = q["content"].replace("?", "").split()
                color, shape = words[-5:-3] if words[-1] == "image" else words[-2:]
                total += 1
                near += any(o.color == color or o.shape == shape for o in scene.objects)
    assert total > 50 and near == total
    with pytest.raises(ValueError):
        DataStyle(max_turns=0)


def test_kind_balance_evens_out_question_kinds_and_keeps_the_plain_data():
    from collections import Counter

    def shares(style, n=600):
        c = Counter(k for i in range(n) for k in und_item(5, i, style)[1])
        return {k: v / sum(c.values()) for k, v in c.items()}

    plain, balanced = shares(DataStyle()), shares(DataStyle(kind_balance=1.0))
    # drawn uniformly over a scene's questions, counts dominate and spatial questions are rare
    assert plain["count"] > 0.3 and plain["relation"] + plain["where"] < 0.12
    assert balanced["count"] < 0.25 and balanced["relation"] + balanced["where"] > 0.15
    assert balanced["where"] > plain["where"] and balanced["relation"] > 1.5 * plain["relation"]
    # a balanced chat of several turns asks each kind at most once
    multi = DataStyle(single_turn_share=0.0, max_turns=4, kind_balance=1.0)
    for i in range(100):
        kinds = und_item(5, i, multi)[1]
        assert len(kinds) == len(set(kinds))
    # the option off leaves the plain data's random stream (and so every existing dataset) unchanged
    assert und_item(5, 11, DataStyle(kind_balance=0.0)) == und_item(5, 11)
    with pytest.raises(ValueError, match="kind_balance"):
        DataStyle(kind_balance=1.5)


def test_describe_share_turns_chats_into_true_captions_and_keeps_the_plain_data():
    from januspro.shapes.world import SHAPES

    style = DataStyle(describe_share=0.5)
    items = [und_item(5, i, style) for i in range(400)]
    described = [(m, s) for m, k, s in items if k == ["describe"]]
    assert 0.4 < len(described) / len(items) < 0.6
    for messages, scene in described:
        assert len(messages) == 2 and messages[0]["content"].startswith("<image_placeholder>\n")
        answer = messages[1]["content"]
        assert not mentions_held_out(answer)
        # a caption names every shape the scene has and none it lacks
        present = {o.shape for o in scene.objects}
        assert {s for s in SHAPES if s in answer} == present, (answer, present)
    # the other chats are the usual questions; the option off leaves the plain data unchanged
    assert any(k != ["describe"] for _, k, _ in items)
    assert und_item(5, 11, DataStyle(describe_share=0.0)) == und_item(5, 11)
    with pytest.raises(ValueError, match="describe_share"):
        DataStyle(describe_share=-0.1)


def test_match_prompts_are_labelled_as_geneval_scores_the_rendered_image():
    """The judge's training answers: yes exactly when GenEval's scorer, run by the detector on the rendered image,
    passes the prompt; every category asked, both answers common, no held-out combination named."""
    from collections import Counter

    from januspro.shapes.judge import match_prompt, satisfies
    from januspro.shapes.suites import TAGS
    from januspro.shapes.world import sample_scene

    rng = np.random.default_rng(3)
    tags, yes = Counter(), 0
    for _ in range(240):
        scene = sample_scene(rng)
        meta = match_prompt(scene, rng)
        assert meta is not None and not mentions_held_out(meta["prompt"])
        label = satisfies(scene, meta)
        assert evaluate_geneval(detect(render(scene)), meta)[0] == label, (meta, scene)
        tags[meta["tag"]] += 1
        yes += label
    assert set(tags) == set(TAGS)
    assert 0.3 < yes / 240 < 0.7


def test_match_prompts_ask_the_errors_a_drawing_makes():
    """On a scene of a red circle left of a blue square: the attribution swap, the wrong relation and a wrong
    count are false; the true prompts are true."""
    from januspro.shapes.judge import satisfies
    from januspro.shapes.world import Obj, Scene

    scene = Scene((Obj("circle", "red", "medium", 0.2, 0.5), Obj("square", "blue", "medium", 0.8, 0.5)))

    def meta(*include, exclude=()):
        return {"include": list(include), "exclude": list(exclude)}

    circle, square = {"class": "circle", "count": 1}, {"class": "square", "count": 1}
    assert satisfies(scene, meta({**circle, "color": "red"}, {**square, "color": "blue"}))
    assert not satisfies(scene, meta({**circle, "color": "blue"}, {**square, "color": "red"}))
    assert satisfies(scene, meta(square, {**circle, "position": ["left of", 0]}))
    assert not satisfies(scene, meta(square, {**circle, "position": ["right of", 0]}))
    assert not satisfies(scene, meta({"class": "circle", "count": 2}, exclude=[{"class": "circle", "count": 3}]))
    assert not satisfies(scene, meta({"class": "triangle", "count": 1}))


def test_match_share_opens_chats_with_a_judge_turn_and_keeps_the_plain_data():
    style = DataStyle(match_share=0.5)
    items = [(und_item(5, i, style), und_item(5, i)) for i in range(300)]
    opened = [(got, plain) for got, plain in items if got[1][0] == "match"]
    assert 0.4 < len(opened) / len(items) < 0.6
    answers = set()
    for (messages, kinds, _), (plain, plain_kinds, _) in opened:
        tag = "<image_placeholder>\n"
        question = messages[0]["content"]
        assert question.startswith(tag) and question.endswith("?") and not mentions_held_out(question)
        answers.add(messages[1]["content"])
        # the image moves to the judge turn; the chat's own questions follow unchanged
        assert kinds[1:] == plain_kinds
        assert messages[2]["content"] == plain[0]["content"][len(tag):]
        assert messages[3:] == plain[1:]
        assert sum(m["content"].count("<image_placeholder>") for m in messages) == 1
    assert answers == {"yes", "no"}
    # the chats without one are the plain chats; the option off leaves the plain data unchanged
    assert all(got == plain for got, plain in items if got[1][0] != "match")
    assert und_item(5, 11, DataStyle(match_share=0.0)) == und_item(5, 11)
    with pytest.raises(ValueError, match="match_share"):
        DataStyle(match_share=1.5)


def test_count_chats_are_labelled_by_the_detector_and_show_the_counts_drawings_miss(tmp_path):
    """Counting chats: the judge answer is GenEval's verdict by the detector on the rendered image, the count
    answer the detector's count; both answers common; counts 1-6 with other shapes beside them; written as
    und.jsonl lines whose images exist and whose item i does not depend on n."""
    import json
    from collections import Counter

    from januspro.shapes.datasets import count_rows
    from januspro.shapes.judge import COUNT_CHAT_MAX

    rows = [json.loads(r) for r in count_rows(tmp_path, 160, seed=4)]
    answers, counts, crowded = Counter(), Counter(), 0
    for row in rows:
        m = row["messages"]
        assert row["kinds"] == ["match", "count"] and len(m) == 4
        assert m[0]["content"].startswith("<image_placeholder>\n") and "<image_placeholder>" not in m[2]["content"]
        scene = Scene.from_dict(row["scene"])
        assert HELD_OUT.scene_is_clean(scene)
        found = detect(np.asarray(Image.open(tmp_path / row["images"][0]).convert("RGB")))
        prompt = m[0]["content"].split("\n", 1)[1]
        words = prompt.rstrip("?").split()
        n, shape = {"two": 2, "three": 3, "four": 4}[words[-2]], words[-1].rstrip("s")
        meta = {"include": [{"class": shape, "count": n}], "exclude": [{"class": shape, "count": n + 1}]}
        assert m[1]["content"] == ("yes" if evaluate_geneval(found, meta)[0] else "no"), (prompt, scene)
        assert shape in m[2]["content"] and m[3]["content"] == str(sum(d.shape == shape for d in found))
        answers[m[1]["content"]] += 1
        counts[int(m[3]["content"])] += 1
        crowded += len(scene.objects) > int(m[3]["content"])
    assert 0.35 < answers["yes"] / len(rows) < 0.65
    assert set(counts) == set(range(1, COUNT_CHAT_MAX + 1)) and crowded > 0
    assert count_rows(tmp_path / "again", 5, seed=4) == [json.dumps(r) + "\n" for r in rows[:5]]
    assert count_rows(tmp_path, 0) == []
    with pytest.raises(ValueError, match="counting chats"):
        count_rows(tmp_path, -1)


def test_simple_scenes_draw_the_three_families_and_keep_the_plain_data():
    from collections import Counter

    families: Counter[str] = Counter()
    for i in range(300):
        prompt, scene = t2i_item(2, i, "synthetic", DataStyle(simple_scenes=1.0))
        shapes = [o.shape for o in scene.objects]
        assert HELD_OUT.scene_is_clean(scene) and not mentions_held_out(prompt)
        if len(shapes) == 1:
            families["one"] += 1
        elif len(set(shapes)) == 1:
            families[f"{len(shapes)} of one shape"] += 1
        else:
            assert len(shapes) == 2 and len(set(shapes)) == 2, shapes
            families["two shapes"] += 1
    # each family a third of the scenes, the counts of one shape split between 2, 3 and 4
    assert 75 < families["one"] < 125 and 75 < families["two shapes"] < 125
    assert all(20 < families[f"{n} of one shape"] < 55 for n in (2, 3, 4)), families
    # at 0.5, half are random scenes: ~22% have 3-4 objects of several shapes, which no simple family has
    mixed = sum(len(sc.objects) > 2 and len({o.shape for o in sc.objects}) > 1
                for sc in (t2i_item(2, i, "synthetic", DataStyle(simple_scenes=0.5))[1] for i in range(300)))
    assert 30 < mixed < 110, mixed
    # the option off leaves the plain data's random stream unchanged
    assert t2i_item(2, 9, "synthetic", DataStyle(simple_scenes=0.0)) == t2i_item(2, 9)
    assert t2i_item(2, 9, "real", DataStyle(simple_scenes=1.0)) == t2i_item(2, 9, "real")  # clean scenes only
    with pytest.raises(ValueError, match="simple_scenes"):
        DataStyle(simple_scenes=-0.1)


def test_geneval_suite_schema_and_heldout():
    meta = geneval_suite(12, seed=0)
    assert {m["tag"] for m in meta} == set(TAGS) and len(meta) == 72
    for m in meta:
        assert set(m) <= {"tag", "include", "exclude", "prompt", "heldout"}
        if m["tag"] == "counting":
            assert m["exclude"][0]["count"] == m["include"][0]["count"] + 1
        if m["tag"] == "position":
            assert m["include"][1]["position"][1] == 0
    held = [m for m in meta if m["heldout"]]
    assert held and all(m["tag"] in ("colors", "color_attr", "position") for m in held)
    assert all(mentions_held_out(m["prompt"]) for m in held)
    assert not any(mentions_held_out(m["prompt"]) for m in meta if not m["heldout"])


def test_geneval_scorer_one_on_own_renders_chance_on_shuffled():
    meta = geneval_suite(16, seed=1)
    rng = np.random.default_rng(3)
    images = [render(scene_for_metadata(m, rng)) for m in meta]
    rows = [{"tag": m["tag"], "correct": evaluate_geneval(detect(img), m)[0]} for m, img in zip(meta, images,
                                                                                                 strict=True)]
    assert summarize(rows).overall == 1.0
    perm = rng.permutation(len(images))
    shuffled = [{"tag": m["tag"], "correct": evaluate_geneval(detect(images[p]), m)[0]}
                for m, p in zip(meta, perm, strict=True)]
    score = summarize(shuffled).overall
    print(f"shuffled GenEval-style overall: {score:.3f}")
    assert score < 0.45


def _one(shape, color, cx, cy, size="medium"):
    return Obj(shape, color, size, cx, cy)


def test_geneval_rules_flip_the_verdict():
    two = {"tag": "counting", "include": [{"class": "circle", "count": 2}],
           "exclude": [{"class": "circle", "count": 3}], "prompt": "two circles"}
    img2 = render(Scene((_one("circle", "red", 0.2, 0.2), _one("circle", "blue", 0.8, 0.8))))
    img3 = render(Scene((_one("circle", "red", 0.2, 0.2), _one("circle", "blue", 0.8, 0.8),
                         _one("circle", "green", 0.5, 0.5))))
    img1 = render(Scene((_one("circle", "red", 0.2, 0.2),)))
    assert evaluate_geneval(detect(img2), two)[0]
    assert not evaluate_geneval(detect(img3), two)[0]  # exclusion: three is not two
    assert not evaluate_geneval(detect(img1), two)[0]  # count
    color = {"tag": "colors", "include": [{"class": "circle", "count": 1, "color": "red"}], "prompt": "a red circle"}
    assert evaluate_geneval(detect(img1), color)[0]
    assert not evaluate_geneval(detect(render(Scene((_one("circle", "blue", 0.2, 0.2),)))), color)[0]
    pos = {"tag": "position", "include": [{"class": "square", "count": 1},
                                          {"class": "circle", "count": 1, "position": ["left of", 0]}],
           "prompt": "a circle left of a square"}
    left = render(Scene((_one("circle", "red", 0.17, 0.5), _one("square", "blue", 0.83, 0.5))))
    right = render(Scene((_one("circle", "red", 0.83, 0.5), _one("square", "blue", 0.17, 0.5))))
    assert evaluate_geneval(detect(left), pos)[0] and not evaluate_geneval(detect(right), pos)[0]
    # the margin: a small horizontal offset with a large vertical one is "above", not "left of"
    assert relations((0.40, 0.1, 0.5, 0.2), (0.42, 0.6, 0.52, 0.7)) == {"above"}
    assert relations((0.0, 0.0, 0.2, 0.2), (0.05, 0.0, 0.25, 0.2)) == set()
    attr = {"tag": "color_attr", "include": [{"class": "circle", "count": 1, "color": "red"},
                                             {"class": "square", "count": 1, "color": "blue"}], "prompt": "x"}
    swapped = render(Scene((_one("circle", "blue", 0.17, 0.5), _one("square", "red", 0.83, 0.5))))
    assert evaluate_geneval(detect(left), attr)[0] and not evaluate_geneval(detect(swapped), attr)[0]


def test_pope_splits_balance_and_rules():
    rng = np.random.default_rng(4)
    scenes = []
    while len(scenes) < 60:
        s = sample_scene(rng, SceneSpec(n_objects=3), held_out=None)
        if len({o.name for o in s.objects}) >= 2:
            scenes.append(s)
    names = [f"{i}.png" for i in range(len(scenes))]
    for split in ("random", "popular", "adversarial"):
        items = pope_questions(scenes, names, split, per_scene=2, seed=1)
        assert len(items) == 240 and sum(it.label == "yes" for it in items) == 120
        for it, scene in zip(items[::4], scenes, strict=False):
            present = {o.name for o in scenes[names.index(it.image)].objects}
            assert (it.label == "yes") == (it.object in present)
            assert it.text.startswith("Is there a") and it.text.endswith("in the image?")
            del scene
    adv = pope_questions(scenes, names, "adversarial", per_scene=2, seed=1)
    # adversarial negatives mostly share a colour or a shape with an object in the image
    shares = [any(n.split()[0] == it.object.split()[0] or n.split()[1] == it.object.split()[1]
                  for n in {o.name for o in scenes[names.index(it.image)].objects})
              for it in adv if it.label == "no"]
    assert np.mean(shares) > 0.9
    with pytest.raises(ValueError, match="unknown POPE split"):
        pope_questions(scenes, names, "hard")


def test_pope_metrics_by_hand():
    preds = ["Yes, there is.", "No.", "yes", "There is not a circle.", "no", "Yes"]
    labels = ["yes", "no", "no", "yes", "no", "yes"]
    # parsed: yes, no, yes, no, no, yes -> tp 2, fp 1, fn 1, tn 2
    m = pope_metrics(preds, labels)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3) and m["yes_ratio"] == pytest.approx(0.5)
    assert pope_answer("No, there is not.") == "no" and pope_answer("Nope") == "yes"


def test_vqa_normalization():
    assert normalize_answer("Two.") == "2" and normalize_answer("the Red!") == "red"
    assert normalize_answer("Left of") == "left of"
    assert vqa_accuracy(["Three", "blue.", "yes"], ["3", "Blue", "no"]) == pytest.approx(2 / 3)
    # a cited answer is scored on what follows its citation; other colons are text
    assert vqa_accuracy(["blue circle 2 1: blue", "red square 0 0, red diamond 1 2: 2", "green diamond 2 2 : Diamond"],
                        ["blue", "2", "diamond"]) == 1.0
    assert strip_citation("The time is 10:30") == "The time is 10:30" and strip_citation("no") == "no"
    assert strip_citation("cyan circle 0 0: blue") == "blue" and not vqa_accuracy(["blue circle 2 1: red"], ["blue"])
    assert strip_citation("pink circle 0 0: blue") == "pink circle 0 0: blue"  # not an inventory entry


def test_writers_are_deterministic_and_documented(tmp_path):
    for task in ("t2i", "classname", "und", "text"):
        a = write_task(task, tmp_path / "a", 20, seed=5)
        b = write_task(task, tmp_path / "b", 20, seed=5)
        assert a.read_bytes() == b.read_bytes()
    for img in (tmp_path / "a" / "images").iterdir():
        assert img.read_bytes() == (tmp_path / "b" / "images" / img.name).read_bytes()
    row = json.loads((tmp_path / "a" / "und.jsonl").read_text().splitlines()[0])
    assert row["messages"][0]["content"].startswith("<image_placeholder>\n") and row["images"][0].endswith(".png")
    c = write_task("t2i", tmp_path / "c", 20, seed=6)
    assert c.read_bytes() != a.parent.joinpath("t2i.jsonl").read_bytes()


def test_parallel_writer_gives_the_same_files(tmp_path, monkeypatch):
    import januspro.shapes.datasets as ds

    monkeypatch.setattr(ds, "_CHUNK", 4)  # 22 items -> 6 chunks, the last one short
    for task in ("t2i", "und", "text"):
        a = write_task(task, tmp_path / "one", 22, seed=7, resolution=32, variant="mixed" if task == "t2i" else
                       "synthetic")
        ticks = []
        b = write_task(task, tmp_path / "two", 22, seed=7, resolution=32, variant="mixed" if task == "t2i" else
                       "synthetic", workers=2, progress=ticks.append)
        assert a.read_bytes() == b.read_bytes() and len(a.read_text().splitlines()) == 22
        assert ticks == [4, 8, 12, 16, 20, 22]
    names = sorted(p.name for p in (tmp_path / "one" / "images").iterdir())
    assert len(names) == 44 and names == sorted(p.name for p in (tmp_path / "two" / "images").iterdir())
    for name in names:
        assert (tmp_path / "one" / "images" / name).read_bytes() == (tmp_path / "two" / "images" / name).read_bytes()
    with pytest.raises(ValueError, match="workers"):
        write_task("t2i", tmp_path / "bad", 4, workers=0)


def test_geneval_layout_runner(tmp_path):
    write_task("geneval", tmp_path / "g", 4, seed=0)
    report = score_geneval_folder(tmp_path / "g" / "reference", tmp_path / "report")
    assert report.overall == 1.0 and report.n_images == 24
    assert set(report.per_split) == {"seen", "heldout"}
    assert (tmp_path / "report" / "report.md").read_text().startswith("| split | overall |")
    # the layout is GenEval's: <index>/metadata.jsonl equal to the input line, samples/NNNN.png
    lines = (tmp_path / "g" / "evaluation_metadata.jsonl").read_text().splitlines()
    for k, line in enumerate(lines):
        sub = tmp_path / "g" / "reference" / f"{k:05d}"
        assert json.loads((sub / "metadata.jsonl").read_text()) == json.loads(line)
        assert (sub / "samples" / "0000.png").is_file()


def test_pope_writer(tmp_path):
    write_task("pope", tmp_path / "p", 10, seed=0)
    for split in ("random", "popular", "adversarial"):
        rows = [json.loads(x) for x in (tmp_path / "p" / f"pope_{split}.jsonl").read_text().splitlines()]
        assert len(rows) == 40 and sum(r["label"] == "yes" for r in rows) == 20
        assert all((tmp_path / "p" / r["image"]).is_file() for r in rows)


def test_held_out_scene_sampling_respects_triples():
    rng = np.random.default_rng(9)
    for _ in range(300):
        s = sample_scene(rng)
        assert HELD_OUT.scene_is_clean(s)


def test_shapes_tokenizer(tmp_path):
    from januspro.processing.tokenizer import JanusTokenizer
    from januspro.shapes.tokenizer import build_shapes_tokenizer

    build_shapes_tokenizer(tmp_path, vocab_size=400, n=400)
    tok = JanusTokenizer.from_dir(tmp_path)
    assert tok.vocab_size <= 400
    text = "<|User|>: <image_placeholder>\nWhat color is the diamond?\n\n<|Assistant|>: purple"
    ids = tok.encode(text, add_bos=False)
    assert tok.decode(ids, skip_special_tokens=False) == text
    assert len(tok.encode("a red circle left of a blue square", add_bos=False)) <= 12  # mostly whole words
    assert tok.token_to_id("<|User|>") is not None and tok.image_id != tok.pad_id


def test_patch_labels_name_the_object_under_each_patch():
    from januspro.shapes.render import PATCH_CLASSES, patch_class, patch_labels
    from januspro.shapes.world import COLORS, SHAPES, Obj, Scene, sample_scene

    classes = {patch_class(s, c) for s in SHAPES for c in COLORS}
    assert classes == set(range(1, PATCH_CLASSES))
    big = Obj("square", "red", "large", 0.5, 0.5)
    lab = patch_labels(Scene((big,)), 64, 8).reshape(8, 8)
    assert (lab[3:5, 3:5] == patch_class("square", "red")).all() and lab[0, 0] == 0 and lab[7, 7] == 0
    # a later object drawn on top owns the patches it covers
    top = Obj("circle", "blue", "small", 0.42, 0.42)
    lab2 = patch_labels(Scene((big, top)), 64, 8).reshape(8, 8)
    assert lab2[3, 3] == patch_class("circle", "blue") and lab2[4, 4] == patch_class("square", "red")
    assert patch_labels(Scene((top, big)), 64, 8).reshape(8, 8)[3, 3] == patch_class("square", "red")
    assert (patch_labels(Scene(()), 64, 8) == 0).all()
    with pytest.raises(ValueError, match="divide"):
        patch_labels(Scene((big,)), 64, 7)
    # every labelled patch shows its object's colour in the rendering; every object owns a patch
    rng = np.random.default_rng(0)
    names = [(s, c) for s in SHAPES for c in COLORS]
    for _ in range(30):
        scene = sample_scene(rng, held_out=None)
        img = render(scene, 64).astype(int)
        lab = patch_labels(scene, 64, 8)
        for k in np.flatnonzero(lab):
            shape, colour = names[lab[k] - 1]
            cell = img[(k // 8) * 8:(k // 8) * 8 + 8, (k % 8) * 8:(k % 8) * 8 + 8].reshape(-1, 3)
            assert (np.abs(cell - np.array(COLORS[colour])).sum(1) < 30).sum() >= 4
        assert {patch_class(o.shape, o.color) for o in scene.objects} == set(lab[lab > 0].tolist())


def test_raster_order_captions_name_groups_where_the_image_codes_reach_them():
    from januspro.shapes.language import caption, raster_key

    lower_left = Obj("circle", "red", "small", 0.2, 0.8)
    top_right = Obj("square", "blue", "small", 0.8, 0.2)
    middle = Obj("triangle", "green", "small", 0.5, 0.5)
    scene = Scene((lower_left, top_right, middle))
    assert raster_key(top_right) < raster_key(middle) < raster_key(lower_left)
    for k in range(20):
        rng = np.random.default_rng(k)
        text = caption(scene, rng, dense=False, with_color=True, order="raster")
        assert text.index("blue square") < text.index("green triangle") < text.index("red circle"), text
    # "mixed" lists these groups in shape order or shuffled, so other orders occur
    mixed = {caption(scene, np.random.default_rng(k), dense=False, with_color=True) for k in range(20)}
    assert any(t.index("red circle") < t.index("blue square") for t in mixed)
    # groups of several objects are placed by their first member; same top row: left first
    row = Scene((Obj("diamond", "cyan", "small", 0.7, 0.3), Obj("circle", "red", "small", 0.2, 0.9),
                 Obj("circle", "red", "small", 0.3, 0.3)))
    assert caption(row, np.random.default_rng(0), dense=False, with_color=True, order="raster").endswith(
        "two red circles and a cyan diamond")
    with pytest.raises(ValueError, match="order"):
        caption(scene, np.random.default_rng(0), order="sideways")
    with pytest.raises(ValueError, match="caption_order"):
        DataStyle(caption_order="sideways")


def test_raster_recaption_of_a_mixed_dataset_equals_one_written_in_raster(tmp_path):
    # a caption draws the same random numbers in either order, so the generator's later draws (the "real"
    # variant's jitter and specks) and so the images do not depend on the order
    from januspro.shapes.datasets import t2i_rows, write_task

    raster = DataStyle(caption_order="raster")
    write_task("t2i", tmp_path / "mixed", 24, seed=3, variant="mixed")
    write_task("t2i", tmp_path / "raster", 24, seed=3, variant="mixed", style=raster)
    mixed_rows = [json.loads(line) for line in open(tmp_path / "mixed" / "t2i.jsonl")]
    assert {r["variant"] for r in mixed_rows} == {"synthetic", "real"}
    recaptioned = t2i_rows(tmp_path / "mixed" / "t2i.jsonl", 3, raster)
    assert "".join(recaptioned) == (tmp_path / "raster" / "t2i.jsonl").read_text()
    assert any(json.loads(a)["prompt"] != b["prompt"] for a, b in zip(recaptioned, mixed_rows, strict=True))
    for r in mixed_rows:
        assert (tmp_path / "mixed" / r["image"]).read_bytes() == (tmp_path / "raster" / r["image"]).read_bytes()
    real = t2i_rows(tmp_path / "mixed" / "t2i.jsonl", 3, variants=("real",))
    assert len(real) == 12 and all('"variant": "real"' in line for line in real)
