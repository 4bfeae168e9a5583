import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from januspro.checkpoint import load_model, load_processor, save_model
from januspro.cli import main
from januspro.config import preset
from januspro.generation.image import ImageGenParams, generate_images
from januspro.models.janus import JanusModel


def test_convert_and_info(tmp_path, capsys):
    torch.manual_seed(0)
    m = JanusModel(preset("tiny"))
    save_model(m, tmp_path / "ours")
    assert main(["convert", str(tmp_path / "ours"), str(tmp_path / "off"), "--to", "official", "--dtype", "bf16"]) == 0
    assert json.loads((tmp_path / "off" / "config.json").read_text())["model_type"] == "multi_modality"
    back = load_model(tmp_path / "off")
    assert back.lm_head.weight.dtype == torch.bfloat16
    capsys.readouterr()
    assert main(["info", str(tmp_path / "off")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layout"] == "official" and info["parameters"] == m.num_parameters()


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "nope"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("januspro convert: error: no model folder") and "Traceback" not in err


def test_help_runs():
    r = subprocess.run([sys.executable, "-m", "januspro", "convert", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--to {ours,official,transformers}" in r.stdout


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    from helpers import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny_ckpt"))


def test_generate_writes_pngs_and_grid(tiny_ckpt, tmp_path, capsys):

    out = tmp_path / "gen"
    assert main(["generate", "a red circle", "--model", str(tiny_ckpt), "-n", "3", "--seed", "1", "--cfg", "3",
                 "--out", str(out), "--quiet"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["000.png", "001.png", "002.png", "grid.png"]
    assert Image.open(out / "000.png").size == (32, 32)
    # same seed, same images
    assert main(["generate", "a red circle", "--model", str(tiny_ckpt), "-n", "3", "--seed", "1", "--cfg", "3",
                 "--out", str(tmp_path / "again"), "--quiet"]) == 0
    assert (out / "001.png").read_bytes() == (tmp_path / "again" / "001.png").read_bytes()
    # two prompts in one batch
    assert main(["generate", "a", "bb", "--model", str(tiny_ckpt), "-n", "2", "--out", str(tmp_path / "two"),
                 "--quiet"]) == 0
    assert len(list((tmp_path / "two").glob("p01_*.png"))) == 2
    # a guidance schedule changes the images of the same seed
    assert main(["generate", "a red circle", "--model", str(tiny_ckpt), "-n", "3", "--seed", "1", "--cfg", "3",
                 "--cfg-end", "1", "--out", str(tmp_path / "sched"), "--quiet"]) == 0
    assert (out / "001.png").read_bytes() != (tmp_path / "sched" / "001.png").read_bytes()
    # best of 3: still n images, each one of the 3n candidates the same seed draws
    assert main(["generate", "a red circle", "--model", str(tiny_ckpt), "-n", "2", "--seed", "1", "--cfg", "3",
                 "--best-of", "3", "--out", str(tmp_path / "best"), "--quiet"]) == 0
    assert main(["generate", "a red circle", "--model", str(tiny_ckpt), "-n", "6", "--seed", "1", "--cfg", "3",
                 "--out", str(tmp_path / "all"), "--quiet"]) == 0
    candidates = {f.read_bytes() for f in (tmp_path / "all").glob("0*.png")}
    for judge in ("describe", "ask"):
        folder = "best" if judge == "describe" else "ask"
        if judge == "ask":
            assert main(["generate", "a red circle", "--model", str(tiny_ckpt), "-n", "2", "--seed", "1", "--cfg",
                         "3", "--best-of", "3", "--judge", "ask", "--out", str(tmp_path / folder), "--quiet"]) == 0
        picked = sorted(tmp_path.glob(f"{folder}/0*.png"))
        assert len(picked) == 2 and all(f.read_bytes() in candidates for f in picked)
    with pytest.raises(SystemExit):
        main(["generate", "x", "--best-of", "2", "--judge", "vote"])
    # with a plan: the images of the library call, each image's plan printed
    capsys.readouterr()
    assert main(["generate", "a red circle", "--model", str(tiny_ckpt), "-n", "2", "--seed", "1", "--cfg", "3",
                 "--plan", "--plan-temperature", "0", "--out", str(tmp_path / "plan")]) == 0
    printed = [x for x in capsys.readouterr().out.split("\n") if ": plan: " in x]
    plans: list[list[str]] = []
    model = load_model(tiny_ckpt)
    want = generate_images(model, load_processor(model), "a red circle",
                           ImageGenParams(cfg_weight=3.0, n=2, seed=1, plan=True, plan_temperature=0.0), plans=plans)[0]
    assert printed == [f"{i:03d}.png: plan: {p}" for i, p in enumerate(plans[0])]
    for i, im in enumerate(want):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "plan" / f"{i:03d}.png")), np.asarray(im))


def test_chat_prints_an_answer(tiny_ckpt, tmp_path, capsys):

    Image.new("RGB", (20, 10), (255, 0, 0)).save(tmp_path / "red.png")
    assert main(["chat", "What colour?", "--model", str(tiny_ckpt), "--image", str(tmp_path / "red.png"),
                 "--max-new-tokens", "8"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n") and len(out.strip()) > 0


@pytest.mark.parametrize("argv,match", [
    (["generate", "x", "--cfg", "-1"], "cfg_weight must be >= 0"),
    (["generate", "x", "-n", "0"], "images per prompt"),
    (["generate", "x", "--cfg-end", "-2"], "cfg_end must be >= 0"),
    (["generate", "x", "--best-of", "0"], "best_of (candidates per image) must be >= 1"),
    (["generate", "x", "--plan", "--plan-temperature", "-1"], "plan_temperature must be >= 0"),
    (["generate", "word " * 600], "exceeds the model's context"),
    (["chat", "hi", "--image", "/nonexistent.png"], "no image file"),
    (["chat", "hi", "--temperature", "-2"], "temperature must be >= 0"),
])
def test_bad_arguments(tiny_ckpt, tmp_path, capsys, argv, match):
    argv = argv + ["--model", str(tiny_ckpt)]
    if argv[0] == "generate":
        argv += ["--out", str(tmp_path / "o"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err


def test_unreadable_image(tiny_ckpt, tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert main(["chat", "hi", "--model", str(tiny_ckpt), "--image", str(tmp_path / "bad.png")]) == 2
    assert "could not be decoded" in capsys.readouterr().err


def test_data_shapes_and_score(tmp_path, capsys):
    assert main(["data", "shapes", "--task", "t2i", "--n", "5", "--out", str(tmp_path / "t"), "--quiet"]) == 0
    assert len((tmp_path / "t" / "t2i.jsonl").read_text().splitlines()) == 5
    assert main(["data", "shapes", "--task", "und", "--n", "6", "--out", str(tmp_path / "u"), "--quiet",
                 "--describe-share", "1"]) == 0
    chats = [json.loads(r) for r in (tmp_path / "u" / "und.jsonl").read_text().splitlines()]
    assert all(c["kinds"] == ["describe"] for c in chats)
    assert main(["data", "shapes", "--task", "und", "--n", "6", "--out", str(tmp_path / "m"), "--quiet",
                 "--match-share", "1"]) == 0
    chats = [json.loads(r) for r in (tmp_path / "m" / "und.jsonl").read_text().splitlines()]
    assert all(c["kinds"][0] == "match" and c["messages"][1]["content"] in ("yes", "no") for c in chats)
    with pytest.raises(SystemExit, match="--workers must be >= 1"):
        main(["data", "shapes", "--task", "t2i", "--n", "5", "--out", str(tmp_path / "w"), "--workers", "0"])
    rows = {}
    for order in ("mixed", "raster"):
        assert main(["data", "shapes", "--task", "t2i", "--n", "40", "--out", str(tmp_path / order), "--quiet",
                     "--caption-order", order]) == 0
        rows[order] = [json.loads(x) for x in (tmp_path / order / "t2i.jsonl").read_text().splitlines()]
    assert [r["scene"] for r in rows["mixed"]] == [r["scene"] for r in rows["raster"]]  # same scenes
    assert [r["prompt"] for r in rows["mixed"]] != [r["prompt"] for r in rows["raster"]]  # other group orders
    assert main(["data", "shapes", "--task", "geneval", "--n", "2", "--out", str(tmp_path / "g"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["data", "score", str(tmp_path / "g" / "reference"), "--out", str(tmp_path / "r")]) == 0
    assert "| all | 1.000 |" in capsys.readouterr().out
    assert main(["data", "score", str(tmp_path / "nothing")]) == 2
    assert "no folder" in capsys.readouterr().err
