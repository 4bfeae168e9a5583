"""Key tables: how each checkpoint format names our parameters, as data.

A table is an ordered list of :class:`Rule` rows. A row pairs a template of our key with the template(s) of
the other format's key(s); templates hold ``{name}`` placeholders: ``{i}`` matches a layer number, ``{p}``
``weight|bias`` and ``{rest}`` any dotted tail. The first row whose template matches a key wins, in either
direction, so specific rows come before prefix rows. ``transform`` names a tensor change that goes with the
rename ("split": one fused tensor of ours is several of theirs, stacked along dim 0 in the listed order,
with sizes named by ``sizes`` and read from the config). Every format also has a drop list of keys that exist in its checkpoints but not in the model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import torch

from ..config import JanusConfig

Transform = Literal["same", "unsqueeze0", "split"]
SplitSizes = Literal["", "qkv", "gate_up", "vit_qkv"]
Format = Literal["ours", "official", "transformers"]
FORMATS: tuple[Format, ...] = ("ours", "official", "transformers")

_PLACEHOLDER = {"i": r"\d+", "p": r"weight|bias", "rest": r".+"}


@dataclass(frozen=True)
class Rule:
    ours: str
    theirs: tuple[str, ...]
    transform: Transform = "same"
    sizes: SplitSizes = ""


def _r(ours: str, *theirs: str, transform: Transform = "same", sizes: SplitSizes = "") -> Rule:
    return Rule(ours, tuple(theirs), transform, sizes)


def split_sizes(name: SplitSizes, cfg: JanusConfig) -> tuple[int, ...]:
    c = cfg.llm
    if name == "qkv":
        return (c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim, c.num_kv_heads * c.head_dim)
    if name == "gate_up":
        return (c.intermediate_size, c.intermediate_size)
    if name == "vit_qkv":
        return (cfg.vision.hidden_size,) * 3
    raise ValueError(f"no split sizes named {name!r}")


def _llm_rules(prefix: str) -> list[Rule]:
    """Our fused q/k/v and gate/up projections are separate tensors in both released layouts."""
    lay = f"{prefix}.layers.{{i}}"
    return [
        _r("llm.layers.{i}.self_attn.qkv_proj.weight", *(f"{lay}.self_attn.{x}_proj.weight" for x in "qkv"),
           transform="split", sizes="qkv"),
        _r("llm.layers.{i}.mlp.gate_up_proj.weight", f"{lay}.mlp.gate_proj.weight", f"{lay}.mlp.up_proj.weight",
           transform="split", sizes="gate_up"),
        _r("llm.{rest}", f"{prefix}.{{rest}}"),
    ]


def _aligner_rules(ours_prefix: str, hf_prefix: str, depth: int) -> list[Rule]:
    rows = [_r(f"{ours_prefix}.layers.0.{{p}}", f"{hf_prefix}.fc1.{{p}}")]
    rows += [_r(f"{ours_prefix}.layers.{2 * j}.{{p}}", f"{hf_prefix}.hidden_layers.{j - 1}.{{p}}")
             for j in range(1, depth)]
    return rows


def _vq_hf_rules() -> list[Rule]:
    rows: list[Rule] = []
    for side, level, resample in (("encoder", "down", "downsample"), ("decoder", "up", "upsample")):
        o, t = f"vq.{side}", f"model.vqmodel.{side}"
        rows += [
            _r(f"{o}.conv_blocks.{{i}}.res.{{rest}}", f"{t}.{level}.{{i}}.block.{{rest}}"),
            _r(f"{o}.conv_blocks.{{i}}.attn.{{rest}}", f"{t}.{level}.{{i}}.attn.{{rest}}"),
            _r(f"{o}.conv_blocks.{{i}}.{resample}.{{rest}}", f"{t}.{level}.{{i}}.{resample}.{{rest}}"),
            _r(f"{o}.mid.0.{{rest}}", f"{t}.mid.block_1.{{rest}}"),
            _r(f"{o}.mid.1.{{rest}}", f"{t}.mid.attn_1.{{rest}}"),
            _r(f"{o}.mid.2.{{rest}}", f"{t}.mid.block_2.{{rest}}"),
        ]
    rows.append(_r("vq.{rest}", "model.vqmodel.{rest}"))
    return rows


def key_table(fmt: Format, cfg: JanusConfig) -> list[Rule]:
    """The rename table between our state-dict keys and format ``fmt``."""
    assert cfg.aligner and cfg.gen_aligner
    if fmt == "ours":
        return [_r("{rest}", "{rest}")]
    if fmt == "official":
        vt = "vision_model.vision_tower"
        return [
            *_llm_rules("language_model.model"),
            _r("lm_head.weight", "language_model.lm_head.weight"),
            _r("vision.patch_embed.{p}", f"{vt}.patch_embed.proj.{{p}}"),
            _r("vision.pos_embed", f"{vt}.pos_embed", transform="unsqueeze0"),
            _r("vision.{rest}", f"{vt}.{{rest}}"),
            _r("aligner.{rest}", "aligner.{rest}"),
            _r("vq.{rest}", "gen_vision_model.{rest}"),
            _r("gen_embed.weight", "gen_embed.weight"),
            _r("gen_aligner.{rest}", "gen_aligner.{rest}"),
            _r("gen_head.{rest}", "gen_head.{rest}"),
        ]
    if fmt == "transformers":
        vm = "model.vision_model"
        blk = f"{vm}.encoder.layers.{{i}}"
        return [
            *_llm_rules("model.language_model"),
            _r("lm_head.weight", "lm_head.weight"),
            _r("vision.patch_embed.{p}", f"{vm}.embeddings.patch_embedding.{{p}}"),
            _r("vision.pos_embed", f"{vm}.embeddings.position_embedding.weight"),
            _r("vision.blocks.{i}.norm1.{p}", f"{blk}.layer_norm1.{{p}}"),
            _r("vision.blocks.{i}.norm2.{p}", f"{blk}.layer_norm2.{{p}}"),
            _r("vision.blocks.{i}.attn.qkv.{p}", f"{blk}.self_attn.q_proj.{{p}}", f"{blk}.self_attn.k_proj.{{p}}",
               f"{blk}.self_attn.v_proj.{{p}}", transform="split", sizes="vit_qkv"),
            _r("vision.blocks.{i}.attn.proj.{p}", f"{blk}.self_attn.projection_layer.{{p}}"),
            _r("vision.blocks.{i}.mlp.{rest}", f"{blk}.mlp.{{rest}}"),
            _r("vision.norm.{p}", f"{vm}.post_layernorm.{{p}}"),
            *_aligner_rules("aligner", "model.aligner", cfg.aligner.depth),
            *_vq_hf_rules(),
            _r("gen_embed.weight", "model.generation_embeddings.weight"),
            *_aligner_rules("gen_aligner", "model.generation_aligner", cfg.gen_aligner.depth),
            _r("gen_head.output_mlp_projector.{p}", "model.generation_head.proj_out.{p}"),
            _r("gen_head.vision_head.{p}", "model.generation_head.vision_head.{p}"),
        ]
    raise ValueError(f"unknown checkpoint format {fmt!r}; choose one of {FORMATS}")


# Keys that exist in a format's checkpoints but have no place in the model (regexes, full match).
DROP: dict[Format, tuple[str, ...]] = {
    "ours": (),
    "official": (
        r"gen_vision_model\.quantize\.codebook_used",  # LlamaGen's usage counter, a training statistic
        r"vision_model\.vision_tower\.attn_pool\..+",  # SigLIP's pooling head, unused by Janus
        r"language_model\.model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq",  # older transformers saved it
    ),
    "transformers": (
        r"model\.vision_model\.embeddings\.position_ids",
        r"model\.language_model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq",
    ),
}


_COMPILED: dict[str, re.Pattern[str]] = {}


def _compile(template: str) -> re.Pattern[str]:
    hit = _COMPILED.get(template)
    if hit is not None:
        return hit
    out, pos = [], 0
    for m in re.finditer(r"\{(\w+)\}", template):
        out.append(re.escape(template[pos:m.start()]))
        out.append(f"(?P<{m.group(1)}>{_PLACEHOLDER[m.group(1)]})")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    _COMPILED[template] = re.compile("".join(out))
    return _COMPILED[template]


def _fill(template: str, values: Mapping[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


def is_dropped(fmt: Format, key: str) -> bool:
    return any(re.fullmatch(p, key) for p in DROP[fmt])


def ours_to_theirs(key: str, table: list[Rule]) -> tuple[tuple[str, ...], Rule]:
    """Our key -> the other format's key(s) and the matching rule."""
    for rule in table:
        m = _compile(rule.ours).fullmatch(key)
        if m:
            return tuple(_fill(t, m.groupdict()) for t in rule.theirs), rule
    raise KeyError(key)


def theirs_to_ours(key: str, table: list[Rule]) -> tuple[str, Rule, int]:
    """The other format's key -> our key, the matching rule and which of its keys this is."""
    for rule in table:
        for j, t in enumerate(rule.theirs):
            m = _compile(t).fullmatch(key)
            if m:
                return _fill(rule.ours, m.groupdict()), rule, j
    raise KeyError(key)


def export_state_dict(ours: Mapping[str, torch.Tensor], fmt: Format, cfg: JanusConfig) -> dict[str, torch.Tensor]:
    """Rename (and reshape) our state dict into format ``fmt``."""
    table = key_table(fmt, cfg)
    out: dict[str, torch.Tensor] = {}
    for key, t in ours.items():
        names, rule = ours_to_theirs(key, table)
        if rule.transform == "same":
            out[names[0]] = t
        elif rule.transform == "unsqueeze0":
            out[names[0]] = t.unsqueeze(0)
        elif rule.transform == "split":
            parts = t.split(split_sizes(rule.sizes, cfg), dim=0)
            for name, part in zip(names, parts, strict=True):
                out[name] = part.contiguous()
    return out


@dataclass
class ImportResult:
    state_dict: dict[str, torch.Tensor]
    dropped: list[str]
    unmapped: list[str]


def import_state_dict(theirs: Mapping[str, torch.Tensor], fmt: Format, cfg: JanusConfig) -> ImportResult:
    """Rename a state dict of format ``fmt`` into ours. Unknown keys are reported, never silently ignored."""
    table = key_table(fmt, cfg)
    out: dict[str, torch.Tensor] = {}
    parts: dict[str, dict[int, torch.Tensor]] = {}
    expected_parts: dict[str, int] = {}
    dropped: list[str] = []
    unmapped: list[str] = []
    for key, t in theirs.items():
        if is_dropped(fmt, key):
            dropped.append(key)
            continue
        try:
            ours, rule, j = theirs_to_ours(key, table)
        except KeyError:
            unmapped.append(key)
            continue
        if rule.transform == "same":
            out[ours] = t
        elif rule.transform == "unsqueeze0":
            out[ours] = t.squeeze(0) if t.dim() == 3 else t
        elif rule.transform == "split":
            parts.setdefault(ours, {})[j] = t
            expected_parts[ours] = len(rule.theirs)
    for ours, pieces in parts.items():
        need = expected_parts[ours]
        if len(pieces) != need:
            unmapped.append(f"{ours} (only {len(pieces)} of its {need} parts are in the checkpoint)")
            continue
        out[ours] = torch.cat([pieces[i] for i in range(need)], dim=0)
    return ImportResult(out, dropped, unmapped)


def all_their_keys(our_keys: Iterable[str], fmt: Format, cfg: JanusConfig) -> set[str]:
    table = key_table(fmt, cfg)
    return {n for k in our_keys for n in ours_to_theirs(k, table)[0]}
