"""One trainer loop for every stage: mixed-task steps, packing, AdamW, warm-up then constant LR, gradient
clipping and accumulation, atomic checkpoints with exact resume, a NaN guard, logs and a progress bar."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..checkpoint import load_model, save_model
from ..config import PRESETS, JanusConfig, load_config, preset
from ..models.janus import JanusModel
from ..processing.tokenizer import JanusTokenizer
from ..system import atomic_write
from .config import RunConfig, fast_cpu_bf16, lr_factor, use_bf16_autocast
from .data import DataError, Sample, SampleBuilder, encode_codes, load_generation_images, read_jsonl
from .packing import pack
from .parallel import LossModule, all_reduce_sum, init_distributed, wrap

TASKS = ("und", "text", "t2i")
CHECKPOINT = "checkpoint.pt"


def architecture(init: str) -> JanusConfig | None:
    """The config of a model built from scratch when ``init`` (``model.init``) names one: a preset name, or a
    config.json file; None when ``init`` is a model folder to load."""
    path = Path(init)
    if init in PRESETS and not path.exists():
        return preset(init)
    if path.is_file() and path.suffix == ".json":
        return load_config(path)[0]
    return None


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN)."""


def param_groups(model: JanusModel) -> dict[str, nn.Module]:
    return {"llm": model.llm, "lm_head": model.lm_head, "vision": model.vision, "aligner": model.aligner,
            "vq": model.vq, "gen_embed": model.gen_embed, "gen_aligner": model.gen_aligner,
            "gen_head": model.gen_head}


def set_trainable(model: JanusModel, groups: tuple[str, ...]) -> list[nn.Parameter]:
    """Freeze everything, then unfreeze ``groups``; returns the trainable parameters (deduplicated)."""
    model.requires_grad_(False)
    mods = param_groups(model)
    for g in groups:
        mods[g].requires_grad_(True)
    seen: set[int] = set()
    params = []
    for p in model.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            params.append(p)
    return params


class _Checkpointed(nn.Module):
    """Runs a decoder layer under activation checkpointing (applied from outside the model)."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, *args: Any) -> torch.Tensor:
        if not torch.is_grad_enabled():
            return self.layer(*args)
        return torch.utils.checkpoint.checkpoint(self.layer, *args, use_reentrant=False)


def apply_activation_checkpointing(model: JanusModel) -> None:
    layers = model.llm.layers
    for i in range(len(layers)):
        if not isinstance(layers[i], _Checkpointed):
            layers[i] = _Checkpointed(layers[i])


def cpp_compiler_available() -> bool:
    """Whether ``torch.compile`` can build CPU kernels here: its backend needs a C++ compiler (``g++`` or
    ``$CXX``), which a laptop may lack."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        return bool(get_cpp_compiler())
    except Exception:  # no compiler found (the search raises), or an inductor without this helper
        return False


def compile_layers(model: JanusModel) -> None:
    """``torch.compile`` every LLM decoder layer in place (parameter names and checkpoints stay as they are;
    under activation checkpointing the wrapped layer is compiled). Packed batches change their row count from
    step to step, so the batch size is compiled as a dynamic dimension after the first change rather than once
    per row count."""
    for layer in model.llm.layers:
        (layer.layer if isinstance(layer, _Checkpointed) else layer).compile()


def split_counts(total: int, ratio: list[float]) -> list[int]:
    """Largest-remainder split of ``total`` samples by ``ratio`` (deterministic)."""
    s = sum(ratio)
    raw = [total * r / s for r in ratio]
    counts = [int(math.floor(x)) for x in raw]
    order = sorted(range(len(ratio)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


@dataclass
class StepStats:
    step: int
    loss: float
    lr: float
    grad_norm: float
    parts: dict[str, float]  # stage-specific numbers (per-task losses, throughput, ...)

    def row(self) -> dict[str, float]:
        return {"step": self.step, "loss": self.loss, "lr": self.lr, "grad_norm": self.grad_norm, **self.parts}

    def __getattr__(self, name: str) -> float:
        parts = self.__dict__.get("parts", {})
        if name in parts:
            return parts[name]
        raise AttributeError(name)


class Trainer:
    def __init__(self, cfg: RunConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        self.out = Path(cfg.train.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = torch.device(cfg.train.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise TrainingError("train.device is cuda but no CUDA device is available; set train.device=cpu")
        self.dist = init_distributed(self.device.type)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        self.use_bf16 = use_bf16_autocast(cfg.train.dtype, self.device.type)  # resolved once, used every step
        self.task_weights = dict(zip(TASKS, cfg.data.loss_weights, strict=True))  # loss weight by sample kind
        if cfg.train.dtype == "bf16" and self.device.type == "cpu" and not fast_cpu_bf16():
            warnings.warn("train.dtype is bf16 but this CPU has no bf16 matrix units (AMX): bf16 autocast is slower than "
                          "fp32 here (many times where bf16 is emulated); train.dtype=auto picks the fast one",
                          stacklevel=2)
        torch.manual_seed(cfg.train.seed)
        self.model, self.tokenizer_dir = self._build_model()
        self.setup_data()
        self.params = set_trainable(self.model, cfg.trainable_groups()) + self.extra_params()
        if cfg.lora.rank > 0:
            from .lora import LoRAConfig, apply_lora

            self.params += apply_lora(self.model, LoRAConfig(cfg.lora.rank, cfg.lora.alpha, list(cfg.lora.targets)))
        if cfg.train.activation_checkpointing:
            apply_activation_checkpointing(self.model)
        if cfg.train.compile and self.device.type == "cpu" and not cpp_compiler_available():
            warnings.warn("train.compile: torch.compile needs a C++ compiler on CPU (g++, or the one $CXX names) "
                          "and none was found; the layers run eagerly", stacklevel=2)
        elif cfg.train.compile:
            compile_layers(self.model)
        self.loss_module = self.wrap_loss()
        o = cfg.optim
        self.optim = torch.optim.AdamW(self.params, lr=o.lr, betas=(o.betas[0], o.betas[1]),
                                       weight_decay=o.weight_decay)
        steps = cfg.train.steps
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.optim, lambda s: lr_factor(s, o.warmup_steps, o.decay_steps, steps, o.min_lr_ratio))
        self.rng = np.random.default_rng(cfg.train.seed)
        self.step = 0
        self.log_path = self.out / "log.jsonl"
        self._maybe_resume()

    # ------------------------------------------------------------------ setup
    def setup_data(self) -> None:
        """Tokenizer, sample builder, the task records and the cached VQ codes of the generation data."""
        cfg = self.cfg
        if self.tokenizer_dir is None:
            raise DataError("this stage needs a tokenizer: set model.tokenizer")
        self.tokenizer = JanusTokenizer.from_dir(self.tokenizer_dir)
        mc = self.model.cfg
        if self.tokenizer.vocab_size > mc.llm.vocab_size:
            raise DataError(f"tokenizer has {self.tokenizer.vocab_size} tokens, the model {mc.llm.vocab_size}")
        self.builder = SampleBuilder(self.tokenizer, mc.chat_template, mc.vision.image_size, mc.vision.num_tokens,
                                     mc.vision.image_mean, mc.vision.image_std, cfg.data.system_prompt)
        self.records: dict[str, list[dict]] = {}
        self.roots: dict[str, Path] = {}
        for task, ratio in zip(TASKS, cfg.data.ratio, strict=True):
            path = getattr(cfg.data, task)
            if ratio > 0:
                self.records[task] = read_jsonl(path)
                self.roots[task] = Path(path).parent
        self.codes = self._t2i_codes() if "t2i" in self.records else None

    def _build_model(self) -> tuple[JanusModel, Path | None]:
        init = self.cfg.model.init
        fresh = architecture(init)
        if fresh is not None:
            model = JanusModel(fresh)
            model.init_weights_()
            if self.cfg.model.vq:
                load_vq_weights(model, self.cfg.model.vq)
            tok = self.cfg.model.tokenizer or None
        else:
            model = load_model(init, dtype="fp32")
            tok = self.cfg.model.tokenizer or str(model.source_path)  # type: ignore[attr-defined]
        if self.cfg.model.vision:
            replace_vision(model, self.cfg.model.vision)
        return model.to(self.device).train(), Path(tok) if tok else None

    def _t2i_codes(self) -> np.ndarray:
        """VQ codes of every text-to-image record, computed once and cached beside the data."""
        rows = self.records["t2i"]
        vq = self.model.vq
        h = hashlib.sha256()
        for p in vq.state_dict().values():
            h.update(p.detach().cpu().float().numpy().tobytes()[:4096])
        h.update(str(len(rows)).encode())
        cache = Path(self.cfg.data.t2i).with_suffix(f".codes-{h.hexdigest()[:12]}.npy")
        if cache.is_file():
            codes = np.load(cache)
            if codes.shape[0] == len(rows):
                return codes
        vq.eval()
        size = self.model.cfg.vq.image_size
        chunks = []
        for i in range(0, len(rows), 256):
            imgs = load_generation_images(rows[i:i + 256], self.roots["t2i"], size).to(self.device)
            chunks.append(encode_codes(vq, imgs))
        codes = np.concatenate(chunks)
        tmp = cache.with_suffix(".tmp.npy")
        np.save(tmp, codes)
        os.replace(tmp, cache)
        return codes

    def wrap_loss(self) -> torch.nn.Module:
        return wrap(LossModule(self.model, self.tokenizer.image_id), self.cfg.train.parallel, self.dist)

    def extra_params(self) -> list[nn.Parameter]:
        """Trainable parameters outside the model (stage-specific heads); saved in the checkpoint."""
        return []

    def extra_state(self) -> dict[str, torch.Tensor]:
        return {}

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        del state

    # ------------------------------------------------------------------ data
    def step_plan(self) -> list[tuple[str, int, bool]]:
        """(task, record index, prompt dropped) of every sample of the next step, in the stage's ratio,
        drawn from the saved generator -- the same on every rank."""
        counts = split_counts(self.cfg.train.batch_size, self.cfg.data.ratio)
        plan: list[tuple[str, int, bool]] = []
        for task, n in zip(TASKS, counts, strict=True):
            if n == 0:
                continue
            for i in self.rng.integers(0, len(self.records[task]), size=n).tolist():
                drop = task == "t2i" and bool(self.rng.random() < self.cfg.data.prompt_dropout)
                plan.append((task, i, drop))
        return plan

    def build(self, task: str, i: int, drop: bool) -> Sample:
        r = self.records[task][i]
        if task == "und":
            return self.builder.und(r, self.roots[task])
        if task == "text":
            return self.builder.text(r["text"], self.cfg.data.pack_length)
        assert self.codes is not None
        return self.builder.t2i(r["prompt"], self.codes[i].tolist(), drop, r.get("plan"))

    def step_samples(self) -> list[Sample]:
        """All samples of the next step (single process)."""
        return [self.build(*p) for p in self.step_plan()]

    # ------------------------------------------------------------------ loop
    def autocast(self) -> torch.autocast:
        """The forward-pass context ``train.dtype`` asks for (bf16 autocast or none), for every stage's step;
        losses computed outside it stay fp32."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16)

    def train_step(self) -> StepStats:
        t0 = time.perf_counter()
        self.model.train()
        plan = self.step_plan()
        d = self.dist
        samples = [self.build(*p) for p in plan[d.rank::d.world]]  # this rank's share
        local_targets = sum(sum(1 for k in s.target_kind if k) for s in samples)
        n_targets = float(all_reduce_sum(torch.tensor([float(local_targets)]), d)[0])
        # DDP averages gradients over ranks; scale so the result is the global sum / global target count
        normaliser = max(1.0, n_targets) / d.world
        accum = self.cfg.train.grad_accum
        chunks = [samples[i::accum] for i in range(accum)]
        mc = self.model.cfg
        shape = (3, mc.vision.image_size, mc.vision.image_size)
        stats = torch.zeros(5, dtype=torch.float64)  # text sum, text count, image sum, image count, tokens
        self.optim.zero_grad(set_to_none=True)
        for chunk in chunks:
            if not chunk:
                continue
            batch = pack(chunk, self.cfg.data.pack_length, self.tokenizer.pad_id, shape,
                         self.task_weights).to(self.device)
            with self.autocast():
                total, parts = self.loss_module(batch, normaliser)
            total.backward()
            stats[:4] += parts
            stats[4] += float((batch.segments >= 0).sum())
        stats = all_reduce_sum(stats, d)
        t_sum, t_cnt, i_sum, i_cnt, tokens = stats.tolist()
        loss = (t_sum + i_sum) / max(1.0, n_targets)
        if not math.isfinite(loss):
            raise TrainingError(f"loss is {loss} at step {self.step + 1} (text {t_sum}, image {i_sum}); "
                                f"lower optim.lr or check the data; the last good checkpoint is in {self.out}")
        gn, lr = self.optimizer_step()
        dt = time.perf_counter() - t0
        return StepStats(self.step, loss, lr, gn, {
            "text_loss": t_sum / t_cnt if t_cnt else float("nan"),
            "image_loss": i_sum / i_cnt if i_cnt else float("nan"), "tokens_per_s": tokens / dt})

    def optimizer_step(self) -> tuple[float, float]:
        """Clip, step the optimiser and the schedule, count the step; returns (gradient norm, lr used)."""
        gn = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.optim.grad_clip or float("inf"))
        if not torch.isfinite(gn):
            raise TrainingError(f"gradient norm is {float(gn)} at step {self.step + 1}; lower optim.lr")
        lr = self.sched.get_last_lr()[0]
        self.optim.step()
        self.sched.step()
        self.step += 1
        return float(gn), lr

    def run(self) -> list[StepStats]:
        from tqdm.auto import tqdm

        cfg = self.cfg.train
        stats: list[StepStats] = []
        main = self.dist.main
        bar = tqdm(total=cfg.steps, initial=self.step, desc=f"train {self.cfg.stage.name}", unit="step",
                   disable=not (cfg.progress and main))
        with open(self.log_path if main else os.devnull, "a") as log:
            while self.step < cfg.steps:
                s = self.train_step()
                stats.append(s)
                log.write(json.dumps(s.row()) + "\n")
                log.flush()
                bar.update(1)
                if cfg.log_every and s.step % cfg.log_every == 0:
                    bar.set_postfix({k: f"{v:.4g}" for k, v in s.row().items() if k not in ("step", "lr")})
                if cfg.eval_every and s.step % cfg.eval_every == 0:
                    ev = self.evaluate()
                    if ev:
                        log.write(json.dumps({"step": s.step, "eval": ev}) + "\n")
                        log.flush()
                        bar.write(f"step {s.step} eval: " + ", ".join(f"{k} {v:.4g}" for k, v in ev.items()))
                if main and cfg.save_every and s.step % cfg.save_every == 0 and s.step < cfg.steps:
                    self.save_checkpoint()
        bar.close()
        if not main:
            return stats
        self.save_checkpoint()
        self.save_model(self.out / "model")
        if cfg.eval_every:
            ev = self.evaluate()
            if ev:
                with open(self.log_path, "a") as log:
                    log.write(json.dumps({"step": self.step, "eval": ev, "final": True}) + "\n")
        return stats

    def evaluate(self) -> dict[str, float]:
        """Periodic evaluation hook (``train.eval_every``); stages override it."""
        return {}

    # ------------------------------------------------------------------ checkpoints
    def _state(self) -> dict[str, Any]:
        return {"step": self.step, "model": self._model_state(), "optim": self.optim.state_dict(),
                "sched": self.sched.state_dict(), "rng": json.dumps(self.rng.bit_generator.state),
                "torch_rng": torch.get_rng_state(), "config": json.dumps(self.cfg.to_dict()),
                "extra": self.extra_state()}

    def _model_state(self) -> dict[str, torch.Tensor]:
        sd = self.model.state_dict()
        return {k.replace(".layer.", "."): v for k, v in sd.items()}  # drop checkpoint wrappers

    def save_checkpoint(self) -> Path:
        """Write ``checkpoint.pt`` atomically: a killed write leaves the previous checkpoint intact."""
        path = self.out / CHECKPOINT
        atomic_write(path, lambda tmp: torch.save(self._state(), tmp))
        return path

    def _maybe_resume(self) -> None:
        path = self.out / CHECKPOINT
        if not path.is_file():
            return
        state = torch.load(path, map_location="cpu", weights_only=True)
        missing = self._load_model_state(state["model"])
        if missing:
            raise TrainingError(f"{path} does not match the model: missing {missing[:5]}")
        self.optim.load_state_dict(state["optim"])
        self.sched.load_state_dict(state["sched"])
        self.rng.bit_generator.state = json.loads(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        self.step = int(state["step"])
        self.load_extra_state(state.get("extra", {}))

    def _load_model_state(self, sd: dict[str, torch.Tensor]) -> list[str]:
        own = self.model.state_dict()
        mapped = {}
        for k in own:
            plain = k.replace(".layer.", ".")
            if plain in sd:
                mapped[k] = sd[plain]
        missing = [k for k in own if k not in mapped]
        self.model.load_state_dict(mapped, strict=False)
        return missing

    def save_model(self, folder: Path) -> Path:
        """The trained model as a model folder (our layout) with the tokenizer files; LoRA adapters are
        merged into the weights first."""
        state = self._model_state()
        if self.cfg.lora.rank > 0:
            import copy

            from .lora import merge_lora

            merged = copy.deepcopy(self.model)
            merge_lora(merged)
            state = {k.replace(".layer.", "."): v for k, v in merged.state_dict().items()}
        clean = JanusModel(self.model.cfg)
        clean.load_state_dict(state)
        return save_model(clean, folder, tokenizer_dir=self.tokenizer_dir)


def save_vq_weights(model: JanusModel, path: Path) -> Path:
    """The VQ tokenizer alone, as ``vq.safetensors`` (keys without the ``vq.`` prefix)."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in model.vq.state_dict().items()}, str(path))
    return path


def load_vq_weights(model: JanusModel, path: str | Path) -> None:
    """Load a ``vq.safetensors`` written by :func:`save_vq_weights` (strict)."""
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise DataError(f"no VQ weights at {p}")
    sd = load_file(str(p))
    own = model.vq.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    shapes = sorted(k for k in set(own) & set(sd) if own[k].shape != sd[k].shape)
    if missing or unexpected or shapes:
        raise DataError(f"{p} does not fit this model's VQ config: missing {missing[:3]}, unexpected "
                        f"{unexpected[:3]}, wrong shape {shapes[:3]}")
    model.vq.load_state_dict(sd)


def replace_vision(model: JanusModel, folder: str | Path) -> None:
    """Put the understanding ViT of the model folder ``folder`` (``model.vision``) into ``model``."""
    p = Path(folder)
    if not p.is_dir():
        raise DataError(f"model.vision: no model folder at {p}")
    donor = load_model(p, dtype="fp32")
    if donor.cfg.vision != model.cfg.vision:
        raise DataError(f"model.vision: the ViT of {p} has another architecture than the model's: "
                        f"{donor.cfg.vision} vs {model.cfg.vision}")
    model.vision.load_state_dict(donor.vision.state_dict())


def make_trainer(cfg: RunConfig) -> Trainer:
    """The trainer for a config's stage: the unified trainer, or a component trainer (``vq``)."""
    if cfg.stage.name == "vq":
        from .components import VQTrainer

        return VQTrainer(cfg)
    if cfg.stage.name == "siglip":
        from .components import SigLIPTrainer

        return SigLIPTrainer(cfg)
    return Trainer(cfg)


def train(cfg: RunConfig) -> list[StepStats]:
    """Run (or resume) the training described by ``cfg``."""
    return make_trainer(cfg).run()
