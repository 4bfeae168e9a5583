"""Benchmark runners on a tiny random checkpoint."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from helpers import make_tiny_checkpoint
from januspro.cli import main


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("evalmodel"))


def test_geneval_layout_resume_and_official_format(tiny, fixtures_dir, tmp_path, capsys):
    lines = (fixtures_dir / "geneval" / "evaluation_metadata.jsonl").read_text().splitlines()[:3]
    meta = tmp_path / "meta.jsonl"
    meta.write_text("\n".join(lines) + "\n")
    argv = ["eval", "geneval", "--model", str(tiny), "--data", str(meta), "--out", str(tmp_path / "g"), "-n", "2",
            "--seed", "3", "--quiet"]
    assert main(argv) == 0
    # GenEval's layout: folder per prompt, metadata line equal to the input line, samples/NNNN.png
    for k, line in enumerate(lines):
        sub = tmp_path / "g" / f"{k:05d}"
        assert json.loads((sub / "metadata.jsonl").read_text()) == json.loads(line)
        assert sorted(p.name for p in (sub / "samples").iterdir()) == ["0000.png", "0001.png"]
    first = json.loads((tmp_path / "g" / "results.json").read_text())
    assert first["recipe"]["n"] == 2 and first["recipe"]["seed"] == 3 and first["config_hash"]
    # interrupted run: drop one prompt's samples and rerun; the finished ones are kept, the result is identical
    kept = (tmp_path / "g" / "00000" / "samples" / "0000.png").stat().st_mtime_ns
    redo = (tmp_path / "g" / "00001" / "samples" / "0001.png").read_bytes()
    shutil.rmtree(tmp_path / "g" / "00001")
    assert main(argv) == 0
    assert (tmp_path / "g" / "00000" / "samples" / "0000.png").stat().st_mtime_ns == kept
    assert (tmp_path / "g" / "00001" / "samples" / "0001.png").read_bytes() == redo
    # one prompt per call gives the same images as the default batch (each prompt has its own seed)
    assert main(argv[:7] + [str(tmp_path / "g1")] + argv[8:] + ["--batch-size", "1"]) == 0
    for k in range(len(lines)):
        for j in range(2):
            name = f"{k:05d}/samples/{j:04d}.png"
            assert (tmp_path / "g1" / name).read_bytes() == (tmp_path / "g" / name).read_bytes()
    assert main(argv + ["--batch-size", "0"]) == 2
    assert "--batch-size must be >= 1" in capsys.readouterr().err
    # a folder made with other settings is refused, not resumed (its samples would be mixed in as they are)
    assert main(argv[:-1] + ["--cfg", "2", "--plan", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "holds outputs made by another model or other settings" in err and "cfg_weight, plan" in err
    # and so is the same folder for another model of the same architecture (retrained weights)
    from januspro.checkpoint import load_model, load_processor
    from januspro.eval.geneval import run_geneval
    from januspro.eval.record import OutputFolderError
    from januspro.generation.image import ImageGenParams

    other = load_model(tiny)
    with torch.no_grad():
        other.lm_head.weight.mul_(2)
    recipe = json.loads((tmp_path / "g" / "run.json").read_text())["recipe"]
    with pytest.raises(OutputFolderError, match="weights_hash"):
        run_geneval(other, load_processor(other), meta, tmp_path / "g", ImageGenParams(**recipe))


def test_geneval_with_shapes_scorer(tiny, tmp_path, capsys):
    from januspro.shapes.suites import geneval_suite, write_jsonl

    write_jsonl(geneval_suite(1, seed=0), tmp_path / "m.jsonl")
    assert main(["eval", "geneval", "--model", str(tiny), "--data", str(tmp_path / "m.jsonl"), "--out",
                 str(tmp_path / "s"), "-n", "1", "--scorer", "shapes", "--quiet"]) == 0
    res = json.loads((tmp_path / "s" / "results.json").read_text())
    assert set(res["scores"]["per_tag"]) == {"single_object", "two_object", "counting", "colors", "position",
                                             "color_attr"}
    assert "overall" in capsys.readouterr().out


def test_geneval_bad_input(tiny, tmp_path, capsys):
    assert main(["eval", "geneval", "--model", str(tiny), "--data", str(tmp_path / "none.jsonl"), "--out",
                 str(tmp_path / "x"), "--quiet"]) == 2
    assert "no GenEval metadata" in capsys.readouterr().err


def test_pope_runner_format_resume_and_metrics(tiny, fixtures_dir, tmp_path, capsys):
    from januspro.shapes.datasets import write_task

    write_task("pope", tmp_path / "p", 3, seed=0, resolution=32)
    files = [str(tmp_path / "p" / f"pope_{s}.jsonl") for s in ("random", "adversarial")]
    argv = ["eval", "pope", "--model", str(tiny), "--data", *files, "--images", str(tmp_path / "p"), "--out",
            str(tmp_path / "o"), "--quiet", "--batch-size", "4"]
    assert main(argv) == 0
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert set(res["scores"]) == {"random", "adversarial"}
    for m in res["scores"].values():
        assert 0 <= m["accuracy"] <= 1 and 0 <= m["yes_ratio"] <= 1
    answers = (tmp_path / "o" / "answers_random.jsonl").read_text().splitlines()
    assert len(answers) == 12
    # resume: a half-finished answer file is completed, not redone
    (tmp_path / "o" / "answers_random.jsonl").write_text("\n".join(answers[:5]) + "\n")
    assert main(argv) == 0
    assert (tmp_path / "o" / "answers_random.jsonl").read_text().splitlines() == answers
    assert "random: accuracy" in capsys.readouterr().out
    # the real COCO question files parse (images are not available here)
    from januspro.eval.pope import read_questions

    coco = read_questions(fixtures_dir / "pope" / "coco_pope_random.json")
    assert len(coco) == 3000 and {q["label"] for q in coco} == {"yes", "no"}
    assert main(["eval", "pope", "--model", str(tiny), "--data", files[0], "--images", str(tmp_path / "none"),
                 "--out", str(tmp_path / "x"), "--quiet"]) == 2
