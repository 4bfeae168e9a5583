"""Model configuration: frozen dataclasses, exact-name presets, and the three config.json schemas.

Schemas understood:
  * ours           -- ``{"model_type": "januspro", ...}`` written by :func:`JanusConfig.save`;
  * official       -- DeepSeek's ``multi_modality`` config.json (nested ``*_config`` blocks with ``cls``/``params``);
  * transformers   -- ``transformers``' ``janus`` config.json (``text_config``/``vision_config``/``vq_config``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ChatTemplateName = Literal["janus-pro", "janus-1.3b"]
CONFIG_FORMAT = "januspro"
OFFICIAL_EXTRA_KEY = "januspro_config"


class ConfigError(ValueError):
    """A config file or value that cannot describe a Janus model."""


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


@dataclass(frozen=True)
class LLMConfig:
    """DeepSeek-LLM / LLaMA decoder (RMSNorm, RoPE rotate-half, SwiGLU, grouped-query attention)."""

    vocab_size: int = 102400
    hidden_size: int = 2048
    intermediate_size: int = 5632
    num_layers: int = 24
    num_heads: int = 16
    num_kv_heads: int = 0  # 0 -> same as num_heads (filled in __post_init__)
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    max_position_embeddings: int = 16384
    tie_word_embeddings: bool = False

    def __post_init__(self) -> None:
        if self.num_kv_heads == 0:
            object.__setattr__(self, "num_kv_heads", self.num_heads)
        _check(self.hidden_size % self.num_heads == 0, "llm.hidden_size must be divisible by llm.num_heads")
        _check(self.num_heads % self.num_kv_heads == 0, "llm.num_heads must be a multiple of llm.num_kv_heads")
        _check((self.hidden_size // self.num_heads) % 2 == 0, "llm head_dim must be even for RoPE")
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_layers", "max_position_embeddings"):
            _check(getattr(self, name) > 0, f"llm.{name} must be positive")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


@dataclass(frozen=True)
class VisionConfig:
    """SigLIP ViT understanding encoder (features = final LayerNorm of the last built block)."""

    image_size: int = 384
    patch_size: int = 16
    hidden_size: int = 1024
    num_layers: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    layer_norm_eps: float = 1e-6
    num_channels: int = 3
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_mean", tuple(float(x) for x in self.image_mean))
        object.__setattr__(self, "image_std", tuple(float(x) for x in self.image_std))
        _check(self.image_size % self.patch_size == 0, "vision.image_size must be a multiple of vision.patch_size")
        _check(self.hidden_size % self.num_heads == 0, "vision.hidden_size must be divisible by vision.num_heads")
        _check(len(self.image_mean) == 3 and len(self.image_std) == 3, "vision.image_mean/std need 3 values")

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_tokens(self) -> int:
        """Number of image features handed to the LLM per image (576 for 384/16)."""
        return self.grid_size**2

    @property
    def mlp_dim(self) -> int:
        return int(self.hidden_size * self.mlp_ratio)


@dataclass(frozen=True)
class VQConfig:
    """LlamaGen VQ tokenizer (conv encoder/decoder, l2-normalised codebook)."""

    image_size: int = 384
    codebook_size: int = 16384
    codebook_dim: int = 8
    base_channels: int = 128
    channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 256
    in_channels: int = 3
    out_channels: int = 3
    l2_norm: bool = True
    norm_groups: int = 32
    commit_beta: float = 0.25

    def __post_init__(self) -> None:
        object.__setattr__(self, "channel_mult", tuple(int(x) for x in self.channel_mult))
        _check(len(self.channel_mult) >= 1, "vq.channel_mult needs at least one level")
        _check(self.image_size % self.downsample == 0, "vq.image_size must be a multiple of the downsample factor")
        for m in self.channel_mult:
            _check((self.base_channels * m) % self.norm_groups == 0,
                   "vq.base_channels * every channel_mult must be divisible by vq.norm_groups")

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.channel_mult) - 1)

    @property
    def grid_size(self) -> int:
        return self.image_size // self.downsample

    @property
    def num_tokens(self) -> int:
        """Image codes per generated image (576 for 384 px at downsample 16)."""
        return self.grid_size**2


@dataclass(frozen=True)
class AlignerConfig:
    """MLP projector: Linear, then (GELU, Linear) x (depth - 1)."""

    in_dim: int
    out_dim: int
    depth: int = 2

    def __post_init__(self) -> None:
        _check(self.depth >= 1, "aligner depth must be >= 1")


@dataclass(frozen=True)
class GenHeadConfig:
    """Image head: Linear(in_dim -> hidden_dim), GELU, Linear(hidden_dim -> num_codes)."""

    in_dim: int
    hidden_dim: int
    num_codes: int


@dataclass(frozen=True)
class JanusConfig:
    llm: LLMConfig = field(default_factory=LLMConfig)
    vision: VisionConfig = field(default_factory=VisionConfig)
    vq: VQConfig = field(default_factory=VQConfig)
    aligner: AlignerConfig | None = None
    gen_aligner: AlignerConfig | None = None
    gen_head: GenHeadConfig | None = None
    chat_template: ChatTemplateName = "janus-pro"
    # default system prompt of understanding chats; None: DeepSeek's (what the released models were tuned with)
    system_prompt: str | None = None

    def __post_init__(self) -> None:
        h = self.llm.hidden_size
        if self.aligner is None:
            object.__setattr__(self, "aligner", AlignerConfig(self.vision.hidden_size, h, 2))
        if self.gen_aligner is None:
            object.__setattr__(self, "gen_aligner", AlignerConfig(self.vq.codebook_dim, h, 2))
        if self.gen_head is None:
            object.__setattr__(self, "gen_head", GenHeadConfig(h, h, self.vq.codebook_size))
        assert self.aligner is not None and self.gen_aligner is not None and self.gen_head is not None
        _check(self.aligner.in_dim == self.vision.hidden_size, "aligner.in_dim must equal vision.hidden_size")
        _check(self.aligner.out_dim == h, "aligner.out_dim must equal llm.hidden_size")
        _check(self.gen_aligner.in_dim == self.vq.codebook_dim, "gen_aligner.in_dim must equal vq.codebook_dim")
        _check(self.gen_aligner.out_dim == h, "gen_aligner.out_dim must equal llm.hidden_size")
        _check(self.gen_head.in_dim == h, "gen_head.in_dim must equal llm.hidden_size")
        _check(self.gen_head.num_codes == self.vq.codebook_size, "gen_head.num_codes must equal vq.codebook_size")
        _check(self.chat_template in ("janus-pro", "janus-1.3b"), f"unknown chat_template {self.chat_template!r}")
        _check(self.system_prompt is None or isinstance(self.system_prompt, str), "system_prompt must be a string")

    # ----------------------------------------------------------------- our own schema
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {"model_type": CONFIG_FORMAT, **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JanusConfig:
        d = dict(d)
        mt = d.pop("model_type", CONFIG_FORMAT)
        _check(mt == CONFIG_FORMAT, f"not a januspro config (model_type={mt!r})")
        sub = {"llm": LLMConfig, "vision": VisionConfig, "vq": VQConfig, "aligner": AlignerConfig,
               "gen_aligner": AlignerConfig, "gen_head": GenHeadConfig}
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key in sub:
                kwargs[key] = None if value is None else build_block(sub[key], value, key)
            elif key in ("chat_template", "system_prompt"):
                kwargs[key] = value
            else:
                raise ConfigError(f"unknown key {key!r} in januspro config")
        return cls(**kwargs)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def build_block(cls: type, values: dict[str, Any], where: str, noun: str = "key") -> Any:
    """The dataclass ``cls`` from a JSON object, its keys checked: an unknown one (called a ``noun``) or a
    missing required one is a ConfigError naming the block ``where``."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"unknown {noun}(s) {sorted(unknown)} in {where!r}")
    try:
        return cls(**values)
    except TypeError as e:
        raise ConfigError(f"bad {where!r} block: {e}") from None


# --------------------------------------------------------------------------- presets
def _janus_1b_llm() -> LLMConfig:
    return LLMConfig(vocab_size=102400, hidden_size=2048, intermediate_size=5632, num_layers=24, num_heads=16,
                     max_position_embeddings=16384)


def preset(name: str) -> JanusConfig:
    """Return the config of a named model: ``janus-pro-1b``, ``janus-pro-7b``, ``janus-1.3b`` or ``tiny``."""
    if name == "janus-pro-1b":
        return JanusConfig(llm=_janus_1b_llm())
    if name == "janus-pro-7b":
        return JanusConfig(llm=LLMConfig(vocab_size=102400, hidden_size=4096, intermediate_size=11008, num_layers=30,
                                         num_heads=32, max_position_embeddings=16384))
    if name == "janus-1.3b":
        return JanusConfig(llm=_janus_1b_llm(), chat_template="janus-1.3b")
    if name == "tiny":
        return JanusConfig(
            llm=LLMConfig(vocab_size=512, hidden_size=64, intermediate_size=160, num_layers=2, num_heads=4,
                          num_kv_heads=2, max_position_embeddings=512),
            vision=VisionConfig(image_size=32, patch_size=8, hidden_size=32, num_layers=2, num_heads=2),
            vq=VQConfig(image_size=32, codebook_size=64, codebook_dim=8, base_channels=32, channel_mult=(1, 2),
                        num_res_blocks=1, z_channels=32, norm_groups=8),
        )
    if name == "shapes":
        # The shipped shapes-world model: 64x64 images, 8x8 = 64 image codes, a 512-entry codebook.
        # The VQ part is fixed (its weights are trained first); the trunk sizes may still be tuned.
        return JanusConfig(
            llm=LLMConfig(vocab_size=512, hidden_size=256, intermediate_size=704, num_layers=6, num_heads=8,
                          max_position_embeddings=1024),
            vision=VisionConfig(image_size=64, patch_size=8, hidden_size=192, num_layers=4, num_heads=4),
            vq=VQConfig(image_size=64, codebook_size=512, codebook_dim=8, base_channels=16,
                        channel_mult=(1, 2, 4, 4), num_res_blocks=1, z_channels=64, norm_groups=8),
            system_prompt="",  # trained without one
        )
    raise ConfigError(f"unknown preset {name!r}; choose one of {PRESETS}")


PRESETS = ("janus-pro-1b", "janus-pro-7b", "janus-1.3b", "tiny", "shapes")

# --------------------------------------------------------------------------- official multi_modality schema
# LlamaConfig's defaults, used for fields the official language_config leaves out (as transformers fills them).
LLAMA_DEFAULTS: dict[str, Any] = {
    "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": None, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
    "max_position_embeddings": 2048, "tie_word_embeddings": False, "hidden_act": "silu",
}

SIGLIP_VARIANTS: dict[str, dict[str, Any]] = {
    # name -> (width, layers, heads, patch, mlp_ratio) as in the official siglip_vit table
    "siglip_large_patch16_384": {"hidden_size": 1024, "num_layers": 24, "num_heads": 16, "patch_size": 16,
                                 "mlp_ratio": 4.0},
}


def _llm_from_llama_dict(lc: dict[str, Any]) -> LLMConfig:
    v = {**LLAMA_DEFAULTS, **{k: x for k, x in lc.items() if x is not None}}
    _check(v.get("hidden_act", "silu") == "silu", f"unsupported LLM activation {v.get('hidden_act')!r}")
    rope = lc.get("rope_parameters") or lc.get("rope_scaling") or {}
    if isinstance(rope, dict):
        _check(rope.get("rope_type", rope.get("type", "default")) in ("default", None),
               f"unsupported RoPE scaling {rope!r}")
        theta = rope.get("rope_theta", v["rope_theta"])
    else:
        theta = v["rope_theta"]
    return LLMConfig(
        vocab_size=int(v["vocab_size"]), hidden_size=int(v["hidden_size"]),
        intermediate_size=int(v["intermediate_size"]), num_layers=int(v["num_hidden_layers"]),
        num_heads=int(v["num_attention_heads"]), num_kv_heads=int(v["num_key_value_heads"] or 0),
        rms_norm_eps=float(v["rms_norm_eps"]), rope_theta=float(theta),
        max_position_embeddings=int(v["max_position_embeddings"]),
        tie_word_embeddings=bool(v["tie_word_embeddings"]),
    )


def from_official_dict(d: dict[str, Any], chat_template: ChatTemplateName = "janus-pro") -> JanusConfig:
    """Parse DeepSeek's ``multi_modality`` config.json."""
    _check(d.get("model_type") == "multi_modality", f"not an official Janus config (model_type={d.get('model_type')!r})")
    if OFFICIAL_EXTRA_KEY in d:
        return dataclasses.replace(JanusConfig.from_dict(d[OFFICIAL_EXTRA_KEY]), chat_template=chat_template)
    try:
        llm = _llm_from_llama_dict(d["language_config"])
        vis_p = d["vision_config"]["params"]
        name = vis_p.get("model_name", "siglip_large_patch16_384")
        _check(name in SIGLIP_VARIANTS, f"unsupported vision tower {name!r}")
        var = dict(SIGLIP_VARIANTS[name])
        select_layer = int(vis_p.get("select_layer", -1))
        full = var["num_layers"]
        var["num_layers"] = min(full, full + select_layer + 1) if select_layer <= 0 else min(full, select_layer)
        _check(vis_p.get("select_feature", "same") in ("same", "patch", "cls_patch"), "unsupported select_feature")
        vision = VisionConfig(image_size=int(vis_p.get("image_size", 384)), **var)
        ap = d["aligner_config"]["params"]
        _check(ap.get("projector_type", "mlp_gelu") == "mlp_gelu", f"unsupported aligner {ap.get('projector_type')!r}")
        gv = d["gen_vision_config"]
        _check(gv.get("cls", "VQ-16") == "VQ-16", f"unsupported generation tokenizer {gv.get('cls')!r}")
        gvp = gv["params"]
        vq = VQConfig(image_size=vision.image_size, codebook_size=int(gvp["image_token_size"]),
                      codebook_dim=int(gvp["n_embed"]))
        gap = d["gen_aligner_config"]["params"]
        ghp = d["gen_head_config"]["params"]
        return JanusConfig(
            llm=llm, vision=vision, vq=vq,
            aligner=AlignerConfig(int(ap["input_dim"]), int(ap["n_embed"]), int(ap.get("depth", 2))),
            gen_aligner=AlignerConfig(int(gap["input_dim"]), int(gap["n_embed"]), int(gap.get("depth", 2))),
            gen_head=GenHeadConfig(int(ghp["n_embed"]), int(ghp["image_token_embed"]), int(ghp["image_token_size"])),
            chat_template=chat_template,
        )
    except KeyError as e:
        raise ConfigError(f"official config.json is missing {e}") from None


def to_official_dict(cfg: JanusConfig) -> dict[str, Any]:
    """Write ``cfg`` in DeepSeek's ``multi_modality`` schema (full LLM fields, nothing left to defaults)."""
    v = cfg.vision
    standard = (v.hidden_size, v.patch_size, v.mlp_ratio, v.num_heads, v.layer_norm_eps) == (1024, 16, 4.0, 16, 1e-6) \
        and v.num_layers <= 24 and (cfg.vq.channel_mult, cfg.vq.base_channels, cfg.vq.z_channels,
                                    cfg.vq.num_res_blocks, cfg.vq.l2_norm) == ((1, 1, 2, 2, 4), 128, 256, 2, True)
    out = _official_body(cfg)
    if not standard:
        # The official schema can only name SigLIP-L/16 and VQ-16; DeepSeek's loader ignores unknown top-level
        # keys, so the exact sizes of other models travel beside it and take precedence when we read it back.
        out[OFFICIAL_EXTRA_KEY] = cfg.to_dict()
    return out


def _official_body(cfg: JanusConfig) -> dict[str, Any]:
    assert cfg.aligner and cfg.gen_aligner and cfg.gen_head
    lm = cfg.llm
    v = cfg.vision
    return {
        "model_type": "multi_modality",
        "vision_config": {"cls": "CLIPVisionTower", "model_type": "vision", "params": {
            "image_size": v.image_size, "model_name": "siglip_large_patch16_384", "select_feature": "same",
            "select_layer": min(v.num_layers, 24) - 25}},
        "aligner_config": {"cls": "MlpProjector", "model_type": "aligner", "params": {
            "depth": cfg.aligner.depth, "input_dim": cfg.aligner.in_dim, "n_embed": cfg.aligner.out_dim,
            "projector_type": "mlp_gelu"}},
        "gen_vision_config": {"cls": "VQ-16", "model_type": "gen_vision", "params": {
            "image_token_size": cfg.vq.codebook_size, "n_embed": cfg.vq.codebook_dim}},
        "gen_aligner_config": {"cls": "MlpProjector", "model_type": "gen_aligner", "params": {
            "depth": cfg.gen_aligner.depth, "input_dim": cfg.gen_aligner.in_dim, "n_embed": cfg.gen_aligner.out_dim,
            "projector_type": "mlp_gelu"}},
        "gen_head_config": {"cls": "vision_head", "model_type": "gen_head", "params": {
            "image_token_embed": cfg.gen_head.hidden_dim, "image_token_size": cfg.gen_head.num_codes,
            "n_embed": cfg.gen_head.in_dim}},
        "language_config": {
            "model_type": "llama", "vocab_size": lm.vocab_size, "hidden_size": lm.hidden_size,
            "intermediate_size": lm.intermediate_size, "num_hidden_layers": lm.num_layers,
            "num_attention_heads": lm.num_heads, "num_key_value_heads": lm.num_kv_heads,
            "rms_norm_eps": lm.rms_norm_eps, "rope_theta": lm.rope_theta,
            "max_position_embeddings": lm.max_position_embeddings, "tie_word_embeddings": lm.tie_word_embeddings,
            "hidden_act": "silu"},
    }


# --------------------------------------------------------------------------- transformers' janus schema
def from_transformers_dict(d: dict[str, Any], chat_template: ChatTemplateName = "janus-pro") -> JanusConfig:
    """Parse ``transformers``' ``janus`` config.json (``JanusConfig.to_dict()``)."""
    _check(d.get("model_type") == "janus", f"not a transformers Janus config (model_type={d.get('model_type')!r})")
    tc = dict(d.get("text_config") or {})
    tc.setdefault("tie_word_embeddings", d.get("tie_word_embeddings", False))
    llm = _llm_from_llama_dict(tc)
    vc = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "image_size": 384,
          "patch_size": 16, "mlp_ratio": 4.0, "layer_norm_eps": 1e-6, "projection_dim": 2048, "depth": 2,
          "num_channels": 3, "hidden_act": "gelu", "use_qk_norm": False, "attention_bias": True,
          **(d.get("vision_config") or {})}
    _check(not vc["use_qk_norm"] and vc["attention_bias"] and vc["hidden_act"] == "gelu",
           "unsupported vision settings (qk-norm, no attention bias or a non-GELU activation)")
    qc = {"embed_dim": 8, "num_embeddings": 16384, "base_channels": 128, "channel_multiplier": [1, 1, 2, 2, 4],
          "num_res_blocks": 2, "latent_channels": 256, "in_channels": 3, "out_channels": 3, "projection_dim": 2048,
          "num_hidden_layers": 2, "image_token_embed_dim": 2048, "double_latent": False, "hidden_act": "gelu",
          **(d.get("vq_config") or {})}
    _check(not qc["double_latent"], "double_latent VQ is not supported")
    vision = VisionConfig(image_size=int(vc["image_size"]), patch_size=int(vc["patch_size"]),
                          hidden_size=int(vc["hidden_size"]), num_layers=int(vc["num_hidden_layers"]),
                          num_heads=int(vc["num_attention_heads"]), mlp_ratio=float(vc["mlp_ratio"]),
                          layer_norm_eps=float(vc["layer_norm_eps"]), num_channels=int(vc["num_channels"]))
    vq = VQConfig(image_size=vision.image_size, codebook_size=int(qc["num_embeddings"]), codebook_dim=int(qc["embed_dim"]),
                  base_channels=int(qc["base_channels"]), channel_mult=tuple(qc["channel_multiplier"]),
                  num_res_blocks=int(qc["num_res_blocks"]), z_channels=int(qc["latent_channels"]),
                  in_channels=int(qc["in_channels"]), out_channels=int(qc["out_channels"]))
    # transformers draws the decoded grid from the vision tower (num_patches = image_size // patch_size).
    _check(vq.grid_size == vision.grid_size, "transformers' Janus needs the VQ grid to equal the vision grid")
    return JanusConfig(
        llm=llm, vision=vision, vq=vq,
        aligner=AlignerConfig(vision.hidden_size, int(vc["projection_dim"]), int(vc["depth"])),
        gen_aligner=AlignerConfig(vq.codebook_dim, int(qc["projection_dim"]), int(qc["num_hidden_layers"])),
        gen_head=GenHeadConfig(int(qc["image_token_embed_dim"]), int(qc["projection_dim"]), vq.codebook_size),
        chat_template=chat_template,
    )


def to_transformers_dict(cfg: JanusConfig, image_token_id: int, special_ids: dict[str, int] | None = None
                         ) -> dict[str, Any]:
    """Write ``cfg`` in ``transformers``' ``janus`` schema."""
    assert cfg.aligner and cfg.gen_aligner and cfg.gen_head
    _check(cfg.gen_head.hidden_dim == cfg.gen_aligner.out_dim,
           "transformers' Janus ties the image-head width to the generation-aligner width")
    _check(cfg.vq.grid_size == cfg.vision.grid_size, "transformers' Janus needs the VQ grid to equal the vision grid")
    lm = cfg.llm
    sid = special_ids or {}
    return {
        "model_type": "janus",
        "image_token_id": image_token_id,
        "tie_word_embeddings": lm.tie_word_embeddings,
        "text_config": {
            "model_type": "llama", "vocab_size": lm.vocab_size, "hidden_size": lm.hidden_size,
            "intermediate_size": lm.intermediate_size, "num_hidden_layers": lm.num_layers,
            "num_attention_heads": lm.num_heads, "num_key_value_heads": lm.num_kv_heads,
            "rms_norm_eps": lm.rms_norm_eps, "rope_theta": lm.rope_theta,
            "max_position_embeddings": lm.max_position_embeddings, "tie_word_embeddings": lm.tie_word_embeddings,
            "hidden_act": "silu", **{k: v for k, v in sid.items() if k in ("bos_token_id", "eos_token_id", "pad_token_id")},
        },
        "vision_config": {
            "model_type": "janus_vision_model", "hidden_size": cfg.vision.hidden_size,
            "num_hidden_layers": cfg.vision.num_layers, "num_attention_heads": cfg.vision.num_heads,
            "image_size": cfg.vision.image_size, "patch_size": cfg.vision.patch_size, "mlp_ratio": cfg.vision.mlp_ratio,
            "layer_norm_eps": cfg.vision.layer_norm_eps, "num_channels": cfg.vision.num_channels,
            "projection_dim": cfg.aligner.out_dim, "depth": cfg.aligner.depth, "hidden_act": "gelu",
            "num_image_tokens": cfg.vision.num_tokens,
        },
        "vq_config": {
            "model_type": "janus_vqgan", "embed_dim": cfg.vq.codebook_dim, "num_embeddings": cfg.vq.codebook_size,
            "base_channels": cfg.vq.base_channels, "channel_multiplier": list(cfg.vq.channel_mult),
            "num_res_blocks": cfg.vq.num_res_blocks, "latent_channels": cfg.vq.z_channels,
            "in_channels": cfg.vq.in_channels, "out_channels": cfg.vq.out_channels,
            "projection_dim": cfg.gen_aligner.out_dim, "num_hidden_layers": cfg.gen_aligner.depth,
            "image_token_embed_dim": cfg.gen_head.in_dim, "hidden_act": "gelu",
            "num_patches": cfg.vq.grid_size,
        },
    }


ConfigFormat = Literal["ours", "official", "transformers"]


def detect_format(d: dict[str, Any]) -> ConfigFormat:
    mt = d.get("model_type")
    if mt == CONFIG_FORMAT:
        return "ours"
    if mt == "multi_modality":
        return "official"
    if mt == "janus":
        return "transformers"
    raise ConfigError(
        f"config.json has model_type={mt!r}; januspro loads Janus models only "
        "('januspro', the official 'multi_modality', or transformers' 'janus')")


def parse_config(d: dict[str, Any], chat_template: ChatTemplateName | None = None) -> tuple[JanusConfig, ConfigFormat]:
    """Parse a config.json dict of any supported schema; returns the config and the schema name."""
    fmt = detect_format(d)
    if fmt == "ours":
        cfg = JanusConfig.from_dict(d)
        if chat_template is not None:
            cfg = dataclasses.replace(cfg, chat_template=chat_template)
        return cfg, fmt
    tpl: ChatTemplateName = chat_template or "janus-pro"
    if fmt == "official":
        return from_official_dict(d, tpl), fmt
    return from_transformers_dict(d, tpl), fmt


def load_config(path: str | Path, chat_template: ChatTemplateName | None = None) -> tuple[JanusConfig, ConfigFormat]:
    """Read a config.json (or the one in a model folder)."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    if not p.is_file():
        raise ConfigError(f"no config.json at {p}")
    try:
        d = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p} is not valid JSON: {e}") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{p} does not hold a JSON object")
    return parse_config(d, chat_template)
