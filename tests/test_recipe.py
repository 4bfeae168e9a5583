"""The janus-pro-shapes recipe end to end at toy scale: every part runs, is recorded, and is skipped on rerun;
the packaged folder loads and has its model card and plots."""

from __future__ import annotations

import json

import pytest

from januspro.cli import main
from januspro.training.recipe import ORDER, PARTS, RecipeError, parse_sets


def toy_sets() -> list[str]:
    sets = []
    for part in PARTS:
        sets += [f"{part}.train.steps=2", f"{part}.train.save_every=0", f"{part}.train.eval_every=0"]
        sets.append(f"{part}.train.batch_size={8 if part in ('vq', 'vq_polish', 'siglip', 'siglip_sft') else 6}")
    # the cool-downs of the recipe, shortened with the run
    return [*sets, "stage3.optim.decay_steps=1", "vq_polish.optim.decay_steps=1"]


@pytest.mark.slow
def test_recipe_end_to_end_toy(tmp_path, capsys):
    out = tmp_path / "recipe"
    argv = ["train", "recipe", "shapes", "--out", str(out), "--data-scale", "0.002", "--eval-items", "1", "--quiet",
            "--eval-best-of", "2", "--sft-plan-share", "0.5"]
    for s in toy_sets():
        argv += ["--set", s]
    assert main(argv) == 0
    state = json.loads((out / "recipe.json").read_text())
    assert list(state["parts"]) == list(ORDER)
    assert all(p["seconds"] >= 0 for p in state["parts"].values())
    assert state["parts"]["stage2"]["steps"] == 2
    ev = state["parts"]["eval"]
    assert set(ev["geneval"]["per_tag"]) == {"single_object", "two_object", "counting", "colors", "position",
                                             "color_attr"}
    assert set(ev["pope"]) == {"random", "popular", "adversarial"} and 0 <= ev["vqa"]["accuracy"] <= 1
    assert set(ev["targets"]) >= {"geneval_overall>=0.75", "pope_f1>=0.90_all_splits", "vqa>=0.85",
                                  "geneval_plan_overall>=0.75", "geneval_plan_every_category>=0.50"}
    best = ev["geneval_best_of"]
    assert best["best_of"] == 2 and best["judge"] == "ask" and set(best["per_tag"]) == set(ev["geneval"]["per_tag"])
    assert state["parts"]["data"]["sft_match_share"] == 0.5
    pkg = out / "janus-pro-shapes"
    card = (pkg / "README.md").read_text()
    assert "| all, best of 2 |" in card and "--best-of 2 --judge ask" in card
    # trained with plans: also scored drawing after its own greedy plan, alone and as the best of 2
    for key, best_of in (("geneval_plan", 1), ("geneval_plan_best_of", 2)):
        assert ev[key]["plan"] and ev[key]["best_of"] == best_of and ev[key]["plan_temperature"] == 0.0
        assert set(ev[key]["per_tag"]) == set(ev["geneval"]["per_tag"])
    assert "| all, plan |" in card and "| all, plan, best of 2 |" in card
    assert "`januspro generate --plan --best-of 2 --judge ask`" in card
    assert "0% of Stage II's and 50% of Stage III's text-to-image pairs first write the scene's drawing plan" in card
    assert set(json.loads((pkg / "scores.json").read_text())["full"]) >= {"geneval_plan", "geneval_plan_best_of"}
    assert "open with 'Does the image show <prompt>?'" in card
    # trained with look turns (the default): POPE and VQA also scored answering after the model's own inventory
    assert set(ev["pope_look"]) == {"random", "popular", "adversarial"} and 0 <= ev["vqa_look"]["accuracy"] <= 1
    assert {"pope_look_f1>=0.90_all_splits", "vqa_look>=0.85"} <= set(ev["targets"])
    assert "| adversarial, look |" in card and "open with 'List the objects.'" in card
    assert set(json.loads((pkg / "scores.json").read_text())["full"]) >= {"pope_look", "vqa_look"}
    # the modes it was trained for are the packaged model's defaults, said on its card
    from januspro.checkpoint.defaults import ModelDefaults, read_defaults

    assert read_defaults(pkg) == ModelDefaults(plan=True, look=True)
    assert "- Default modes (" in card and "`--no-plan` / `--no-look` turn them off" in card
    assert "plain sampling, `januspro generate --no-plan`" in card and "`januspro generate --no-plan --best-of 2" in card
    assert "## Recipe and wall time" in card and "shapes-GenEval" in card and "plots/stage2.png" in card
    assert "| stage3 | 2 | 0.0002, linear cool-down over the last 1 to x0.05 |" in card  # the run's schedule
    assert "| stage2 | 2 | 0.0005, warm-up 100, constant |" in card
    assert (pkg / "plots" / "stage2.png").is_file() and (pkg / "tokenizer.json").is_file()
    from januspro.checkpoint import load_model, load_processor

    model = load_model(pkg)
    assert model.cfg.system_prompt == "" and next(model.parameters()).dtype.is_floating_point
    load_processor(model)
    capsys.readouterr()
    # a second run skips every finished part
    assert main(argv) == 0
    assert capsys.readouterr().out.count("skipped") == len(ORDER)


def test_recipe_bad_arguments(tmp_path, capsys):
    with pytest.raises(RecipeError):
        parse_sets(["stage9.train.steps=1"])
    with pytest.raises(RecipeError):
        parse_sets(["stage2.steps"])
    assert main(["train", "recipe", "shapes", "--out", str(tmp_path), "--until", "nope", "--quiet"]) == 2
    assert "unknown part" in capsys.readouterr().err
    assert main(["train", "recipe", "shapes", "--out", str(tmp_path), "--eval-best-of", "0", "--quiet"]) == 2
    assert "eval_best_of must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "recipe", "--help"])
    assert "januspro train recipe" in capsys.readouterr().out


def test_recipe_reused_vq_is_recorded(tmp_path):
    from januspro.training.recipe import Recipe

    with pytest.raises(RecipeError, match="no VQ weights"):
        Recipe(tmp_path / "a", vq=str(tmp_path / "missing.safetensors"), progress=False, log=lambda s: None).run()
    weights = tmp_path / "vq" / "vq.safetensors"
    weights.parent.mkdir()
    weights.write_bytes(b"")  # only its record is read here
    (weights.parent / "recipe_parts.json").write_text(json.dumps({"vq": {"seconds": 60.0, "steps": 3}}))
    recipe = Recipe(tmp_path / "b", vq=str(weights), progress=False, log=lambda s: None)
    parts = recipe.run(only=["vq", "vq_polish"])["parts"]
    assert parts["vq"] == {"seconds": 60.0, "steps": 3, "reused": str(weights)}  # the kept record
    assert parts["vq_polish"]["seconds"] == 0.0 and parts["vq_polish"]["reused"] == str(weights)  # none kept


def test_recipe_stage3_captions_can_use_another_group_order(tmp_path):
    from pathlib import Path

    from januspro.shapes.datasets import DataStyle, t2i_item
    from januspro.training.recipe import Recipe

    recipe = Recipe(tmp_path / "r", data_scale=0.0005, eval_items=1, progress=False, sft_caption_order="raster")
    record = recipe.part_data()
    assert record["sft_caption_order"] == "raster"
    t2i = [json.loads(x) for x in (recipe.data / "t2i" / "t2i.jsonl").read_text().splitlines()]
    sft = [json.loads(x) for x in (recipe.data / "t2i" / "t2i_synthetic.jsonl").read_text().splitlines()]
    clean = [r for r in t2i if r["variant"] == "synthetic"]
    assert [r["image"] for r in sft] == [r["image"] for r in clean] and len(sft) == 50
    raster = DataStyle(caption_order="raster")
    for r in sft:
        index = int(Path(r["image"]).stem.rsplit("_", 1)[1])
        assert r["prompt"] == t2i_item(0, index, "synthetic", raster)[0]
    assert [r["prompt"] for r in sft] != [r["prompt"] for r in clean]  # Stage II's captions keep the mixed order
    with pytest.raises(RecipeError, match="sft_caption_order"):
        Recipe(tmp_path / "bad", sft_caption_order="up")


def _data_part(out, *flags):
    """Runs the recipe's data part at 1/500 scale into ``out`` with extra CLI flags; returns ``out``."""
    argv = ["train", "recipe", "shapes", "--out", str(out), "--until", "data", "--data-scale", "0.002",
            "--eval-items", "1", "--quiet", *flags]
    assert main(argv) == 0
    return out


def test_recipe_stage3_chats_open_with_judge_turns(tmp_path):
    """--sft-match-share: Stage III reads und_sft.jsonl, the plain chats with that share opened by a judge turn
    (match_rows); Stages I-II keep und.jsonl. Share 0 gives Stage III the plain chats."""
    from januspro.shapes.datasets import match_rows
    from januspro.training.recipe import Recipe

    out = _data_part(tmp_path / "r", "--sft-match-share", "0.5", "--sft-look-share", "0")
    assert json.loads((out / "recipe.json").read_text())["parts"]["data"]["sft_match_share"] == 0.5
    und = out / "data" / "und"
    plain, sft = (und / "und.jsonl").read_text(), (und / "und_sft.jsonl").read_text()
    assert sft.startswith("".join(match_rows(und / "und.jsonl", 0.5)))  # then the counting chats
    opened = [json.loads(x) for x in sft.splitlines() if json.loads(x)["kinds"] != ["match", "count"]
              and json.loads(x)["kinds"][0] == "match"]
    assert 0.3 < len(opened) / len(plain.splitlines()) < 0.7
    assert all(json.loads(x)["kinds"][0] != "match" for x in plain.splitlines())
    recipe = Recipe(out, progress=False)
    assert recipe.run_config("stage3", tmp_path / "s3").data.und == str(und / "und_sft.jsonl")
    assert recipe.run_config("stage2", tmp_path / "s2").data.und == str(und / "und.jsonl")
    assert "".join(match_rows(und / "und.jsonl", 0.0)) == plain
    # a run whose data part predates Stage III's own chats gets them written before Stage III
    (und / "und_sft.jsonl").unlink()
    logs = []
    old = Recipe(out, progress=False, log=logs.append, sft_match_share=0.5, sft_look_share=0.0, data_scale=0.002)
    from januspro.checkpoint.files import CheckpointError

    with pytest.raises(CheckpointError, match="stage2"):  # nothing before Stage III was trained here
        old.run(only=["stage3"])
    assert (und / "und_sft.jsonl").read_text() == sft and any("wrote the data of Stages II-III" in x for x in logs)
    with pytest.raises(RecipeError, match="sft_match_share"):
        Recipe(tmp_path / "bad", sft_match_share=1.5)
    with pytest.raises(ValueError, match="match share"):
        match_rows(und / "und.jsonl", -1)


def test_recipe_stage3_chats_get_counting_chats(tmp_path):
    """--sft-count-chats N: Stage III's chats end with N x data_scale counting chats (count_rows, images in the
    und folder); the data record and the model card say so; Stages I-II keep the plain chats."""
    from januspro.shapes.datasets import count_rows, match_rows
    from januspro.training.recipe import Recipe

    out = _data_part(tmp_path / "r", "--sft-count-chats", "5000", "--sft-look-share", "0")
    assert json.loads((out / "recipe.json").read_text())["parts"]["data"]["sft_count_chats"] == 10
    und = out / "data" / "und"
    sft = (und / "und_sft.jsonl").read_text()
    plain = "".join(match_rows(und / "und.jsonl", 0.5))
    assert sft.startswith(plain) and sft[len(plain):] == "".join(count_rows(tmp_path / "c", 10))
    assert all((und / json.loads(x)["images"][0]).is_file() for x in sft.splitlines())
    assert all(json.loads(x)["kinds"] != ["match", "count"] for x in (und / "und.jsonl").read_text().splitlines())
    from januspro.training.shapes_eval import model_card

    state = json.loads((out / "recipe.json").read_text())
    assert "10 counting chats" in model_card(state, 1, 1.0, [], "cpu", "arch")
    state["parts"]["data"]["sft_count_chats"] = 0
    assert "counting chats" not in model_card(state, 1, 1.0, [], "cpu", "arch")
    # other settings on the same folder: Stage III's chats are written again before Stage III, the record follows
    other = Recipe(out, progress=False, log=[].append, sft_count_chats=0, sft_look_share=0.0, data_scale=0.002)
    assert not other.stage_data_current()
    from januspro.checkpoint.files import CheckpointError

    with pytest.raises(CheckpointError, match="stage2"):  # nothing before Stage III was trained here
        other.run(only=["stage3"])
    assert (und / "und_sft.jsonl").read_text() == plain and other.stage_data_current()
    assert json.loads((out / "recipe.json").read_text())["parts"]["data"]["sft_count_chats"] == 0
    assert Recipe(tmp_path / "tiny", sft_count_chats=1, data_scale=0.001).count_chats == 8
    assert Recipe(tmp_path / "off", sft_count_chats=0).count_chats == 0
    with pytest.raises(RecipeError, match="sft_count_chats"):
        Recipe(tmp_path / "bad", sft_count_chats=-1)


def test_recipe_stage_pairs_get_drawing_plans(tmp_path):
    """--sft-plan-share F / --plan-share F: that share of Stage III's clean text-to-image pairs (Stage II's pairs,
    t2i_stage2.jsonl) carry their scene's drawing plan (plan_rows); t2i.jsonl, which the VQ and SigLIP read, never
    does; the data record says so, and other settings on the same folder write the pairs again before Stage II."""
    from januspro.shapes.datasets import clean_t2i_rows, plan_rows
    from januspro.shapes.language import layout_plan
    from januspro.shapes.world import Scene
    from januspro.training.recipe import Recipe

    out = _data_part(tmp_path / "r", "--sft-plan-share", "0.5", "--plan-share", "0.25")
    data = json.loads((out / "recipe.json").read_text())["parts"]["data"]
    assert data["sft_plan_share"] == 0.5 and data["plan_share"] == 0.25
    t2i = out / "data" / "t2i"
    lines = (t2i / "t2i.jsonl").read_text().splitlines(keepends=True)
    assert not any("plan" in json.loads(x) for x in lines)
    assert (t2i / "t2i_stage2.jsonl").read_text() == "".join(plan_rows(lines, 0.25, seed=1))
    for name in ("t2i_synthetic.jsonl", "t2i_stage2.jsonl"):
        rows = [json.loads(x) for x in (t2i / name).read_text().splitlines()]
        planned = [r for r in rows if "plan" in r]
        assert 0 < len(planned) < len(rows)
        assert all(r["plan"] == layout_plan(Scene.from_dict(r["scene"])) for r in planned)
    other = Recipe(out, progress=False, log=[].append, plan_share=0.0, sft_plan_share=0.0, data_scale=0.002)
    assert not other.stage_data_current()
    from januspro.checkpoint.files import CheckpointError

    with pytest.raises(CheckpointError, match="stage1"):  # nothing before Stage II was trained here
        other.run(only=["stage2"])
    clean = clean_t2i_rows(t2i / "t2i.jsonl", 0, other.sft_style())
    assert (t2i / "t2i_synthetic.jsonl").read_text() == "".join(plan_rows(clean, 0.0)) == "".join(clean)
    assert (t2i / "t2i_stage2.jsonl").read_text() == "".join(lines) and other.stage_data_current()
    data = json.loads((out / "recipe.json").read_text())["parts"]["data"]
    assert data["sft_plan_share"] == 0.0 and data["plan_share"] == 0.0
    with pytest.raises(RecipeError, match="sft_plan_share"):
        Recipe(tmp_path / "bad", sft_plan_share=1.2)
    with pytest.raises(RecipeError, match="plan_share"):
        Recipe(tmp_path / "bad", plan_share=-0.1)


def test_recipe_cli_caption_order_sets_stage2_and_stage3_captions(tmp_path):
    from januspro.shapes.datasets import DataStyle, plan_rows, t2i_rows

    out = tmp_path / "r"
    argv = ["train", "recipe", "shapes", "--out", str(out), "--until", "data", "--data-scale", "0.0005",
            "--eval-items", "1", "--quiet", "--caption-order", "raster", "--sft-caption-order", "mixed"]
    assert main(argv) == 0
    assert json.loads((out / "recipe.json").read_text())["parts"]["data"]["style"]["caption_order"] == "raster"
    t2i = out / "data" / "t2i" / "t2i.jsonl"
    rows = t2i.read_text().splitlines(keepends=True)
    assert {json.loads(r)["variant"] for r in rows} == {"synthetic", "real"}
    assert rows == t2i_rows(t2i, 0, DataStyle(caption_order="raster"))  # every caption in raster order
    mixed = t2i_rows(t2i, 0, DataStyle(caption_order="mixed"), ("synthetic",))
    assert mixed != t2i_rows(t2i, 0, variants=("synthetic",))  # the two orders differ on these scenes
    assert (out / "data" / "t2i" / "t2i_synthetic.jsonl").read_text() == "".join(plan_rows(mixed, 0.5))


@pytest.mark.parametrize("flag,field", [("--kind-balance", "kind_balance"), ("--hard-negatives", "hard_negatives"),
                                        ("--describe-share", "describe_share"), ("--match-share", "match_share")])
def test_recipe_cli_style_flags_reach_the_understanding_chats(tmp_path, flag, field):
    from januspro.shapes.datasets import DataStyle, und_item

    out = tmp_path / "r"
    argv = ["train", "recipe", "shapes", "--out", str(out), "--until", "data", "--data-scale", "0.0005",
            "--eval-items", "1", "--quiet", flag, "1"]
    assert main(argv) == 0
    assert json.loads((out / "recipe.json").read_text())["parts"]["data"]["style"][field] == 1.0
    rows = [json.loads(r) for r in (out / "data" / "und" / "und.jsonl").read_text().splitlines()]
    want = [und_item(0, i, DataStyle(**{field: 1.0}))[0] for i in range(len(rows))]
    assert [r["messages"] for r in rows] == want
    assert want != [und_item(0, i)[0] for i in range(len(rows))]
    with pytest.raises(SystemExit, match=field):
        main(["train", "recipe", "shapes", "--out", str(tmp_path / "bad"), flag, "2"])


def test_simple_scenes_flag_reaches_the_clean_text_to_image_scenes(tmp_path):
    """``--simple-scenes`` of ``data shapes`` and of the recipe draw the clean scenes from the simple families."""
    from januspro.shapes.datasets import DataStyle, t2i_item

    out = tmp_path / "d"
    assert main(["data", "shapes", "--task", "t2i", "--n", "12", "--out", str(out), "--simple-scenes", "1",
                 "--quiet"]) == 0
    rows = [json.loads(r) for r in (out / "t2i.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in rows] == [t2i_item(0, i, "synthetic", DataStyle(simple_scenes=1.0))[0]
                                           for i in range(12)]
    r = tmp_path / "r"
    argv = ["train", "recipe", "shapes", "--out", str(r), "--until", "data", "--data-scale", "0.0005",
            "--eval-items", "1", "--quiet", "--simple-scenes", "1"]
    assert main(argv) == 0
    assert json.loads((r / "recipe.json").read_text())["parts"]["data"]["style"]["simple_scenes"] == 1.0
    clean = [json.loads(x) for x in (r / "data" / "t2i" / "t2i_synthetic.jsonl").read_text().splitlines()]
    # every clean scene is one object, two objects, or three or four of one shape
    shapes = [[o["shape"] for o in x["scene"]["objects"]] for x in clean]
    assert shapes and all(len(s) <= 2 or len(set(s)) == 1 for s in shapes)
    with pytest.raises(SystemExit, match="simple_scenes"):
        main(["train", "recipe", "shapes", "--out", str(tmp_path / "bad"), "--simple-scenes", "2"])


def test_trained_vq_keeps_its_records_and_plot_for_reuse(tmp_path):
    """A VQ trained by the recipe gets its two parts' records and its loss plot beside the weights; a later run
    that reuses those weights copies both (recipe.json rows, plots/vq.png in the packaged folder)."""
    import torch

    from januspro.checkpoint import save_model
    from januspro.config import preset
    from januspro.models.janus import JanusModel
    from januspro.shapes.tokenizer import build_shapes_tokenizer
    from januspro.training.recipe import Recipe
    from januspro.training.shapes_eval import package_model

    first = Recipe(tmp_path / "first", progress=False, log=lambda s: None)
    first.out.mkdir()
    (first.out / "vq").mkdir()
    (first.out / "vq_polish").mkdir()
    rows = [{"step": s, "rec_loss": 1.0 / s, "commit_loss": 0.1} for s in range(1, 21)]
    (first.out / "vq" / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    first._store("vq", {"seconds": 120.0, "steps": 20})
    first._store("vq_polish", {"seconds": 30.0, "steps": 5})
    first.keep_vq_records()
    weights = first.out / "vq_polish" / "vq.safetensors"
    assert json.loads(weights.with_name("recipe_parts.json").read_text()) == {
        "vq": {"seconds": 120.0, "steps": 20}, "vq_polish": {"seconds": 30.0, "steps": 5}}
    plot = weights.with_name("vq.png").read_bytes()
    assert plot.startswith(b"\x89PNG")

    weights.write_bytes(b"")  # only the records beside it are read here
    second = Recipe(tmp_path / "second", vq=str(weights), progress=False, log=lambda s: None)
    second.run(only=["vq", "vq_polish"])
    torch.manual_seed(0)
    build_shapes_tokenizer(second.tok, n=200)
    save_model(JanusModel(preset("tiny")), second.out / "stage3" / "model", tokenizer_dir=second.tok)
    package_model(second, second.out / "pkg")
    assert (second.out / "pkg" / "plots" / "vq.png").read_bytes() == plot
    card = (second.out / "pkg" / "README.md").read_text()
    assert "![vq.png](plots/vq.png)" in card and "| vq | 20 |" in card
    # the card describes the packaged model's own shape (here the tiny preset), not the default recipe's
    tiny = preset("tiny")
    assert f"LLM {tiny.llm.num_layers} layers, width {tiny.llm.hidden_size}, {tiny.llm.num_heads} heads" in card
    assert f"VQ {tiny.vq.image_size} px -> {tiny.vq.grid_size}x{tiny.vq.grid_size}" in card


def test_assemble_takes_the_architecture_the_parts_were_trained_with(tmp_path):
    """The assembled model has the text part's LLM config and the siglip part's vision tower (adaptors and image
    head sized to fit them), so ``--set text.model.init=arch.json`` changes the whole model's architecture."""
    import dataclasses

    import torch

    from januspro.checkpoint import load_model, save_model
    from januspro.config import preset
    from januspro.models.janus import JanusModel
    from januspro.shapes.tokenizer import build_shapes_tokenizer
    from januspro.training.recipe import Recipe
    from januspro.training.trainer import save_vq_weights

    recipe = Recipe(tmp_path / "r", progress=False, log=lambda s: None)
    torch.manual_seed(0)
    build_shapes_tokenizer(recipe.tok, n=200)
    base = preset("tiny")
    text_cfg = dataclasses.replace(base, llm=dataclasses.replace(base.llm, rope_theta=47.7))
    vision_cfg = dataclasses.replace(base, vision=dataclasses.replace(base.vision, hidden_size=48), aligner=None)
    text, vision = JanusModel(text_cfg), JanusModel(vision_cfg)
    save_model(text, recipe.out / "text" / "model", tokenizer_dir=recipe.tok)
    save_model(vision, recipe.out / "siglip" / "model", tokenizer_dir=recipe.tok)
    save_vq_weights(text, recipe.out / "vq_polish" / "vq.safetensors")
    recipe.part_assemble()
    model = load_model(recipe.out / "assemble" / "model", dtype="fp32")
    assert model.cfg.llm == text_cfg.llm and model.cfg.vision == vision_cfg.vision
    assert model.cfg.aligner.in_dim == 48 and model.cfg.aligner.out_dim == base.llm.hidden_size
    assert all(torch.equal(a, b) for a, b in zip(model.llm.state_dict().values(), text.llm.state_dict().values(),
                                                  strict=True))
    assert all(torch.equal(a, b) for a, b in zip(model.vision.state_dict().values(),
                                                  vision.vision.state_dict().values(), strict=True))


def test_run_config_of_a_part_may_be_written_elsewhere(tmp_path):
    """``Recipe.run_config(part, out)``: the part's settings as the recipe trains it, its run written to ``out``
    (what the experiment probes that retrain one part beside a finished run use)."""
    from januspro.training.recipe import Recipe

    recipe = Recipe(tmp_path / "r", overrides={"stage3": {"optim.lr": "1e-4"}}, progress=False)
    own = recipe.run_config("stage3")
    assert own.train.out == str(tmp_path / "r" / "stage3") and own.optim.lr == 1e-4
    assert own.model.init == str(tmp_path / "r" / "stage2" / "model") and own.optim.decay_steps == 1200
    moved = recipe.run_config("stage3", tmp_path / "probe")
    assert moved.train.out == str(tmp_path / "probe") and moved.optim == own.optim and moved.data == own.data


def test_recipe_compiles_stage3(tmp_path):
    """The recipe's Stage III sets train.compile (the trainer runs it eagerly where no C++ compiler is found:
    test_training's test_compile_without_a_cpp_compiler_runs_eagerly); a user's setting wins."""
    from januspro.training.recipe import Recipe

    recipe = Recipe(tmp_path / "r", progress=False)
    assert recipe.run_config("stage3").train.compile and not recipe.run_config("stage2").train.compile
    forced = Recipe(tmp_path / "f", overrides=parse_sets(["stage3.train.compile=false"]), progress=False)
    assert not forced.run_config("stage3").train.compile  # user's choice


def test_recipe_trains_every_part_but_the_vq_in_auto_dtype(tmp_path):
    """bf16 autocast where the hardware has it (``auto``) for every part but the VQ's two, which train in fp32
    (the shipped model's VQ; bf16 VQ codes were harder to predict for no GenEval gain); the SigLIP components
    honour train.dtype too."""
    from januspro.training.recipe import PARTS, Recipe

    recipe = Recipe(tmp_path / "r", progress=False)
    want = {p: "fp32" if p in ("vq", "vq_polish") else "auto" for p in PARTS}
    assert {p: recipe.run_config(p).train.dtype for p in PARTS} == want


def test_recipe_gives_stage3_the_dense_siglip_encoder(tmp_path):
    """Stages I-II see the siglip part's ViT (assemble); Stage III swaps in siglip_sft's, trained with the dense
    loss at weight 4."""
    from januspro.training.recipe import Recipe

    recipe = Recipe(tmp_path / "r", progress=False)
    sft, plain = recipe.run_config("siglip_sft"), recipe.run_config("siglip")
    assert sft.stage.dense_weight == 4 and plain.stage.dense_weight == 1
    assert recipe.run_config("stage3").model.vision == str(tmp_path / "r" / "siglip_sft" / "model")
    assert all(recipe.run_config(p).model.vision == "" for p in ("stage1", "stage2"))
    assert ORDER.index("siglip_sft") < ORDER.index("assemble")


def test_cpp_compiler_probe_answers_without_raising():
    import shutil

    from januspro.training.trainer import cpp_compiler_available

    if shutil.which("g++"):
        assert cpp_compiler_available() is True
    import torch._inductor.config as inductor_config

    with inductor_config.patch({"cpp.cxx": ("/nonexistent/c++",)}):  # restored on exit, for later compiles
        assert cpp_compiler_available() is False
    if shutil.which("g++"):
        assert cpp_compiler_available() is True


def test_recipe_stage3_chats_open_with_look_turns(tmp_path):
    """--sft-look-share F: that share of Stage III's chats (judge-opened and counting ones included) open with a
    look turn (look_rows, seed 2), each followed by an existence question by default (--sft-look-exist-share 1) and,
    with --sft-look-space-share 1, by a question about where one object is relative to another (and with
    --sft-look-cite-share 1 colour and shape answers cite their inventory entry); Stages I-II keep the plain chats; the data record says so, and other settings on the same folder write the
    chats again before Stage III."""
    from januspro.shapes.datasets import count_rows, look_rows, match_rows
    from januspro.training.recipe import Recipe

    out = _data_part(tmp_path / "r", "--sft-look-share", "0.5", "--sft-look-space-share", "1",
                     "--sft-look-cite-share", "1")
    data = json.loads((out / "recipe.json").read_text())["parts"]["data"]
    assert data["sft_look_share"] == 0.5 and data["sft_look_exist_share"] == 1.0
    assert data["sft_look_space_share"] == 1.0 and data["sft_look_cite_share"] == 1.0
    und = out / "data" / "und"
    chats = match_rows(und / "und.jsonl", 0.5) + count_rows(tmp_path / "c", 16)
    sft = (und / "und_sft.jsonl").read_text()
    assert sft == "".join(look_rows(chats, 0.5, seed=2, exist_share=1.0, space_share=1.0, cite_share=1.0))
    assert ": " in sft  # some colour or shape answers cite their entry
    assert any(json.loads(x)["kinds"][:3] in (["look", "exist", "relation"], ["look", "exist", "where"])
               for x in sft.splitlines())
    opened = [x for x in sft.splitlines() if json.loads(x)["kinds"][0] == "look"]
    assert 0.3 < len(opened) / len(chats) < 0.7
    assert all("look" not in json.loads(x)["kinds"] for x in (und / "und.jsonl").read_text().splitlines())
    other = Recipe(out, progress=False, log=[].append, sft_look_share=0.0, data_scale=0.002)
    assert not other.stage_data_current()
    from januspro.checkpoint.files import CheckpointError

    with pytest.raises(CheckpointError, match="stage2"):  # nothing before Stage III was trained here
        other.run(only=["stage3"])
    assert (und / "und_sft.jsonl").read_text() == "".join(chats) and other.stage_data_current()
    with pytest.raises(RecipeError, match="sft_look_share"):
        Recipe(tmp_path / "bad", sft_look_share=2.0)
    with pytest.raises(RecipeError, match="sft_look_space_share"):
        Recipe(tmp_path / "bad", sft_look_space_share=-1.0)
    with pytest.raises(RecipeError, match="sft_look_cite_share"):
        Recipe(tmp_path / "bad", sft_look_cite_share=1.5)


def test_stage_data_stamp_lacking_a_later_setting_is_current_at_its_off_value(tmp_path):
    """Data stamped before a setting existed (no key in data/stages.json) was made with it off: current while the
    setting is 0, written again when it is on; a stamp key the recipe no longer knows is not current."""
    from januspro.training.recipe import Recipe

    recipe = Recipe(tmp_path / "r", progress=False, log=[].append)
    for f in (recipe.sft_chats, recipe.sft_pairs, recipe.stage2_pairs):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("")
    old = {k: v for k, v in recipe.stage_data_settings().items() if k != "sft_look_cite_share"}
    recipe.stage_stamp.write_text(json.dumps(old))
    assert recipe.stage_data_current()
    assert not Recipe(tmp_path / "r", progress=False, log=[].append, sft_look_cite_share=0.5).stage_data_current()
    recipe.stage_stamp.write_text(json.dumps({**old, "sft_look_cite_share": 0.0, "a_retired_setting": 1}))
    assert not recipe.stage_data_current()
