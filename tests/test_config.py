import json

import pytest
import torch

from januspro.config import (
    ConfigError,
    JanusConfig,
    LLMConfig,
    from_official_dict,
    from_transformers_dict,
    load_config,
    parse_config,
    preset,
    to_official_dict,
    to_transformers_dict,
)
from januspro.models.janus import JanusModel


def test_real_schema_janus_pro_7b(fixtures_dir):
    d = json.loads((fixtures_dir / "janus-pro-7b-derived" / "januspro_eagle_drafter_config.json").read_text())
    d["language_config"]["num_hidden_layers"] = 30  # the fixture is an EAGLE drafter copy with 1 layer
    cfg = from_official_dict(d)
    # fields the real config leaves out come from LlamaConfig's defaults, as transformers fills them
    assert (cfg.llm.hidden_size, cfg.llm.intermediate_size, cfg.llm.num_heads, cfg.llm.num_kv_heads) == (4096, 11008, 32, 32)
    assert (cfg.llm.num_layers, cfg.llm.vocab_size, cfg.llm.max_position_embeddings) == (30, 102400, 16384)
    assert cfg.llm.rms_norm_eps == 1e-6 and cfg.llm.rope_theta == 10000.0 and not cfg.llm.tie_word_embeddings
    assert (cfg.vision.hidden_size, cfg.vision.num_layers, cfg.vision.image_size, cfg.vision.num_tokens) == (1024, 24, 384, 576)
    assert (cfg.vq.codebook_size, cfg.vq.codebook_dim, cfg.vq.num_tokens) == (16384, 8, 576)
    assert cfg.aligner.in_dim == 1024 and cfg.aligner.out_dim == 4096
    assert cfg.gen_head.hidden_dim == 4096 and cfg.gen_head.num_codes == 16384
    assert cfg == preset("janus-pro-7b")


def test_official_select_layer_builds_fewer_blocks(fixtures_dir):
    d = json.loads((fixtures_dir / "janus-pro-7b-derived" / "januspro_eagle_drafter_config.json").read_text())
    d["vision_config"]["params"]["select_layer"] = -2
    assert from_official_dict(d).vision.num_layers == 23


@pytest.mark.parametrize("name", ["janus-pro-1b", "janus-pro-7b", "janus-1.3b", "tiny"])
def test_schemas_round_trip(name, tmp_path):
    cfg = preset(name)
    assert JanusConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    off = from_official_dict(json.loads(json.dumps(to_official_dict(cfg))), cfg.chat_template)
    assert off == cfg
    if name != "tiny":
        assert "januspro_config" not in to_official_dict(cfg)  # real sizes need no side-car
    if cfg.vq.grid_size == cfg.vision.grid_size and cfg.vq.norm_groups == 32:
        hf = from_transformers_dict(json.loads(json.dumps(to_transformers_dict(cfg, 100581))), cfg.chat_template)
        assert hf == cfg
    cfg.save(tmp_path / "config.json")
    assert load_config(tmp_path) == (cfg, "ours")


def test_transformers_default_config_parses():
    transformers = pytest.importorskip("transformers")
    text = transformers.LlamaConfig(vocab_size=102400, hidden_size=2048, intermediate_size=5632,
                                    num_hidden_layers=24, num_attention_heads=16, max_position_embeddings=16384)
    d = transformers.JanusConfig(text_config=text, tie_word_embeddings=False).to_dict()
    cfg, fmt = parse_config(d)
    assert fmt == "transformers"
    assert cfg == preset("janus-pro-1b")


@pytest.mark.parametrize("name,llm_params,total_range", [
    ("janus-pro-1b", None, (2.05e9, 2.10e9)),
    ("janus-pro-7b", None, (7.38e9, 7.43e9)),
])
def test_meta_device_sizes(name, llm_params, total_range):
    cfg = preset(name)
    with torch.device("meta"):
        m = JanusModel(cfg)
    c = cfg.llm
    per_layer = 4 * c.hidden_size**2 + 3 * c.hidden_size * c.intermediate_size + 2 * c.hidden_size
    assert sum(p.numel() for p in m.llm.parameters()) == c.vocab_size * c.hidden_size + c.num_layers * per_layer + c.hidden_size
    expected = {"janus-pro-1b": (24, 2048, 5632, 16), "janus-pro-7b": (30, 4096, 11008, 32)}[name]
    assert (c.num_layers, c.hidden_size, c.intermediate_size, c.num_heads, c.vocab_size) == (*expected, 102400)
    assert len(m.llm.layers) == expected[0]
    # SigLIP-L/16 at 384: 24 blocks of width 1024, 576 patch tokens, ~303.7M parameters without the pool head
    assert len(m.vision.blocks) == 24 and m.vision.pos_embed.shape == (576, 1024)
    assert sum(p.numel() for p in m.vision.parameters()) == 303_688_704
    # LlamaGen VQ-16: codebook 16384 x 8, ~72M parameters, 24x24 = 576 codes per image
    assert m.vq.quantize.embedding.weight.shape == (16384, 8)
    assert sum(p.numel() for p in m.vq.parameters()) == 71_883_403
    assert cfg.vq.num_tokens == 576 and cfg.vq.downsample == 16
    assert m.gen_head.vision_head.weight.shape == (16384, c.hidden_size)
    total = m.num_parameters()
    # The hub pages list 2.09B / 7.42B; those counts also hold SigLIP's unused attention-pool head (~12.6M)
    assert total_range[0] <= total <= total_range[1]
    assert all(p.is_meta for p in m.parameters())


def test_bad_config_values():
    with pytest.raises(ConfigError, match="divisible"):
        LLMConfig(hidden_size=100, num_heads=3)
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("janus-pro-70b")
    with pytest.raises(ConfigError, match="unknown key"):
        JanusConfig.from_dict({**preset("tiny").to_dict(), "bogus": 1})
    with pytest.raises(ConfigError, match="model_type"):
        parse_config({"model_type": "bert"})
