"""Checkpoint layouts: key coverage, official layout loading, bit-exact round trips, clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from januspro.checkpoint import CheckpointError, convert, load_model, save_model
from januspro.checkpoint.keys import all_their_keys, export_state_dict, import_state_dict
from januspro.config import JanusConfig, preset, to_official_dict
from januspro.models.janus import JanusModel


def tiny_model(seed: int = 0) -> JanusModel:
    torch.manual_seed(seed)
    m = JanusModel(preset("tiny"))
    m.init_weights_()
    return m


def official_keys(cfg: JanusConfig) -> set[str]:
    """Every key of DeepSeek's MultiModalityCausalLM state dict, enumerated from its module structure
    (independently of our key table): LlamaForCausalLM, timm-style SigLIP ViT, MlpProjector, LlamaGen VQ."""
    assert cfg.aligner and cfg.gen_aligner
    keys: set[str] = set()
    lm = "language_model.model"
    keys |= {f"{lm}.embed_tokens.weight", f"{lm}.norm.weight", "language_model.lm_head.weight"}
    for i in range(cfg.llm.num_layers):
        p = f"{lm}.layers.{i}"
        keys |= {f"{p}.self_attn.{x}_proj.weight" for x in "qkvo"}
        keys |= {f"{p}.mlp.{x}_proj.weight" for x in ("gate", "up", "down")}
        keys |= {f"{p}.input_layernorm.weight", f"{p}.post_attention_layernorm.weight"}
    vt = "vision_model.vision_tower"
    keys |= {f"{vt}.patch_embed.proj.weight", f"{vt}.patch_embed.proj.bias", f"{vt}.pos_embed",
             f"{vt}.norm.weight", f"{vt}.norm.bias"}
    for i in range(cfg.vision.num_layers):
        p = f"{vt}.blocks.{i}"
        for mod in ("norm1", "norm2", "attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"):
            keys |= {f"{p}.{mod}.weight", f"{p}.{mod}.bias"}
    for name, depth in (("aligner", cfg.aligner.depth), ("gen_aligner", cfg.gen_aligner.depth)):
        keys |= {f"{name}.layers.{2 * j}.{w}" for j in range(depth) for w in ("weight", "bias")}
    keys |= {"gen_embed.weight"}
    keys |= {f"gen_head.{m}.{w}" for m in ("output_mlp_projector", "vision_head") for w in ("weight", "bias")}

    def res(p: str, cin: int, cout: int) -> set[str]:
        out = {f"{p}.{m}.{w}" for m in ("norm1", "conv1", "norm2", "conv2") for w in ("weight", "bias")}
        if cin != cout:
            out |= {f"{p}.nin_shortcut.weight", f"{p}.nin_shortcut.bias"}
        return out

    def attn(p: str) -> set[str]:
        return {f"{p}.{m}.{w}" for m in ("norm", "q", "k", "v", "proj_out") for w in ("weight", "bias")}

    vq = cfg.vq
    g = "gen_vision_model"
    ch, mult, n = vq.base_channels, vq.channel_mult, len(vq.channel_mult)
    keys |= {f"{g}.{m}.{w}" for m in ("encoder.conv_in", "encoder.norm_out", "encoder.conv_out", "decoder.conv_in",
                                      "decoder.norm_out", "decoder.conv_out", "quant_conv", "post_quant_conv")
             for w in ("weight", "bias")}
    keys |= {f"{g}.quantize.embedding.weight", f"{g}.quantize.codebook_used"}
    cin = ch
    for lvl in range(n):
        for b in range(vq.num_res_blocks):
            keys |= res(f"{g}.encoder.conv_blocks.{lvl}.res.{b}", cin, ch * mult[lvl])
            cin = ch * mult[lvl]
            if lvl == n - 1:
                keys |= attn(f"{g}.encoder.conv_blocks.{lvl}.attn.{b}")
        if lvl != n - 1:
            keys |= {f"{g}.encoder.conv_blocks.{lvl}.downsample.conv.{w}" for w in ("weight", "bias")}
    for side in ("encoder", "decoder"):
        top = ch * mult[-1]
        keys |= res(f"{g}.{side}.mid.0", top, top) | attn(f"{g}.{side}.mid.1") | res(f"{g}.{side}.mid.2", top, top)
    cin = ch * mult[-1]
    for k, lvl in enumerate(reversed(range(n))):
        for b in range(vq.num_res_blocks + 1):
            keys |= res(f"{g}.decoder.conv_blocks.{k}.res.{b}", cin, ch * mult[lvl])
            cin = ch * mult[lvl]
            if lvl == n - 1:
                keys |= attn(f"{g}.decoder.conv_blocks.{k}.attn.{b}")
        if lvl != 0:
            keys |= {f"{g}.decoder.conv_blocks.{k}.upsample.conv.{w}" for w in ("weight", "bias")}
    return keys


@pytest.mark.parametrize("name", ["tiny", "janus-pro-1b"])
def test_every_official_key_is_mapped_or_dropped(name):
    cfg = preset(name)
    with torch.device("meta"):
        m = JanusModel(cfg)
    ours = set(m.state_dict())
    expected = official_keys(cfg)
    mapped = all_their_keys(ours, "official", cfg)
    assert mapped == expected - {"gen_vision_model.quantize.codebook_used"}
    # the other direction: every official key maps back to one of ours or is on the drop list
    fake = {k: torch.zeros(1) for k in expected | {"vision_model.vision_tower.attn_pool.latent",
                                                    "vision_model.vision_tower.attn_pool.kv.weight"}}
    res = import_state_dict(fake, "official", cfg)
    assert not res.unmapped
    assert set(res.state_dict) == ours
    assert sorted(res.dropped) == ["gen_vision_model.quantize.codebook_used",
                                   "vision_model.vision_tower.attn_pool.kv.weight",
                                   "vision_model.vision_tower.attn_pool.latent"]


def test_every_transformers_key_is_mapped():
    pytest.importorskip("transformers")
    from helpers import make_oracle
    from januspro.config import parse_config

    for name in ("a", "b"):
        hf = make_oracle(name).hf
        cfg, _ = parse_config(hf.config.to_dict())
        with torch.device("meta"):
            m = JanusModel(cfg)
        assert all_their_keys(m.state_dict(), "transformers", cfg) == set(hf.state_dict())
        res = import_state_dict(hf.state_dict(), "transformers", cfg)
        assert not res.unmapped and set(res.state_dict) == set(m.state_dict())


def _write_official(model: JanusModel, folder: Path, shards: int = 2) -> None:
    """An official-layout checkpoint as DeepSeek ships it: pickle shards + index, bf16, extra keys to drop."""
    folder.mkdir(parents=True)
    sd = export_state_dict(model.state_dict(), "official", model.cfg)
    sd["gen_vision_model.quantize.codebook_used"] = torch.zeros(65536)
    sd["vision_model.vision_tower.attn_pool.latent"] = torch.zeros(1, 1, model.cfg.vision.hidden_size)
    sd["vision_model.vision_tower.attn_pool.q.weight"] = torch.zeros(4, 4)
    keys = sorted(sd)
    weight_map = {}
    for i in range(shards):
        name = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
        part = {k: sd[k].to(torch.bfloat16) for k in keys[i::shards]}
        torch.save(part, folder / name)
        weight_map.update({k: name for k in part})
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (folder / "config.json").write_text(json.dumps(to_official_dict(model.cfg)))


def test_official_layout_loads_strictly(tmp_path):
    m = tiny_model()
    _write_official(m, tmp_path / "official")
    loaded = load_model(tmp_path / "official", dtype="fp32")
    for k, v in m.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v.to(torch.bfloat16).float()), k
    assert loaded.lm_head.weight.dtype == torch.float32
    kept = load_model(tmp_path / "official")
    assert kept.lm_head.weight.dtype == torch.bfloat16


@pytest.mark.parametrize("via", ["official", "transformers"])
def test_round_trip_is_bit_exact(tmp_path, via):
    m = tiny_model()
    # transformers draws the VQ grid from the vision grid, so use a tiny model where both agree
    if via == "transformers":
        from dataclasses import replace

        cfg = m.cfg
        cfg = replace(cfg, vq=replace(cfg.vq, channel_mult=(1, 2, 2, 2)), vision=replace(cfg.vision, patch_size=8))
        cfg = replace(cfg, vq=replace(cfg.vq, norm_groups=32))
        torch.manual_seed(1)
        m = JanusModel(cfg)
        m.init_weights_()
    save_model(m, tmp_path / "ours", "ours", image_token_id=7)
    kw = {"image_token_id": 7} if via == "transformers" else {}
    save_model(load_model(tmp_path / "ours"), tmp_path / via, via, **kw)
    convert(tmp_path / via, tmp_path / "back", to="ours")
    back = load_model(tmp_path / "back")
    assert back.cfg == m.cfg
    sd, sd2 = m.state_dict(), back.state_dict()
    assert sd.keys() == sd2.keys()
    for k in sd:
        assert sd[k].dtype == sd2[k].dtype and torch.equal(sd[k], sd2[k]), k


def test_transformers_layout_loads_in_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    from helpers import make_oracle

    oracle = make_oracle("a")
    oracle.hf.save_pretrained(tmp_path / "hf")
    convert(tmp_path / "hf", tmp_path / "ours")
    # no tokenizer travels with this random model, so the image token id is given explicitly
    save_model(load_model(tmp_path / "ours"), tmp_path / "hf2", "transformers", image_token_id=7)
    hf2 = transformers.JanusForConditionalGeneration.from_pretrained(tmp_path / "hf2")
    for k, v in oracle.hf.state_dict().items():
        assert torch.equal(hf2.state_dict()[k], v), k


def test_sharded_safetensors(tmp_path):
    m = tiny_model()
    save_model(m, tmp_path / "m", max_shard_bytes=200_000)
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert "model.safetensors.index.json" in files and sum(f.endswith(".safetensors") for f in files) > 2
    back = load_model(tmp_path / "m")
    assert all(torch.equal(back.state_dict()[k], v) for k, v in m.state_dict().items())


def test_dtype_and_tied_embeddings(tmp_path):
    from dataclasses import replace

    cfg = preset("tiny")
    cfg = replace(cfg, llm=replace(cfg.llm, tie_word_embeddings=True))
    m = JanusModel(cfg)
    assert m.lm_head.weight is m.llm.embed_tokens.weight
    save_model(m, tmp_path / "t", dtype="bf16")
    back = load_model(tmp_path / "t", dtype="fp16")
    assert back.lm_head.weight is back.llm.embed_tokens.weight
    assert back.lm_head.weight.dtype == torch.float16


# ----------------------------------------------------------------------------- bad input
def test_wrong_folder(tmp_path):
    with pytest.raises(CheckpointError, match="no model folder"):
        load_model(tmp_path / "does-not-exist")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        load_model(tmp_path / "empty")
    (tmp_path / "f.bin").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="is a file"):
        load_model(tmp_path / "f.bin")


def test_hub_id_offline_is_clear(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    with pytest.raises(CheckpointError, match="not in the hub cache"):
        load_model("deepseek-ai/Janus-Pro-1B")


def test_missing_shard(tmp_path):
    m = tiny_model()
    _write_official(m, tmp_path / "o")
    os.remove(tmp_path / "o" / "pytorch_model-00002-of-00002.bin")
    with pytest.raises(CheckpointError, match="missing: pytorch_model-00002-of-00002.bin"):
        load_model(tmp_path / "o")


def test_no_weights(tmp_path):
    preset("tiny").save(tmp_path / "config.json")
    with pytest.raises(CheckpointError, match="holds no weights"):
        load_model(tmp_path)


def test_other_model_type(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llava", "hidden_size": 4}))
    with pytest.raises(CheckpointError, match="model_type='llava'"):
        load_model(tmp_path)


def test_shape_mismatch_is_listed(tmp_path):
    from dataclasses import replace

    m = tiny_model()
    save_model(m, tmp_path / "m")
    cfg = replace(m.cfg, vq=replace(m.cfg.vq, codebook_size=128), gen_head=None)  # head re-derived
    cfg.save(tmp_path / "m" / "config.json")
    with pytest.raises(CheckpointError) as e:
        load_model(tmp_path / "m")
    msg = str(e.value)
    assert "wrong shape" in msg and "vq.quantize.embedding.weight: checkpoint (64, 8) vs model (128, 8)" in msg


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    m = tiny_model()
    sd = export_state_dict(m.state_dict(), "official", m.cfg)
    del sd["gen_embed.weight"]
    sd["mystery.weight"] = torch.zeros(2)
    (tmp_path / "o").mkdir()
    torch.save(sd, tmp_path / "o" / "pytorch_model.bin")
    (tmp_path / "o" / "config.json").write_text(json.dumps(to_official_dict(m.cfg)))
    with pytest.raises(CheckpointError) as e:
        load_model(tmp_path / "o")
    assert "missing (1): gen_embed.weight" in str(e.value)
    assert "unexpected (1): mystery.weight" in str(e.value)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_with_code_is_refused(tmp_path):
    m = tiny_model()
    (tmp_path / "o").mkdir()
    sd = dict(export_state_dict(m.state_dict(), "official", m.cfg))
    sd["evil"] = _Evil()  # type: ignore[assignment]
    torch.save(sd, tmp_path / "o" / "pytorch_model.bin")
    (tmp_path / "o" / "config.json").write_text(json.dumps(to_official_dict(m.cfg)))
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_model(tmp_path / "o")


def test_corrupt_safetensors(tmp_path):
    m = tiny_model()
    save_model(m, tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_model(tmp_path / "m")


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path):
    from januspro.system import atomic_write

    target = tmp_path / "x.json"
    atomic_write(target, lambda tmp: Path(tmp).write_text("old"))

    def half_then_fail(tmp):
        Path(tmp).write_text("new, half written")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # the temporary file is gone
