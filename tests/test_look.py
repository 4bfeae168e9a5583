"""Look, then answer: look turns in the training chats (shapes.datasets.with_look_turn / look_rows, the recipe's
--sft-look-share) and understanding that first answers the look question (generation/look.py, --look)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from helpers import make_tiny_checkpoint
from januspro.checkpoint import load_model, load_processor
from januspro.cli import main
from januspro.generation.look import look_first, split_for_look
from januspro.generation.text import TextGenParams, generate_text
from januspro.processing.processor import ConversationError
from januspro.shapes.datasets import look_rows, with_look_turn
from januspro.shapes.language import (
    LOOK_QUESTION,
    cited_answer,
    conversation,
    layout_plan,
    mentions_held_out,
    plan_entry,
    ref_phrase,
    relation_pairs,
    strip_citation,
)
from januspro.shapes.world import Scene, relations, sample_scene


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("look"))


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    model = load_model(tiny_dir).eval()
    return model, load_processor(model)


def _chat_lines(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        scene = sample_scene(rng)
        messages, kinds = conversation(scene, rng, turns=2)
        lines.append(json.dumps({"messages": messages, "kinds": kinds, "images": [f"images/{i}.png"],
                                 "scene": json.loads(scene.to_json())}) + "\n")
    return lines


def test_look_turn_opens_the_chat_with_the_image_and_the_inventory():
    rng = np.random.default_rng(3)
    scene = sample_scene(rng)
    messages, kinds = conversation(scene, rng, turns=2)
    out, out_kinds = with_look_turn(messages, kinds, scene)
    assert out[0] == {"role": "user", "content": "<image_placeholder>\n" + LOOK_QUESTION}
    assert out[1] == {"role": "assistant", "content": layout_plan(scene)}
    assert out_kinds == ["look"] + kinds
    # the image moved: the chat's own first question follows without it, the rest unchanged
    assert out[2]["content"] == messages[0]["content"].replace("<image_placeholder>\n", "")
    assert out[3:] == messages[1:]
    assert sum(m["content"].count("<image_placeholder>") for m in out) == 1
    assert messages[0]["content"].startswith("<image_placeholder>\n")  # the input is not changed


def test_look_rows_give_a_seeded_share_of_chats_a_look_turn():
    lines = _chat_lines(300)
    assert look_rows(lines, 0.0) == lines
    out = look_rows(lines, 0.5, seed=2)
    assert out == look_rows(lines, 0.5, seed=2)
    rows = [json.loads(x) for x in out]
    opened = [r for r in rows if r["kinds"][0] == "look"]
    assert 100 < len(opened) < 200
    for r in opened:
        assert r["messages"][1]["content"] == layout_plan(Scene.from_dict(r["scene"]))
    for line, r in zip(lines, rows, strict=True):  # the other chats are unchanged
        if r["kinds"][0] != "look":
            assert json.loads(line) == r
    everything = look_rows(out, 1.0, seed=5)  # chats already opened by a look turn get no second one
    assert all([k for k in json.loads(x)["kinds"] if k == "look"] == ["look"] for x in everything)
    with pytest.raises(ValueError, match="look share"):
        look_rows(lines, 1.5)


def test_split_for_look_moves_the_first_turn_images_to_the_look_turn():
    img_a, img_b = Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8), "red")
    conv = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "image", "image": img_a}, {"type": "text", "text": "Is there a circle?"}]},
            {"role": "assistant", "content": "yes"},
            {"role": "user", "content": "<image_placeholder>\nAnd here?", "images": [img_b]}]
    look, rest = split_for_look(conv, "List the objects.")
    assert look == [{"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "<image_placeholder>\nList the objects.", "images": [img_a]}]
    assert rest == [{"role": "user", "content": "Is there a circle?", "images": []},
                    {"role": "assistant", "content": "yes", "images": []},
                    {"role": "user", "content": "<image_placeholder>\nAnd here?", "images": [img_b]}]
    assert split_for_look([{"role": "user", "content": "hello"}], "List the objects.") is None  # no image
    with pytest.raises(ConversationError, match="only images"):
        split_for_look([{"role": "user", "content": [{"type": "image", "image": img_a}]}], "List the objects.")
    with pytest.raises(ValueError, match="empty"):
        split_for_look(conv, " ")
    with pytest.raises(ValueError, match="look must be"):
        TextGenParams(look=None)  # type: ignore[arg-type]


def test_generation_with_look_answers_after_the_models_own_look_answer(tiny):
    model, proc = tiny
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(2)]
    convs = [[{"role": "user", "content": [{"type": "image", "image": im}, {"type": "text", "text": q}]}]
             for im, q in zip(images, ("Is there a red circle?", "How many squares are there?"), strict=True)]
    convs.append([{"role": "user", "content": "no image here"}])
    params = TextGenParams(max_new_tokens=6, look=LOOK_QUESTION)
    opened, seen = look_first(model, proc, convs, LOOK_QUESTION, params, max_new_tokens=10)
    assert seen[2] is None and opened[2] == convs[2]  # nothing to look at: left as it is
    for k in (0, 1):
        assert isinstance(seen[k], str)
        assert opened[k][0]["content"] == "<image_placeholder>\n" + LOOK_QUESTION
        assert opened[k][1] == {"role": "assistant", "content": seen[k]}
        # the look answer is the model's greedy answer to the look question alone
        alone = generate_text(model, proc, [[{"role": "user", "content": [
            {"type": "image", "image": images[k]}, {"type": "text", "text": LOOK_QUESTION}]}]],
            TextGenParams(max_new_tokens=10))[0]
        assert seen[k] == alone
    # generate_text with params.look answers the opened conversations, as without look
    with_look = generate_text(model, proc, convs, TextGenParams(max_new_tokens=6, look=LOOK_QUESTION))
    plain_params = TextGenParams(max_new_tokens=6)
    opened128 = look_first(model, proc, convs, LOOK_QUESTION, plain_params)[0]
    assert with_look == generate_text(model, proc, opened128, plain_params)


def test_cli_look_in_chat_pope_and_vqa(tiny_dir, tmp_path, capsys):
    from januspro.shapes.datasets import write_task

    img = tmp_path / "a.png"
    Image.new("RGB", (32, 32), "blue").save(img)
    assert main(["chat", "Is there a blue square?", "--model", str(tiny_dir), "--image", str(img),
                 "--max-new-tokens", "4", "--look"]) == 0
    assert "[look] " in capsys.readouterr().err
    assert main(["chat", "Hi?", "--model", str(tiny_dir), "--image", str(img), "--look-question", " "]) == 2
    assert "--look-question must not be empty" in capsys.readouterr().err

    write_task("pope", tmp_path / "p", 2, seed=0, resolution=32)
    files = [str(tmp_path / "p" / "pope_random.jsonl")]
    argv = ["eval", "pope", "--model", str(tiny_dir), "--data", *files, "--images", str(tmp_path / "p"),
            "--out", str(tmp_path / "o"), "--quiet", "--look"]
    assert main(argv) == 0
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert res["look"] == LOOK_QUESTION
    # the folder holds answers made with --look: a run without it is refused, not mixed in
    assert main(argv[:-1]) == 2
    assert "look" in capsys.readouterr().err
    assert main(argv) == 0  # the same settings resume

    vqa = tmp_path / "v"
    vqa.mkdir()
    Image.new("RGB", (32, 32), "red").save(vqa / "x.png")
    (vqa / "q.jsonl").write_text(json.dumps({"question_id": 1, "image": "x.png", "question": "What color?",
                                             "answer": "red"}) + "\n")
    assert main(["eval", "vqa", "--model", str(tiny_dir), "--data", str(vqa / "q.jsonl"), "--images", str(vqa),
                 "--out", str(tmp_path / "vo"), "--quiet", "--look-question", "What is there?"]) == 0
    assert json.loads((tmp_path / "vo" / "results.json").read_text())["look"] == "What is there?"


def test_look_exist_turns_ask_about_present_objects_and_near_misses():
    lines = _chat_lines(400, seed=1)
    plain = look_rows(lines, 0.5, seed=2)
    assert look_rows(lines, 0.5, seed=2, exist_share=0.0) == plain  # off: look turns alone, as before
    rows = [json.loads(x) for x in look_rows(lines, 0.5, seed=2, exist_share=1.0)]
    opened = [r for r in rows if r["kinds"][0] == "look"]
    # the inserted turn: two messages more than the chat had (plus the look turn's two)
    before = {json.loads(x)["images"][0]: len(json.loads(x)["messages"]) for x in lines}
    asked = [r for r in opened if len(r["messages"]) == before[r["images"][0]] + 4]
    assert all(r["kinds"][1] == "exist" and r["messages"][2]["content"].startswith("Is there") for r in asked)
    assert len(asked) > 0.9 * len(opened)
    answers = {"yes": 0, "no": 0}
    for r in asked:
        scene = Scene.from_dict(r["scene"])
        names = {o.name for o in scene.objects}
        q, a = r["messages"][2]["content"], r["messages"][3]["content"]
        words = q.rstrip("?").split()
        color, shape = words[3], words[4]
        assert a == ("yes" if f"{color} {shape}" in names else "no")
        if a == "no":  # a near miss: shares its colour or its shape with a present object
            assert any(o.color == color or o.shape == shape for o in scene.objects)
        answers[a] += 1
        assert "<image_placeholder>" not in q and r["messages"][4]["role"] == "user"
    assert 0.35 < answers["yes"] / len(asked) < 0.65
    with pytest.raises(ValueError, match="look exist share"):
        look_rows(lines, 0.5, exist_share=-0.1)


def _look_rows_with(name: str) -> tuple[list[str], list[dict], dict[str, dict]]:
    """400 chats through look_rows (share 0.5, seed 2, existence turns on) with the share ``name`` at 1, after
    checking that it at 0 gives the same lines as without it: the lines, the edited rows, the original rows by
    image."""
    lines = _chat_lines(400, seed=4)
    exist = look_rows(lines, 0.5, seed=2, exist_share=1.0)
    assert look_rows(lines, 0.5, seed=2, exist_share=1.0, **{name: 0.0}) == exist  # off: as before
    rows = [json.loads(x) for x in look_rows(lines, 0.5, seed=2, exist_share=1.0, **{name: 1.0})]
    return lines, rows, {json.loads(x)["images"][0]: json.loads(x) for x in lines}


def test_look_space_turns_ask_where_objects_are_and_answer_by_geneval_rule():
    lines, rows, before = _look_rows_with("space_share")
    kinds = {"relation": 0, "where": 0}
    for r in rows:
        if r["kinds"][0] != "look":
            continue
        scene = Scene.from_dict(r["scene"])
        original = before[r["images"][0]]["messages"]
        inserted = len(r["messages"]) - len(original) - 2  # messages between the look turn and the chat's own
        assert r["messages"][2 + inserted:] == [
            {**m, "content": m["content"].replace("<image_placeholder>\n", "")} for m in original]
        turns = r["kinds"][1:1 + inserted // 2]
        assert turns in (["exist", "relation"], ["exist", "where"], ["relation"], ["where"], ["exist"], [])
        if not set(turns) & set(kinds):  # no space turn: only a scene without a pair to ask about lacks it
            assert not relation_pairs(scene)
            continue
        at = len(turns)
        kind = r["kinds"][at]
        kinds[kind] += 1
        q, a = r["messages"][2 * at]["content"], r["messages"][2 * at + 1]["content"]
        refs = {ref_phrase(o, scene, None, "the"): o for o in scene.objects}
        # the two objects: the longest names the question contains, in the order it names them
        named = sorted((q.find(n), n) for n in refs if n in q and not any(n in m and n != m for m in refs if m in q))
        first, second = refs[named[0][1]], refs[named[-1][1]]
        held = relations(first.bbox, second.bbox)
        if kind == "relation":
            asked = next(x for x in ("left of", "right of", "above", "below") if f" {x} " in q)
            assert a == ("yes" if asked in held else "no")
        else:
            assert q.startswith("Where is ") and held == {a}
        assert not mentions_held_out(q + " " + a)
    assert kinds["relation"] > 50 and kinds["where"] > 30
    with pytest.raises(ValueError, match="look space share"):
        look_rows(lines, 0.5, space_share=2.0)


def test_look_cite_turns_copy_the_inventory_entry_before_colour_and_shape_answers():
    lines, rows, before = _look_rows_with("cite_share")
    cited = 0
    for r in rows:
        if r["kinds"][0] != "look":  # not look-opened: byte for byte as before
            assert r == before[r["images"][0]]
            continue
        scene = Scene.from_dict(r["scene"])
        for t, kind in enumerate(r["kinds"][1:], start=1):
            q, a = r["messages"][2 * t]["content"], r["messages"][2 * t + 1]["content"]
            if kind not in ("color", "shape"):
                assert strip_citation(a) == a and ":" not in a
                continue
            entry, bare = a.split(": ")
            obj = next(o for o in scene.objects if plan_entry(o) == entry)  # an entry of the inventory ...
            assert entry in r["messages"][1]["content"]
            # ... of the one object the question names, and the answer is that object's colour / shape
            assert (obj.shape in q and bare == obj.color) if kind == "color" else (obj.color in q and bare == obj.shape)
            assert strip_citation(a) == bare
            cited += 1
    assert cited > 40
    scene = Scene.from_dict(rows[0]["scene"])
    assert cited_answer(scene, "How many circles are there?", "2", "count") == "2"
    with pytest.raises(ValueError, match="look cite share"):
        look_rows(lines, 0.5, cite_share=1.5)
