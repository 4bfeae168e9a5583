"""Run configuration: YAML -> nested dataclasses; defaults < file < ``dotted.key=value`` overrides.

Unknown keys are errors. A stage is data: which parameter groups train, the learning rate and schedule,
and the data mix (understanding : text : text-to-image samples per step).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import torch

PARAM_GROUPS = ("llm", "lm_head", "vision", "aligner", "vq", "gen_embed", "gen_aligner", "gen_head")

# The paper's stages (Table 2): which parts train.
STAGE_GROUPS: dict[str, tuple[str, ...]] = {
    "stage1": ("aligner", "gen_embed", "gen_aligner", "gen_head"),
    "stage2": ("llm", "lm_head", "aligner", "gen_embed", "gen_aligner", "gen_head"),
    "stage3": ("llm", "lm_head", "vision", "aligner", "gen_embed", "gen_aligner", "gen_head"),
    # components trained from scratch for a new model
    "vq": ("vq",),
    "siglip": ("vision",),
    "text": ("llm", "lm_head"),
}


class RunConfigError(ValueError):
    """A run config that cannot be used."""


@dataclass
class ModelSection:
    # a model folder (any layout) to train on, or the architecture of a model built from scratch: a preset name
    # or a config.json file (any of the schemas a model folder may have, e.g. a preset with one field changed)
    init: str = "tiny"
    tokenizer: str = ""  # folder with tokenizer.json (default: the init folder)
    vq: str = ""  # optional: a trained VQ tokenizer (vq.safetensors) to load into a model built from scratch
    # optional: a model folder whose understanding ViT replaces init's (the same vision architecture), e.g. a
    # separately trained SigLIP part; the aligners are kept and adapt when they train
    vision: str = ""


@dataclass
class DataSection:
    und: str = ""  # understanding conversations (und.jsonl)
    text: str = ""  # text-only corpus (text.jsonl)
    t2i: str = ""  # text-to-image pairs (t2i.jsonl)
    ratio: list[float] = field(default_factory=lambda: [1.0, 0.0, 3.0])  # und : text : t2i per step
    # loss weight of each target by task (und, text, t2i); 1,1,1 = every target counts the same (the paper)
    loss_weights: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    prompt_dropout: float = 0.1  # share of text-to-image samples trained unconditionally (for CFG)
    pack_length: int = 512
    system_prompt: str = ""
    max_items: int = 0  # vq / siglip stages: train on the first N text-to-image records only (0: all of them)


@dataclass
class StageSection:
    name: str = "stage1"  # stage1 | stage2 | stage3 | vq | text, or any name with stage.trainable
    trainable: list[str] = field(default_factory=list)  # empty: the stage's default groups
    vq_restart_every: int = 100  # vq stage: re-seed codes unused for this many steps (0: never)
    eval_items: int = 200  # vq / siglip stages: held-out validation images
    # siglip stage: weight of an auxiliary per-patch loss naming the (shape, colour) object under each ViT patch,
    # read off the "scene" of shapes-world records (0: the plain sigmoid loss)
    dense_weight: float = 0.0
    # what that loss names: "pair", one class per (shape, colour) pair, or "factored", the shape and the colour
    # by two classifiers side by side, so that a pair never trained on is still two known answers
    dense_labels: str = "pair"
    # with factored labels: the first N images of each batch are also shown in greyscale (luminance in all three
    # channels), and the shape classifier alone learns from them, so that shape is read without colour (0: off)
    dense_grey: int = 0


@dataclass
class OptimSection:
    lr: float = 1e-3
    warmup_steps: int = 0
    decay_steps: int = 0  # linear cool-down over the last steps of the run (0: constant to the end)
    min_lr_ratio: float = 0.0  # the cool-down ends at lr * min_lr_ratio
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    weight_decay: float = 0.0
    grad_clip: float = 1.0


@dataclass
class TrainSection:
    steps: int = 100
    batch_size: int = 16  # samples per optimiser step (before packing)
    grad_accum: int = 1
    seed: int = 0
    out: str = "runs/train"
    save_every: int = 0  # 0: only at the end
    log_every: int = 10
    eval_every: int = 0  # 0: no periodic evaluation
    device: str = "cpu"
    dtype: str = "fp32"  # fp32 (exact), bf16 (autocast), auto (bf16 on GPU and on CPUs with bf16 matmul units)
    activation_checkpointing: bool = False
    compile: bool = False  # torch.compile every LLM decoder layer (applied from outside the model)
    parallel: str = "ddp"  # under torchrun: ddp (any device) or fsdp (FSDP2, GPU); ignored for one process
    progress: bool = True


@dataclass
class LoRASection:
    rank: int = 0  # >= 1 turns LoRA on: only the adapters (and lora.also_train groups) train
    alpha: float = 16.0
    targets: list[str] = field(default_factory=lambda: ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"])
    also_train: list[str] = field(default_factory=list)  # parameter groups trained in full beside the adapters


@dataclass
class RunConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    stage: StageSection = field(default_factory=StageSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)
    lora: LoRASection = field(default_factory=LoRASection)

    def trainable_groups(self) -> tuple[str, ...]:
        if self.lora.rank > 0:
            bad = [g for g in self.lora.also_train if g not in PARAM_GROUPS]
            if bad:
                raise RunConfigError(f"unknown parameter group(s) {bad} in lora.also_train")
            return tuple(self.lora.also_train)
        groups = tuple(self.stage.trainable) or STAGE_GROUPS.get(self.stage.name, ())
        if not groups:
            raise RunConfigError(f"stage {self.stage.name!r} has no default groups: set stage.trainable")
        bad = [g for g in groups if g not in PARAM_GROUPS]
        if bad:
            raise RunConfigError(f"unknown parameter group(s) {bad}; choose from {PARAM_GROUPS}")
        return groups

    def validate(self) -> None:
        d, o, t = self.data, self.optim, self.train
        if self.stage.name in ("vq", "siglip"):
            if not d.t2i:
                raise RunConfigError(f"the {self.stage.name} stage reads its images from data.t2i")
        elif len(d.ratio) != 3 or any(r < 0 for r in d.ratio) or sum(d.ratio) <= 0:
            raise RunConfigError("data.ratio needs three non-negative numbers (und, text, t2i), not all zero")
        for name, r in zip(("und", "text", "t2i"), d.ratio, strict=True):
            if self.stage.name not in ("vq", "siglip") and r > 0 and not getattr(d, name):
                raise RunConfigError(f"data.ratio gives {name} a share but data.{name} names no file")
        if len(d.loss_weights) != 3 or any(w < 0 for w in d.loss_weights):
            raise RunConfigError("data.loss_weights needs three non-negative numbers (und, text, t2i)")
        if not 0 <= d.prompt_dropout <= 1:
            raise RunConfigError("data.prompt_dropout must be in [0, 1]")
        if o.lr <= 0 or o.grad_clip < 0 or len(o.betas) != 2:
            raise RunConfigError("optim: lr > 0, grad_clip >= 0 and two betas are required")
        if o.warmup_steps < 0 or o.decay_steps < 0 or not 0 <= o.min_lr_ratio <= 1:
            raise RunConfigError("optim: warmup_steps and decay_steps >= 0, min_lr_ratio in [0, 1]")
        if o.decay_steps > t.steps:
            raise RunConfigError(f"optim.decay_steps ({o.decay_steps}) must not exceed train.steps ({t.steps})")
        if t.steps < 1 or t.batch_size < 1 or t.grad_accum < 1 or t.batch_size < t.grad_accum:
            raise RunConfigError("train: steps, batch_size, grad_accum >= 1 and batch_size >= grad_accum")
        if t.parallel not in ("none", "ddp", "fsdp"):
            raise RunConfigError("train.parallel must be none, ddp or fsdp")
        if t.dtype not in ("fp32", "bf16", "auto"):
            raise RunConfigError("train.dtype must be fp32, bf16 or auto")
        if t.compile and t.parallel == "fsdp":
            raise RunConfigError("train.compile is not supported with train.parallel=fsdp; use ddp or turn it off")
        self.trainable_groups()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def lr_factor(step: int, warmup: int, decay: int, total: int, floor: float = 0.0) -> float:
    """The learning-rate multiplier of optimiser step ``step`` (0-based): linear warm-up over ``warmup`` steps,
    constant, then a linear cool-down over the last ``decay`` of ``total`` steps to ``floor`` (reached at the
    last step; a warm-up-stable-decay schedule; ``decay=0`` is the paper's constant rate)."""
    f = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
    if decay > 0:
        into = step - (total - decay)  # 0 at the first cool-down step, decay - 1 at the last
        if into >= 0:
            f = min(f, 1.0 - (1.0 - floor) * (into + 1) / decay)
    return f


def describe_schedule(o: OptimSection) -> str:
    """The learning-rate schedule of :func:`lr_factor` in words (for logs and model cards)."""
    text = f"{o.lr:g}" + (f", warm-up {o.warmup_steps}" if o.warmup_steps else "")
    return text + (f", linear cool-down over the last {o.decay_steps} to x{o.min_lr_ratio:g}" if o.decay_steps
                   else ", constant")


def fast_cpu_bf16() -> bool:
    """Does this CPU have bf16 matrix units (AMX)? Only there is bf16 autocast faster than fp32. With AVX512-BF16
    alone (dot-product instructions, no tiles) it was ~1.6x slower than fp32 on a 2-core Xeon without AMX (a
    transformer layer's forward and backward, and the recipe's SigLIP part: 142 against ~250 images/s), and
    without either oneDNN emulates bf16 and autocast is many times slower (measured ~20x on an AVX2-only EPYC)."""
    return bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


def use_bf16_autocast(dtype: str, device: str) -> bool:
    """``train.dtype`` resolved for a device type: bf16 autocast or not."""
    if dtype == "auto":
        return device == "cuda" or (device == "cpu" and fast_cpu_bf16())
    return dtype == "bf16"


def _coerce(value: Any, typ: Any, where: str) -> Any:
    origin = get_origin(typ)
    if origin is list:
        (inner,) = get_args(typ)
        if isinstance(value, str):
            value = [v for v in value.strip("[]").split(",") if v.strip()]
        if not isinstance(value, list):
            raise RunConfigError(f"{where} must be a list")
        return [_coerce(v, inner, where) for v in value]
    if typ is bool:
        if isinstance(value, str):
            if value.lower() in ("true", "1", "yes"):
                return True
            if value.lower() in ("false", "0", "no"):
                return False
            raise RunConfigError(f"{where} must be true or false")
        return bool(value)
    if typ in (int, float):
        try:
            return typ(value)
        except (TypeError, ValueError):
            raise RunConfigError(f"{where} must be a number, got {value!r}") from None
    if typ is str:
        return str(value).strip() if isinstance(value, str) else str(value)
    return value


def _apply(obj: Any, values: dict[str, Any], where: str) -> None:
    hints = get_type_hints(type(obj))
    for key, value in values.items():
        if key not in hints:
            raise RunConfigError(f"unknown key {where}{key!r}; known: {sorted(hints)}")
        cur = getattr(obj, key)
        if dataclasses.is_dataclass(cur):
            if not isinstance(value, dict):
                raise RunConfigError(f"{where}{key} must be a mapping")
            _apply(cur, value, f"{where}{key}.")
        else:
            setattr(obj, key, _coerce(value, hints[key], f"{where}{key}"))


def load_run_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Defaults, then the YAML file, then ``section.key=value`` overrides."""
    cfg = RunConfig()
    if path is not None:
        try:
            import yaml
        except ImportError as e:  # pragma: no cover
            raise RunConfigError("reading run configs needs PyYAML (pip install 'januspro[train]')") from e
        p = Path(path)
        if not p.is_file():
            raise RunConfigError(f"no run config at {p}")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise RunConfigError(f"{p} is not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise RunConfigError(f"{p} must hold a mapping")
        _apply(cfg, data, "")
    for item in overrides:
        if "=" not in item:
            raise RunConfigError(f"override {item!r} is not key=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        nested: dict[str, Any] = {parts[-1]: value}
        for part in reversed(parts[:-1]):
            nested = {part: nested}
        _apply(cfg, nested, "")
    cfg.validate()
    return cfg
