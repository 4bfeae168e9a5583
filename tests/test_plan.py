"""Drawing plans: the shapes world's layout plans, their training samples, and generation that writes a plan
before drawing (generation/plan.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers import make_tiny_checkpoint
from januspro.checkpoint import load_model, load_processor
from januspro.generation.image import (
    ImageGenParams,
    decode_codes,
    generate_codes,
    generate_images,
    unconditional_ids,
)
from januspro.generation.plan import write_plans
from januspro.shapes.datasets import plan_rows
from januspro.shapes.language import cell_of, layout_plan
from januspro.shapes.world import Obj, Scene, sample_scene
from januspro.training.data import IGNORE, TARGET_IMAGE, TARGET_NONE, TARGET_TEXT, SampleBuilder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model = load_model(make_tiny_checkpoint(tmp_path_factory.mktemp("plan"))).eval()
    return model, load_processor(model)


def test_layout_plan_names_every_object_by_cell_in_raster_order():
    scene = Scene((Obj("square", "blue", "small", 0.5, 0.52), Obj("circle", "red", "large", 0.85, 0.15),
                   Obj("triangle", "green", "medium", 0.12, 0.9), Obj("diamond", "cyan", "small", 0.2, 0.17)))
    assert layout_plan(scene) == "cyan diamond 0 0, red circle 0 2, blue square 1 1, green triangle 2 0"
    rng = np.random.default_rng(0)
    for _ in range(200):  # every sampled scene: one cell per object, the plan lists each once
        s = sample_scene(rng)
        cells = [cell_of(o) for o in s.objects]
        assert len(set(cells)) == len(cells)
        parts = layout_plan(s).split(", ")
        assert sorted(parts) == sorted(f"{o.color} {o.shape} {r} {c}" for o, (r, c) in zip(s.objects, cells,
                                                                                             strict=True))
        assert [tuple(map(int, p.split()[2:])) for p in parts] == sorted(cells)


def test_plan_rows_give_a_share_of_lines_their_scene_plan():
    rng = np.random.default_rng(1)
    scenes = [sample_scene(rng) for _ in range(400)]
    lines = [json.dumps({"prompt": "x", "image": f"images/{i}.png", "scene": json.loads(s.to_json())}) + "\n"
             for i, s in enumerate(scenes)]
    assert plan_rows(lines, 0.0) == lines
    out = plan_rows(lines, 0.5, seed=3)
    assert out == plan_rows(lines, 0.5, seed=3)  # seeded
    rows = [json.loads(x) for x in out]
    with_plan = [i for i, r in enumerate(rows) if "plan" in r]
    assert 150 < len(with_plan) < 250
    for i in with_plan:
        assert rows[i]["plan"] == layout_plan(scenes[i])
    assert all("plan" in json.loads(x) for x in plan_rows(lines, 1.0))
    with pytest.raises(ValueError, match="plan share"):
        plan_rows(lines, 1.5)


def test_t2i_sample_with_a_plan_learns_the_plan_then_the_codes(tiny):
    model, proc = tiny
    tok = proc.tokenizer
    b = SampleBuilder(tok, proc.template.name, 32, model.cfg.vq.num_tokens, (0.5,) * 3, (0.5,) * 3)
    codes = list(range(model.cfg.vq.num_tokens))
    plain = b.t2i("a red circle", codes, False)
    s = b.t2i("a red circle", codes, False, plan="red circle 0 2")
    head = proc.encode_generation_prompt("a red circle")[:-1]
    plan = tok.encode(" red circle 0 2", add_bos=False)
    n_head = len(head) + len(plan) + 1
    assert s.ids[:n_head] == head + plan + [tok.image_start_id]
    # text targets: the prompt's last token predicts the plan's first, ..., the plan's last <begin_of_image>
    text = [i for i, k in enumerate(s.target_kind) if k == TARGET_TEXT]
    assert text == list(range(len(head) - 1, n_head - 1))
    assert [s.targets[i] for i in text] == plan + [tok.image_start_id]
    # the image codes are learned exactly as without a plan, shifted by the plan's length
    img = [i for i, k in enumerate(s.target_kind) if k == TARGET_IMAGE]
    assert [s.targets[i] for i in img] == codes == [plain.targets[i] for i, k in enumerate(plain.target_kind) if k]
    assert s.gen_codes[n_head:] == codes
    # a dropped prompt pads the plan too (the unconditional row of guidance) and learns no text
    d = b.t2i("a red circle", codes, True, plan="red circle 0 2")
    assert d.ids[:n_head] == unconditional_ids(s.ids[:n_head], tok.pad_id)
    assert TARGET_TEXT not in d.target_kind
    assert [t for t, k in zip(d.targets, d.target_kind, strict=True) if k == TARGET_NONE] == [IGNORE] * (len(d) - len(codes))


def test_write_plans_stop_ban_and_draw_per_row(tiny, monkeypatch):
    model, proc = tiny
    tok = proc.tokenizer
    heads = [proc.encode_generation_prompt(p)[:-1] for p in ("a red circle", "two squares left of a triangle")]
    specials = (tok.bos_id, tok.pad_id, tok.image_id, tok.image_end_id)
    greedy = write_plans(model, heads, tok.image_start_id, (tok.eos_id,), specials, tok.pad_id, 0.0, max_tokens=6)
    assert greedy == write_plans(model, heads, tok.image_start_id, (tok.eos_id,), specials, tok.pad_id, 0.0,
                                 max_tokens=6)
    for p in greedy:
        assert 1 <= len(p) <= 6 and not set(p) & {*specials, tok.image_start_id, tok.eos_id}
    # a row with its own generator writes what it writes alone, whatever else is in the batch
    gens = [torch.Generator().manual_seed(s) for s in (5, 6)]
    both = write_plans(model, heads, tok.image_start_id, (tok.eos_id,), specials, tok.pad_id, 1.0, gens, 8)
    alone = write_plans(model, heads[1:], tok.image_start_id, (tok.eos_id,), specials, tok.pad_id, 1.0,
                        [torch.Generator().manual_seed(6)], 8)
    assert both[1] == alone[0]
    # ending tokens made likely everywhere: the first token still cannot end the plan, the second does
    bias = torch.zeros(model.cfg.llm.vocab_size)
    bias[tok.image_start_id] = 1e4
    logits = model.text_logits
    monkeypatch.setattr(model, "text_logits", lambda h: logits(h) + bias)
    ended = write_plans(model, heads, tok.image_start_id, (tok.eos_id,), specials, tok.pad_id, 1.0, None, 8)
    monkeypatch.undo()
    assert [len(p) for p in ended] == [1, 1]
    with pytest.raises(ValueError, match="generators for"):
        write_plans(model, heads, tok.image_start_id, (), specials, tok.pad_id, 1.0, gens[:1])


def test_generate_images_with_a_plan_draws_each_image_after_its_plan(tiny):
    """Each image is the one plain guidance draws from prompt + its plan (unconditional row padded over both);
    the plans come back per prompt; best-of-K keeps the plan of the candidate it keeps."""
    model, proc = tiny
    tok = proc.tokenizer
    prompts = ["a red circle", "two squares"]
    params = ImageGenParams(cfg_weight=3.0, temperature=1.0, n=2, plan=True, plan_temperature=0.0)
    plans: list[list[str]] = []
    got = generate_images(model, proc, prompts, params, seeds=[1, 2], plans=plans)
    assert [len(p) for p in plans] == [2, 2] and all(p for pp in plans for p in pp)
    assert [[im.info["plan"] for im in ims] for ims in got] == plans
    specials = (tok.bos_id, tok.pad_id, tok.image_id, tok.image_end_id)
    for k, prompt in enumerate(prompts):
        head = proc.encode_generation_prompt(prompt)[:-1]
        ids = write_plans(model, [head], tok.image_start_id, (tok.eos_id,), specials, tok.pad_id, 0.0)[0]
        assert plans[k] == [proc.decode(ids).strip()] * 2  # greedy: one plan for both images
        row = head + ids + [tok.image_start_id]
        g = torch.Generator().manual_seed(k + 1)
        codes = generate_codes(model, [row, row], [unconditional_ids(row, tok.pad_id)] * 2,
                               ImageGenParams(cfg_weight=3.0, temperature=1.0, n=1), tok.pad_id, [g, g])
        for a, b in zip(got[k], decode_codes(model, codes), strict=True):
            assert np.array_equal(np.asarray(a), np.asarray(b))
    # sampled plans, best of 2: one plan per image returned
    plans = []
    best = generate_images(model, proc, prompts, ImageGenParams(cfg_weight=3.0, n=2, seed=0, plan=True, best_of=2),
                           plans=plans)
    assert [len(x) for x in best] == [2, 2] and [len(p) for p in plans] == [2, 2]
    with pytest.raises(ValueError, match="plan_temperature"):
        ImageGenParams(plan=True, plan_temperature=-1)
