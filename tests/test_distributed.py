"""Two processes (gloo, loopback) train like one process with the same global batch."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from helpers import make_tiny_checkpoint
from januspro.shapes.datasets import write_task

pytest.importorskip("yaml")
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _overrides(root: Path, out: Path) -> list[str]:
    return [f"model.init={root / 'model'}", f"data.und={root / 'und' / 'und.jsonl'}",
            f"data.t2i={root / 't2i' / 't2i.jsonl'}", f"data.text={root / 'text' / 'text.jsonl'}",
            "data.ratio=[1,1,2]", "data.pack_length=512", "train.steps=3", "train.batch_size=8",
            f"train.out={out}", "train.progress=false", "optim.warmup_steps=0", "train.parallel=ddp",
            "train.device=cpu", "train.dtype=fp32"]


def _worker(rank: int, world: int, port: int, root: str, out: str) -> None:
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    from januspro.training import load_run_config, train

    train(load_run_config(CONFIGS / "stage2.yaml", _overrides(Path(root), Path(out))))
    torch.distributed.destroy_process_group()


def _losses(out: Path) -> list[float]:
    return [json.loads(x)["loss"] for x in (out / "log.jsonl").read_text().splitlines() if '"loss"' in x]


def test_two_process_gloo_matches_single_process(tmp_path):
    root = tmp_path / "data"
    make_tiny_checkpoint(root / "model")
    for task in ("und", "t2i", "text"):
        write_task(task, root / task, 12, seed=2, resolution=32)
    from januspro.training import load_run_config, train

    torch.manual_seed(0)
    train(load_run_config(CONFIGS / "stage2.yaml", _overrides(root, tmp_path / "single")))
    mp.spawn(_worker, args=(2, _free_port(), str(root), str(tmp_path / "ddp")), nprocs=2, join=True)
    single, ddp = _losses(tmp_path / "single"), _losses(tmp_path / "ddp")
    print("single:", single, "ddp:", ddp)
    assert len(single) == len(ddp) == 3
    for a, b in zip(single, ddp, strict=True):
        assert abs(a - b) <= 1e-4 * max(1.0, abs(a))
    # the trained weights agree too
    from januspro.checkpoint import load_model

    w1 = load_model(tmp_path / "single" / "model").state_dict()
    w2 = load_model(tmp_path / "ddp" / "model").state_dict()
    assert max((w1[k] - w2[k]).abs().max().item() for k in w1) < 1e-4
