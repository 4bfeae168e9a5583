"""Training: stage configs, packing equivalence, frozen sets, exact resume, atomic checkpoints."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from helpers import make_tiny_checkpoint
from januspro.shapes.datasets import write_task
from januspro.training import RunConfigError, Trainer, load_run_config
from januspro.training.packing import pack, packed_loss
from januspro.training.trainer import param_groups

pytest.importorskip("yaml")
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    ckpt = make_tiny_checkpoint(root / "model")
    for task in ("und", "t2i", "text"):
        write_task(task, root / task, 12, seed=1, resolution=32)
    return root, ckpt


def _overrides(root: Path, ckpt: Path, out: Path, steps: int = 3, extra: tuple[str, ...] = ()) -> list[str]:
    return [f"model.init={ckpt}", f"data.und={root / 'und' / 'und.jsonl'}", f"data.t2i={root / 't2i' / 't2i.jsonl'}",
            f"data.text={root / 'text' / 'text.jsonl'}", "data.pack_length=512", f"train.steps={steps}",
            "train.batch_size=4", f"train.out={out}", "train.device=cpu", "train.dtype=fp32", "train.progress=false",
            "train.save_every=0", "optim.warmup_steps=2", *extra]


def test_every_shipped_yaml_parses():
    files = sorted(CONFIGS.glob("*.yaml"))
    assert files
    for f in files:
        cfg = load_run_config(f)
        assert cfg.optim.betas == [0.9, 0.95] and cfg.optim.grad_clip == 1.0
    ratios = {f.stem: load_run_config(f).data.ratio for f in files if f.stem.startswith("stage")}
    assert ratios == {"stage1": [1, 0, 3], "stage2": [2, 3, 5], "stage3": [5, 1, 4]}


def test_dtype_auto_resolves_per_device(monkeypatch):
    from januspro.training import config as C

    assert C.use_bf16_autocast("bf16", "cpu") and not C.use_bf16_autocast("fp32", "cuda")
    assert C.use_bf16_autocast("auto", "cuda")
    # AVX512-BF16 without AMX tiles: bf16 autocast is slower than fp32 there, so auto keeps fp32
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert not C.fast_cpu_bf16() and not C.use_bf16_autocast("auto", "cpu")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert C.fast_cpu_bf16()
    monkeypatch.setattr(C, "fast_cpu_bf16", lambda: False)
    assert not C.use_bf16_autocast("auto", "cpu")
    monkeypatch.setattr(C, "fast_cpu_bf16", lambda: True)
    assert C.use_bf16_autocast("auto", "cpu")
    with pytest.raises(RunConfigError, match="fp32, bf16 or auto"):
        load_run_config(CONFIGS / "stage1.yaml", ["train.dtype=fp16"])


def test_unknown_keys_and_bad_values(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lr: 1e-3\n  momentum: 0.9\n")
    with pytest.raises(RunConfigError, match="unknown key optim.'momentum'"):
        load_run_config(bad)
    with pytest.raises(RunConfigError, match="unknown key"):
        load_run_config(None, ["train.stepz=3", "data.und=x"])
    with pytest.raises(RunConfigError, match="names no file"):
        load_run_config(None, ["data.t2i=", "data.und="])
    with pytest.raises(RunConfigError, match="must be a number"):
        load_run_config(CONFIGS / "stage1.yaml", ["optim.lr=fast"])
    cfg = load_run_config(CONFIGS / "stage1.yaml", ["optim.lr=5e-4", "data.ratio=[1,1,1]", "data.text=t.jsonl"])
    assert cfg.optim.lr == 5e-4 and cfg.data.ratio == [1.0, 1.0, 1.0]
    with pytest.raises(RunConfigError, match="loss_weights"):
        load_run_config(CONFIGS / "stage1.yaml", ["data.loss_weights=[1,-1,1]"])


@pytest.mark.parametrize("stage", ["stage1", "stage2", "stage3"])
def test_three_step_smoke_run_of_every_stage(stage, tiny_setup, tmp_path):
    root, ckpt = tiny_setup
    cfg = load_run_config(CONFIGS / f"{stage}.yaml", _overrides(root, ckpt, tmp_path / stage))
    trainer = Trainer(cfg)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    stats = trainer.run()
    assert len(stats) == 3 and all(torch.isfinite(torch.tensor(s.loss)) for s in stats)
    after = trainer.model.state_dict()
    groups = param_groups(trainer.model)
    trainable = set(cfg.trainable_groups())
    for name, module in groups.items():
        prefix = {"lm_head": "lm_head."}.get(name, name + ".")
        keys = [k for k in before if k.startswith(prefix)]
        changed = any(not torch.equal(before[k], after[k]) for k in keys)
        if name in trainable:
            assert changed, f"{stage}: {name} should have trained"
        elif name != "llm" or "lm_head" not in trainable:  # a tied lm_head would move llm.embed_tokens
            assert not changed, f"{stage}: {name} should be frozen"
        del module
    assert (tmp_path / stage / "model" / "config.json").is_file()
    assert len((tmp_path / stage / "log.jsonl").read_text().splitlines()) == 3


def test_packed_loss_equals_sum_of_samples_alone(tiny_setup, tmp_path):
    root, ckpt = tiny_setup
    cfg = load_run_config(None, _overrides(root, ckpt, tmp_path / "p", extra=("data.ratio=[1,1,1]",)))
    tr = Trainer(cfg)
    tr.model.eval()
    samples = tr.step_samples() + tr.step_samples()
    assert {s.kind for s in samples} == {"und", "text", "t2i"}
    shape = (3, 32, 32)
    with torch.no_grad():
        packed = pack(samples, 1024, tr.tokenizer.pad_id, shape)
        assert packed.ids.shape[0] < len(samples)  # several samples really share rows
        total = packed_loss(tr.model, packed, tr.tokenizer.image_id, 1.0)
        alone = sum(packed_loss(tr.model, pack([s], 1024, tr.tokenizer.pad_id, shape), tr.tokenizer.image_id,
                                1.0).total for s in samples)
    assert total.text_count + total.image_count == sum(sum(1 for k in s.target_kind if k) for s in samples)
    torch.testing.assert_close(total.total, alone, rtol=1e-5, atol=1e-4)
    # task weights scale each sample's targets: packed weighted loss = sum of weight x loss alone
    weights = {"und": 7.0, "text": 0.5, "t2i": 2.0}
    with torch.no_grad():
        weighted = packed_loss(tr.model, pack(samples, 1024, tr.tokenizer.pad_id, shape, weights),
                               tr.tokenizer.image_id, 1.0)
        expect = sum(weights[s.kind] * packed_loss(tr.model, pack([s], 1024, tr.tokenizer.pad_id, shape),
                                                   tr.tokenizer.image_id, 1.0).total for s in samples)
    torch.testing.assert_close(weighted.total, expect, rtol=1e-5, atol=1e-4)
    assert weighted.text_sum == pytest.approx(total.text_sum, rel=1e-5)  # the logged losses stay unweighted
    assert not torch.allclose(weighted.total, total.total)


@pytest.mark.parametrize("compiled", [False, True])  # the recipe compiles Stage III's layers
def test_exact_resume(tiny_setup, tmp_path, compiled):
    root, ckpt = tiny_setup
    extra = ("data.ratio=[1,1,2]", f"train.compile={str(compiled).lower()}")
    ov = _overrides(root, ckpt, tmp_path / "full", steps=6, extra=extra)
    full = [s.loss for s in Trainer(load_run_config(CONFIGS / "stage2.yaml", ov)).run()]
    # interrupted run: 3 steps, checkpoint, then a new process-equivalent trainer resumes to 6
    ov_a = _overrides(root, ckpt, tmp_path / "resumed", steps=3, extra=extra)
    first = [s.loss for s in Trainer(load_run_config(CONFIGS / "stage2.yaml", ov_a)).run()]
    ov_b = _overrides(root, ckpt, tmp_path / "resumed", steps=6, extra=extra)
    second = [s.loss for s in Trainer(load_run_config(CONFIGS / "stage2.yaml", ov_b)).run()]
    assert first + second == full  # to the last digit


@pytest.mark.parametrize("checkpointing", [False, True])
def test_compiled_layers_train_like_eager(tiny_setup, tmp_path, checkpointing):
    """train.compile: the same losses (to float tolerance) and the same parameter names as the eager run."""
    from torch._dynamo.utils import counters

    root, ckpt = tiny_setup
    extra = ("data.ratio=[1,1,2]", f"train.activation_checkpointing={str(checkpointing).lower()}")
    eager = Trainer(load_run_config(CONFIGS / "stage2.yaml", _overrides(root, ckpt, tmp_path / "e", 4, extra)))
    want = [s.loss for s in eager.run()]
    tr = Trainer(load_run_config(CONFIGS / "stage2.yaml",
                                 _overrides(root, ckpt, tmp_path / "c", 4, (*extra, "train.compile=true"))))
    torch._dynamo.reset()  # no graph cached by an earlier test: this run must compile its own
    graphs = counters["stats"]["unique_graphs"]
    got = [s.loss for s in tr.run()]
    assert got == pytest.approx(want, rel=1e-4)
    assert counters["stats"]["unique_graphs"] > graphs  # the layers really ran compiled
    assert set(tr.model.state_dict()) == set(eager.model.state_dict())
    with pytest.raises(RunConfigError, match="fsdp"):
        load_run_config(None, _overrides(root, ckpt, tmp_path / "f", 1, ("train.compile=true",
                                                                             "train.parallel=fsdp")))


@pytest.mark.parametrize("compile_flag", [True, False])
def test_compile_without_a_cpp_compiler_runs_eagerly(tiny_setup, tmp_path, monkeypatch, recwarn, compile_flag):
    """On a CPU with no C++ compiler (which torch.compile needs there) train.compile warns and trains eagerly
    instead of failing inside inductor at the first step; without train.compile nothing is said."""
    from torch._dynamo.utils import counters

    import januspro.training.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "cpp_compiler_available", lambda: False)
    root, ckpt = tiny_setup
    extra = ("data.ratio=[1,1,2]", f"train.compile={str(compile_flag).lower()}")
    torch._dynamo.reset()
    graphs = counters["stats"]["unique_graphs"]
    losses = [s.loss for s in Trainer(load_run_config(CONFIGS / "stage2.yaml",
                                                      _overrides(root, ckpt, tmp_path / "r", 2, extra))).run()]
    said = [str(w.message) for w in recwarn if "C++ compiler" in str(w.message)]
    assert len(said) == (1 if compile_flag else 0)
    assert counters["stats"]["unique_graphs"] == graphs and all(math.isfinite(x) for x in losses)  # eager


def test_atomic_checkpoint(tiny_setup, tmp_path, monkeypatch):
    root, ckpt = tiny_setup
    cfg = load_run_config(CONFIGS / "stage1.yaml", _overrides(root, ckpt, tmp_path / "a", steps=2))
    tr = Trainer(cfg)
    tr.run()
    good = (tmp_path / "a" / "checkpoint.pt").read_bytes()

    def boom(obj, f, *a, **k):
        Path(f).write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        tr.save_checkpoint()
    monkeypatch.undo()
    assert (tmp_path / "a" / "checkpoint.pt").read_bytes() == good
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.endswith(".tmp")]
    resumed = Trainer(load_run_config(CONFIGS / "stage1.yaml", _overrides(root, ckpt, tmp_path / "a", steps=2)))
    assert resumed.step == 2


def test_nan_guard(tiny_setup, tmp_path):
    from januspro.training import TrainingError

    root, ckpt = tiny_setup
    tr = Trainer(load_run_config(CONFIGS / "stage1.yaml", _overrides(root, ckpt, tmp_path / "n")))
    with torch.no_grad():
        tr.model.gen_head.vision_head.weight.fill_(float("nan"))
    with pytest.raises(TrainingError, match="loss is nan"):
        tr.train_step()


def test_log_is_json(tiny_setup, tmp_path):
    root, ckpt = tiny_setup
    Trainer(load_run_config(CONFIGS / "stage3.yaml", _overrides(root, ckpt, tmp_path / "l", steps=1))).run()
    row = json.loads((tmp_path / "l" / "log.jsonl").read_text().splitlines()[0])
    assert set(row) >= {"step", "loss", "text_loss", "image_loss", "lr", "tokens_per_s", "grad_norm"}


def test_cli_train(tiny_setup, tmp_path, capsys):
    from januspro.cli import main

    root, ckpt = tiny_setup
    argv = ["train", str(CONFIGS / "stage1.yaml"), *_overrides(root, ckpt, tmp_path / "cli", steps=2)]
    assert main(argv) == 0
    assert "step 2: loss" in capsys.readouterr().out
    assert main(["train", str(CONFIGS / "stage1.yaml"), "optim.lr=-1"]) == 2
    assert "lr > 0" in capsys.readouterr().err


def test_vq_component_stage(tiny_setup, tmp_path):
    root, _ = tiny_setup
    ov = [f"data.t2i={root / 't2i' / 't2i.jsonl'}", "model.init=tiny", "train.steps=4", "train.batch_size=4",
          f"train.out={tmp_path / 'vq'}", "train.progress=false", "train.eval_every=2", "stage.vq_restart_every=2",
          "stage.eval_items=2", "optim.warmup_steps=0"]
    cfg = load_run_config(CONFIGS / "vq_shapes.yaml", ov)
    from januspro.training.trainer import make_trainer

    tr = make_trainer(cfg)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    stats = tr.run()
    assert len(stats) == 4 and stats[1].restarted >= 0 and stats[-1].codes_used >= 1
    after = tr.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("vq."))
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("vq."))
    rows = [json.loads(x) for x in (tmp_path / "vq" / "log.jsonl").read_text().splitlines()]
    evals = [r["eval"] for r in rows if "eval" in r]
    assert evals and 0.0 <= evals[-1]["vq_exact"] <= 1.0
    assert (tmp_path / "vq" / "model" / "config.json").is_file()


@pytest.mark.filterwarnings("ignore:train.dtype is bf16")
def test_vq_stage_honours_train_dtype(tiny_setup, tmp_path):
    """``train.dtype: bf16`` runs the VQ's convolutions under bf16 autocast (an option; the recipe's VQ parts use fp32):
    the first loss moves a little off the fp32 one, stays finite, and the codebook search and losses stay fp32."""
    from januspro.training.trainer import make_trainer

    root, _ = tiny_setup
    first = {}
    for dtype in ("fp32", "bf16"):
        ov = [f"data.t2i={root / 't2i' / 't2i.jsonl'}", "model.init=tiny", "train.steps=2", "train.batch_size=4",
              f"train.out={tmp_path / dtype}", "train.progress=false", "train.eval_every=0",
              "stage.vq_restart_every=0", "optim.warmup_steps=0", f"train.dtype={dtype}"]
        tr = make_trainer(load_run_config(CONFIGS / "vq_shapes.yaml", ov))
        seen: list[torch.dtype] = []
        hook = tr.model.vq.quantize.register_forward_pre_hook(lambda m, args, seen=seen: seen.append(args[0].dtype))
        stats = tr.run()
        hook.remove()
        assert seen and set(seen) == {torch.float32}
        assert all(math.isfinite(s.loss) for s in stats)
        first[dtype] = stats[0].loss
    assert first["bf16"] != first["fp32"] and abs(first["bf16"] - first["fp32"]) < 0.05 * first["fp32"]


def test_component_stages_take_max_items_images(tiny_setup, tmp_path):
    from januspro.training.data import DataError
    from januspro.training.trainer import make_trainer

    root, _ = tiny_setup
    n_all = len((root / "t2i" / "t2i.jsonl").read_text().splitlines())
    base = [f"data.t2i={root / 't2i' / 't2i.jsonl'}", "model.init=tiny", f"train.out={tmp_path / 'vq'}",
            "train.progress=false", "stage.eval_items=2"]
    assert len(make_trainer(load_run_config(CONFIGS / "vq_shapes.yaml", base)).images) == n_all
    tr = make_trainer(load_run_config(CONFIGS / "vq_shapes.yaml", base + ["data.max_items=5"]))
    assert 5 < n_all and len(tr.images) == 5
    with pytest.raises(DataError, match="max_items"):
        make_trainer(load_run_config(CONFIGS / "vq_shapes.yaml", base + ["data.max_items=-1"]))


def test_vq_weights_round_trip(tmp_path):
    from januspro.config import preset
    from januspro.models.janus import JanusModel
    from januspro.training.data import DataError
    from januspro.training.trainer import load_vq_weights, save_vq_weights

    a, b = JanusModel(preset("tiny")), JanusModel(preset("tiny"))
    save_vq_weights(a, tmp_path / "vq.safetensors")
    load_vq_weights(b, tmp_path / "vq.safetensors")
    assert all(torch.equal(x, y) for x, y in zip(a.vq.state_dict().values(), b.vq.state_dict().values(), strict=True))
    with pytest.raises(DataError, match="does not fit"):
        load_vq_weights(JanusModel(preset("shapes")), tmp_path / "vq.safetensors")


def test_vq_in_place_inference_matches_the_training_path():
    """The VQ's inference path runs SiLU and the residual add in place and folds each upsampling into its
    convolution; with gradients it must not (autograd needs the inputs), and both give the same images (up to
    the float rounding of the folded convolution's other summation order)."""
    from januspro.config import preset
    from januspro.models.vq import VQModel

    torch.manual_seed(0)
    vq = VQModel(preset("tiny").vq)
    images = torch.rand(2, 3, vq.cfg.image_size, vq.cfg.image_size) * 2 - 1
    with torch.no_grad():
        z = vq.quantize_images(images).z_q
    out = vq.decode_latents(z.clone().requires_grad_())  # training path: gradients through the whole decoder
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in vq.decoder.parameters())
    with torch.no_grad():
        torch.testing.assert_close(vq.decode_latents(z), out.detach(), rtol=1e-5, atol=1e-5)
    with torch.inference_mode():
        torch.testing.assert_close(vq.decode_latents(z.clone()), out.detach(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_vq_upsample_folded_into_its_convolution_equals_upsampling_then_convolving(dtype):
    import torch.nn.functional as F

    from januspro.models.vq import Upsample

    torch.manual_seed(0)
    up = Upsample(6).to(dtype)
    tol = {torch.float64: 1e-12, torch.float32: 1e-5, torch.bfloat16: 3e-2}[dtype]
    x = torch.randn(3, 6, 5, 7, dtype=dtype)  # not square: rows and columns fold separately
    for fmt in (torch.contiguous_format, torch.channels_last):  # the attention block hands on channels-last
        with torch.no_grad():
            got = up(x.contiguous(memory_format=fmt))
            want = up.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        assert got.shape == (3, 6, 10, 14) and got.dtype == dtype
        assert got.is_contiguous(memory_format=fmt)
        torch.testing.assert_close(got, want, rtol=tol, atol=tol)
    # with gradients the plain path runs (and gives the same values)
    torch.testing.assert_close(up(x.clone().requires_grad_()).detach(), want, rtol=tol, atol=tol)


def test_lora_train_merge_and_save(tiny_setup, tmp_path):
    from januspro.checkpoint import load_model
    from januspro.training.lora import LoRAConfig, LoRALinear, apply_lora, merge_lora

    root, ckpt = tiny_setup
    # a fresh adapter changes nothing; merging reproduces the adapted outputs
    base = load_model(ckpt)
    x = torch.randn(2, 5, base.cfg.llm.hidden_size)
    ref = base(x)
    apply_lora(base, LoRAConfig(rank=4, alpha=8.0))
    assert torch.allclose(base(x), ref)
    with torch.no_grad():
        for m in base.modules():
            if isinstance(m, LoRALinear):
                m.lora_b.normal_(0, 0.05)
    adapted = base(x)
    assert not torch.allclose(adapted, ref)
    assert merge_lora(base) == 4 * base.cfg.llm.num_layers
    torch.testing.assert_close(base(x), adapted, rtol=1e-5, atol=1e-5)
    # a LoRA run: only adapters (and lora.also_train groups) change; the saved model is a plain merged one
    ov = _overrides(root, ckpt, tmp_path / "lora", steps=2, extra=("lora.rank=4", "lora.also_train=[gen_head]"))
    tr = Trainer(load_run_config(CONFIGS / "stage2.yaml", ov))
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    tr.run()
    after = tr.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(".lora_" in k or k.startswith("gen_head.") for k in changed)
    saved = load_model(tmp_path / "lora" / "model")
    assert not any("lora" in k for k in saved.state_dict())
    with torch.no_grad():
        tr.model.eval()
        torch.testing.assert_close(saved(x), tr.model(x), rtol=1e-4, atol=1e-4)


def test_siglip_component_stage(tiny_setup, tmp_path):
    from januspro.training.trainer import make_trainer

    root, ckpt = tiny_setup
    ov = [f"data.t2i={root / 't2i' / 't2i.jsonl'}", f"model.init={ckpt}", "model.tokenizer=", "train.steps=3",
          "train.batch_size=4",
          f"train.out={tmp_path / 'sig'}", "train.progress=false", "train.eval_every=3", "stage.eval_items=4",
          "optim.warmup_steps=0"]
    tr = make_trainer(load_run_config(CONFIGS / "siglip_shapes.yaml", ov))
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    stats = tr.run()
    assert len(stats) == 3 and all(s.loss > 0 for s in stats)
    after = tr.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("vision."))
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("vision."))
    rows = [json.loads(x) for x in (tmp_path / "sig" / "log.jsonl").read_text().splitlines()]
    assert any("eval" in r and 0 <= r["eval"]["i2t_top1"] <= 1 for r in rows)
    # exact resume includes the text tower and the temperature
    resumed = make_trainer(load_run_config(CONFIGS / "siglip_shapes.yaml", ov))
    assert resumed.step == 3
    assert torch.equal(resumed.heads.log_t, tr.heads.log_t)


@pytest.mark.filterwarnings("ignore:train.dtype is bf16")
def test_siglip_stage_honours_train_dtype(tiny_setup, tmp_path):
    """Like every stage, SigLIP's forward runs under the autocast ``train.dtype`` asks for (``Trainer.autocast``):
    bf16 moves the first loss a little off the fp32 one; its losses stay finite."""
    from januspro.training.trainer import make_trainer

    root, ckpt = tiny_setup
    first = {}
    for dtype in ("fp32", "bf16"):
        ov = [f"data.t2i={root / 't2i' / 't2i.jsonl'}", f"model.init={ckpt}", "model.tokenizer=", "train.steps=2",
              "train.batch_size=4", f"train.out={tmp_path / dtype}", "train.progress=false", "stage.eval_items=4",
              "optim.warmup_steps=0", "stage.dense_weight=1", f"train.dtype={dtype}"]
        stats = make_trainer(load_run_config(CONFIGS / "siglip_shapes.yaml", ov)).run()
        assert all(math.isfinite(s.loss) for s in stats)
        first[dtype] = stats[0].loss
    assert first["bf16"] != first["fp32"] and abs(first["bf16"] - first["fp32"]) < 0.05 * first["fp32"]


def test_siglip_dense_patch_loss(tiny_setup, tmp_path):
    """stage.dense_weight adds the per-patch object loss: labels from the records' scenes, a patch head that
    trains, patch accuracy in the eval; records without a scene and a negative weight are clear errors."""
    from januspro.shapes.render import patch_labels
    from januspro.shapes.world import Scene
    from januspro.training.data import DataError
    from januspro.training.trainer import make_trainer

    root, ckpt = tiny_setup
    t2i = root / "t2i" / "t2i.jsonl"
    ov = [f"data.t2i={t2i}", f"model.init={ckpt}", "model.tokenizer=", "train.steps=3", "train.batch_size=4",
          f"train.out={tmp_path / 'sig'}", "train.progress=false", "train.eval_every=3", "stage.eval_items=4",
          "optim.warmup_steps=0", "stage.dense_weight=0.5"]
    tr = make_trainer(load_run_config(CONFIGS / "siglip_shapes.yaml", ov))
    v = tr.model.cfg.vision
    rows = [json.loads(x) for x in t2i.read_text().splitlines()]
    assert tr.labels.shape == (len(rows), v.num_tokens)
    assert torch.equal(tr.labels[2], torch.from_numpy(patch_labels(Scene.from_dict(rows[2]["scene"]),
                                                                    v.image_size, v.patch_size)))
    head = tr.heads.patch_head.weight.detach().clone()
    stats = tr.run()
    assert all(s.parts["dense_loss"] > 0 and abs(s.loss - s.parts["sigmoid_loss"] - 0.5 * s.parts["dense_loss"]) < 1e-4
               for s in stats)
    assert not torch.equal(head, tr.heads.patch_head.weight)
    log = [json.loads(x) for x in (tmp_path / "sig" / "log.jsonl").read_text().splitlines()]
    assert any("eval" in r and 0 <= r["eval"]["patch_acc"] <= 1 for r in log)
    resumed = make_trainer(load_run_config(CONFIGS / "siglip_shapes.yaml", ov))
    assert torch.equal(resumed.heads.patch_head.weight, tr.heads.patch_head.weight)
    bare = tmp_path / "bare.jsonl"
    bare.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "scene"}) + "\n" for r in rows))
    (tmp_path / "images").symlink_to(root / "t2i" / "images")
    with pytest.raises(DataError, match="scene"):
        make_trainer(load_run_config(CONFIGS / "siglip_shapes.yaml", [*ov, f"data.t2i={bare}",
                                                                      f"train.out={tmp_path / 'b'}"]))
    with pytest.raises(DataError, match="dense_weight"):
        make_trainer(load_run_config(CONFIGS / "siglip_shapes.yaml", [*ov, "stage.dense_weight=-1",
                                                                      f"train.out={tmp_path / 'c'}"]))


def test_siglip_dense_loss_with_factored_labels(tiny_setup, tmp_path):
    """stage.dense_labels=factored: a patch head of shape + colour classes (each with a background class), its loss
    the sum of the two cross-entropies, the eval's patch accuracy counting a patch right when both are; an unknown
    label kind is a clear error."""
    import torch.nn.functional as F

    from januspro.processing.image import normalise_understanding
    from januspro.shapes.render import (
        FACTORED_PATCH_CLASSES,
        FACTORED_SHAPE_CLASSES,
        factor_patch_labels,
        patch_class,
    )
    from januspro.shapes.world import COLORS, SHAPES
    from januspro.training.data import DataError
    from januspro.training.trainer import make_trainer

    pairs = torch.tensor([0] + [patch_class(s, c) for s in SHAPES for c in COLORS])
    shape, color = factor_patch_labels(pairs)
    assert shape.tolist() == [0] + [1 + i for i in range(len(SHAPES)) for _ in COLORS]
    assert color.tolist() == [0] + [1 + j for _ in SHAPES for j in range(len(COLORS))]
    root, ckpt = tiny_setup
    ov = [f"data.t2i={root / 't2i' / 't2i.jsonl'}", f"model.init={ckpt}", "model.tokenizer=", "train.steps=2",
          "train.batch_size=4", f"train.out={tmp_path / 'sig'}", "train.progress=false", "stage.eval_items=4",
          "optim.warmup_steps=0", "stage.dense_weight=0.5", "stage.dense_labels=factored"]
    tr = make_trainer(load_run_config(CONFIGS / "siglip_shapes.yaml", ov))
    assert tr.heads.patch_head.out_features == FACTORED_PATCH_CLASSES == 1 + len(SHAPES) + 1 + len(COLORS)
    logits = torch.randn(2, 3, FACTORED_PATCH_CLASSES)
    labels = pairs[torch.tensor([[0, 5, 24], [13, 0, 1]])]
    s, c = factor_patch_labels(labels)
    want = (F.cross_entropy(logits[..., :FACTORED_SHAPE_CLASSES].flatten(0, 1), s.flatten())
            + F.cross_entropy(logits[..., FACTORED_SHAPE_CLASSES:].flatten(0, 1), c.flatten()))
    assert torch.allclose(tr.dense_loss(logits, labels), want)
    # predictions join the two heads' answers back into pair classes (background unless both name an object)
    exact = torch.cat([F.one_hot(s, FACTORED_SHAPE_CLASSES), F.one_hot(c, 1 + len(COLORS))], -1).float()
    assert torch.equal(tr.patch_predictions(exact), labels)
    stats = tr.run()
    assert all(s.parts["dense_loss"] > 0 for s in stats)
    assert 0 <= tr.evaluate()["patch_acc"] <= 1
    with pytest.raises(DataError, match="dense_labels must be 'pair' or 'factored'"):
        make_trainer(load_run_config(CONFIGS / "siglip_shapes.yaml", [*ov, "stage.dense_labels=joint",
                                                                      f"train.out={tmp_path / 'c'}"]))
    # dense_grey: the shape classifier also learns from greyscale copies of the batch's first images
    grey = make_trainer(load_run_config(CONFIGS / "siglip_shapes.yaml", [*ov, "stage.dense_grey=2",
                                                                         f"train.out={tmp_path / 'g'}"]))
    px = grey.pixels[:2].float()
    luma = (0.299 * px[:, 0] + 0.587 * px[:, 1] + 0.114 * px[:, 2]).round()
    seen = []
    real_vision = grey.model.vision.forward
    grey.model.vision.forward = lambda x: (seen.append(x.detach().clone()), real_vision(x))[1]
    loss = grey.grey_shape_loss([0, 1])
    v = grey.model.cfg.vision
    assert torch.isfinite(loss) and len(seen) == 1 and seen[0].shape[0] == 2
    want = normalise_understanding(luma[:, None].expand(-1, 3, -1, -1), v.image_mean, v.image_std)
    assert torch.allclose(seen[0], want)  # the same luminance in all three channels
    del grey.model.vision.forward
    stats = grey.run()
    assert all(math.isfinite(s.loss) for s in stats)
    for bad in (["stage.dense_grey=-1"], ["stage.dense_grey=2", "stage.dense_labels=pair"],
                ["stage.dense_grey=2", "stage.dense_weight=0"]):
        with pytest.raises(DataError, match="dense_grey"):
            make_trainer(load_run_config(CONFIGS / "siglip_shapes.yaml", [*ov, *bad, f"train.out={tmp_path / 'd'}"]))


def test_committed_shapes_vq_reconstructs_scenes():
    """The committed shapes VQ loads into the shapes preset and reconstructs scenes the detector reads back."""
    import numpy as np

    from januspro.config import preset
    from januspro.models.janus import JanusModel
    from januspro.processing.image import to_pil
    from januspro.shapes.detect import detect
    from januspro.shapes.render import render
    from januspro.shapes.world import sample_scene
    from januspro.training.trainer import load_vq_weights

    path = CONFIGS.parent / "artifacts" / "shapes-vq" / "vq.safetensors"
    model = JanusModel(preset("shapes")).eval()
    load_vq_weights(model, path)
    rng = np.random.default_rng(77)
    scenes = [sample_scene(rng) for _ in range(40)]
    x = torch.stack([torch.from_numpy(render(s)).permute(2, 0, 1).float() / 127.5 - 1 for s in scenes])
    with torch.no_grad():
        codes = model.vq.encode(x)
        rec = model.vq.decode_code(codes)
    assert codes.shape == (40, 64)
    exact = np.mean([sorted((d.shape, d.color, d.size) for d in detect(im)) ==
                     sorted((o.shape, o.color, o.size) for o in s.objects) for im, s in zip(to_pil(rec), scenes,
                                                                                            strict=True)])
    print(f"committed VQ: {exact:.3f} of 40 clean scenes read back exactly")
    assert exact >= 0.85


def test_lr_schedule_warmup_constant_cooldown(tiny_setup, tmp_path):
    from januspro.training.config import lr_factor

    got = [lr_factor(s, 2, 3, 8, 0.1) for s in range(8)]
    assert got == pytest.approx([0.5, 1.0, 1.0, 1.0, 1.0, 0.7, 0.4, 0.1])
    assert [lr_factor(s, 0, 0, 4) for s in range(4)] == [1.0] * 4  # the paper's constant rate
    with pytest.raises(RunConfigError, match="must not exceed train.steps"):
        load_run_config(CONFIGS / "stage3.yaml", ["train.steps=5", "optim.decay_steps=6"])
    with pytest.raises(RunConfigError, match="min_lr_ratio"):
        load_run_config(CONFIGS / "stage3.yaml", ["optim.min_lr_ratio=2"])
    root, ckpt = tiny_setup
    out = tmp_path / "wsd"
    Trainer(load_run_config(CONFIGS / "stage3.yaml", _overrides(
        root, ckpt, out, steps=4, extra=("optim.lr=1e-3", "optim.decay_steps=2", "train.log_every=1")))).run()
    lrs = [json.loads(line)["lr"] for line in (out / "log.jsonl").read_text().splitlines() if '"lr"' in line]
    assert lrs == pytest.approx([5e-4, 1e-3, 5e-4, 0.0])


def test_model_init_may_be_a_config_file(tiny_setup, tmp_path):
    """``model.init=arch.json`` builds a fresh model with that architecture (a preset with one field changed);
    a JSON file that is no model config is a clear error."""
    import dataclasses

    from januspro.config import ConfigError, preset
    from januspro.models.janus import JanusModel
    from januspro.training.trainer import architecture, make_trainer

    root, _ = tiny_setup
    cfg = dataclasses.replace(preset("tiny"), llm=dataclasses.replace(preset("tiny").llm, rope_theta=47.7))
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps(cfg.to_dict()))
    assert architecture(str(arch)) == cfg and architecture("tiny") == preset("tiny")
    assert architecture(str(tmp_path)) is None  # a folder: a model to load
    ov = [f"data.t2i={root / 't2i' / 't2i.jsonl'}", f"model.init={arch}", f"train.out={tmp_path / 'vq'}",
          "train.progress=false", "stage.eval_items=2"]
    tr = make_trainer(load_run_config(CONFIGS / "vq_shapes.yaml", ov))
    assert tr.model.cfg == cfg and tr.model.cfg.llm.rope_theta == 47.7
    assert isinstance(tr.model, JanusModel)
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(ConfigError):
        make_trainer(load_run_config(CONFIGS / "vq_shapes.yaml", [*ov[:1], f"model.init={bad}", *ov[2:]]))


def test_model_vision_swaps_in_another_models_vit(tiny_setup, tmp_path):
    """``model.vision=FOLDER`` puts that model's understanding ViT into model.init's model before training (the
    recipe's Stage III gets the dense-loss SigLIP this way); everything else stays init's. A missing folder or
    a ViT of another architecture is a clear error."""
    import dataclasses

    from januspro.checkpoint import load_model, save_model
    from januspro.config import preset
    from januspro.models.janus import JanusModel
    from januspro.training.data import DataError
    from januspro.training.trainer import make_trainer

    root, ckpt = tiny_setup
    donor_dir = make_tiny_checkpoint(tmp_path / "donor", seed=7)
    ov = _overrides(root, ckpt, tmp_path / "run", extra=(f"model.vision={donor_dir}",))
    tr = make_trainer(load_run_config(CONFIGS / "stage3.yaml", ov))
    donor, base = load_model(donor_dir, dtype="fp32"), load_model(ckpt, dtype="fp32")
    for k, v in tr.model.vision.state_dict().items():
        assert torch.equal(v, donor.vision.state_dict()[k]), k
    assert any(not torch.equal(v, base.vision.state_dict()[k]) for k, v in donor.vision.state_dict().items())
    for name in ("aligner", "gen_aligner", "gen_head", "lm_head"):  # (the trainer wraps the LLM layers)
        for k, v in getattr(tr.model, name).state_dict().items():
            assert torch.equal(v, getattr(base, name).state_dict()[k]), (name, k)
    with pytest.raises(DataError, match="no model folder"):
        make_trainer(load_run_config(CONFIGS / "stage3.yaml", [*ov, f"model.vision={tmp_path / 'nope'}"]))
    tiny = preset("tiny")
    other = JanusModel(dataclasses.replace(tiny, vision=dataclasses.replace(tiny.vision, num_layers=1)))
    save_model(other, tmp_path / "other", tokenizer_dir=ckpt)
    with pytest.raises(DataError, match="another architecture"):
        make_trainer(load_run_config(CONFIGS / "stage3.yaml", [*ov, f"model.vision={tmp_path / 'other'}"]))
