"""A model folder's default modes (generation_config.json's 'januspro' section): read and written with checks,
followed by the CLI and the server where a request or command line leaves --plan / --look out, overridden by
--no-plan / --no-look; the recipe sets them to the modes a model was trained for."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from januspro.checkpoint import SHIPPED_MODELS, load_model, load_processor
from januspro.checkpoint.defaults import DEFAULTS_FILE, ModelDefaults, read_defaults, write_defaults
from januspro.cli import main
from januspro.config import ConfigError
from januspro.training.shapes_eval import trained_modes


def test_read_write_and_bad_files(tmp_path):
    assert read_defaults(tmp_path) == ModelDefaults()  # no file: both off
    (tmp_path / DEFAULTS_FILE).write_text(json.dumps({"guidance_scale": 5, "bos_token_id": 1}))
    assert read_defaults(tmp_path) == ModelDefaults()  # another library's settings only
    write_defaults(tmp_path, ModelDefaults(plan=True))
    data = json.loads((tmp_path / DEFAULTS_FILE).read_text())
    assert data == {"guidance_scale": 5, "bos_token_id": 1, "januspro": {"plan": True, "look": False}}
    assert read_defaults(tmp_path) == ModelDefaults(plan=True, look=False)
    for bad, match in (({"januspro": {"plan": True, "think": True}}, r"unknown januspro setting\(s\) \['think'\]"),
                       ({"januspro": {"look": "yes"}}, "januspro.look must be true or false, got 'yes'"),
                       ({"januspro": [True]}, "'januspro' must be an object"),
                       ([1, 2], "'januspro' must be an object")):
        (tmp_path / DEFAULTS_FILE).write_text(json.dumps(bad))
        with pytest.raises(ConfigError, match=match):
            read_defaults(tmp_path)
    (tmp_path / DEFAULTS_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match="not readable JSON"):
        read_defaults(tmp_path)


def test_trained_modes_follow_the_data_record():
    def state(**data):
        return {"parts": {"data": data}}

    assert trained_modes({"parts": {}}) == ModelDefaults()
    assert trained_modes(state(plan_share=0.0, sft_plan_share=0.0, sft_look_share=0.0)) == ModelDefaults()
    assert trained_modes(state(plan_share=0.5)) == ModelDefaults(plan=True)
    assert trained_modes(state(sft_plan_share=0.5, sft_look_share=0.5)) == ModelDefaults(plan=True, look=True)


def test_the_shipped_model_plans_and_looks_by_default():
    assert read_defaults(SHIPPED_MODELS["janus-pro-shapes"]) == ModelDefaults(plan=True, look=True)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """The tiny test model twice: without defaults, and with plan and look on by default."""
    from helpers import make_tiny_checkpoint

    plain = make_tiny_checkpoint(tmp_path_factory.mktemp("plain"))
    modal = tmp_path_factory.mktemp("modal") / "m"
    shutil.copytree(plain, modal)
    write_defaults(modal, ModelDefaults(plan=True, look=True))
    return plain, modal


def _same_pngs(a, b) -> bool:
    return all(np.array_equal(np.asarray(Image.open(a / f"{i:03d}.png")), np.asarray(Image.open(b / f"{i:03d}.png")))
               for i in range(2))


def test_cli_generate_follows_the_models_plan_default(folders, tmp_path, capsys):
    plain, modal = folders
    common = ["a red circle", "-n", "2", "--seed", "3", "--cfg", "3", "--quiet"]

    def run(model, *flags, out):
        assert main(["generate", *common, "--model", str(model), *flags, "--out", str(tmp_path / out)]) == 0
        return capsys.readouterr()

    by_default = run(modal, out="default")
    assert by_default.out.count(": plan: ") == 2  # planned, each image's plan printed
    explicit = run(plain, "--plan", out="explicit")
    assert explicit.out == by_default.out.replace(str(tmp_path / "default"), str(tmp_path / "explicit"))
    assert _same_pngs(tmp_path / "default", tmp_path / "explicit")
    off = run(modal, "--no-plan", out="off")
    assert ": plan: " not in off.out
    assert ": plan: " not in run(plain, out="plain").out  # a folder without the section: off
    assert _same_pngs(tmp_path / "off", tmp_path / "plain")
    # without --quiet the default that turned planning on is said on stderr
    assert main(["generate", "x", "-n", "1", "--model", str(modal), "--out", str(tmp_path / "loud")]) == 0
    assert "[plan on: the model's default" in capsys.readouterr().err


def test_cli_chat_follows_the_models_look_default(folders, tmp_path, capsys):
    plain, modal = folders
    Image.new("RGB", (16, 16), (255, 0, 0)).save(tmp_path / "red.png")
    ask = ["chat", "What colour?", "--image", str(tmp_path / "red.png"), "--max-new-tokens", "4"]
    assert main([*ask, "--model", str(modal)]) == 0
    looked = capsys.readouterr()
    assert "[look on: the model's default" in looked.err and "[look] " in looked.err
    assert main([*ask, "--model", str(plain), "--look"]) == 0
    explicit = capsys.readouterr()
    assert explicit.out == looked.out and "[look] " in explicit.err
    assert main([*ask, "--model", str(modal), "--no-look"]) == 0
    assert "[look" not in capsys.readouterr().err
    assert main([*ask, "--model", str(modal), "--no-look", "--look-question", "What is there?"]) == 2
    assert "cannot go with --no-look" in capsys.readouterr().err


def test_server_follows_the_models_defaults(folders):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from januspro.serve.app import create_app

    plain, _ = folders
    model = load_model(plain)
    app = create_app(model, load_processor(model), model_id="tiny", defaults=ModelDefaults(plan=True, look=True))
    buf = __import__("io").BytesIO()
    Image.new("RGB", (16, 16), (0, 0, 255)).save(buf, format="PNG")
    url = "data:image/png;base64," + __import__("base64").b64encode(buf.getvalue()).decode()

    def chat(**kw):
        return {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                                          {"type": "text", "text": "What is it?"}]}],
                "max_tokens": 4, **kw}

    with TestClient(app) as c:
        assert c.get("/health").json()["defaults"] == {"plan": True, "look": True}
        by_default = c.post("/v1/chat/completions", json=chat()).json()
        explicit = c.post("/v1/chat/completions", json=chat(look=True)).json()
        assert "look" in by_default and by_default["look"] == explicit["look"]
        assert by_default["choices"][0]["message"] == explicit["choices"][0]["message"]
        assert "look" not in c.post("/v1/chat/completions", json=chat(look=False)).json()
        img = {"prompt": "a red circle", "n": 1, "seed": 0, "cfg_weight": 3}
        assert "plan" in c.post("/v1/images/generations", json=img).json()["data"][0]
        assert "plan" not in c.post("/v1/images/generations", json={**img, "plan": False}).json()["data"][0]
