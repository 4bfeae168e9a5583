import json
import subprocess
import sys

import torch

from januspro.checkpoint import load_model, save_model
from januspro.cli import main
from januspro.config import preset
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
