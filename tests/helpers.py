"""Shared test helpers: tiny transformers Janus models as the oracle, and tiny inputs."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch

ORACLE_CONFIGS = {
    # Two configs differing in head count, width, GQA and VQ depth.
    "a": dict(vocab=320, hidden=64, ffn=96, layers=2, heads=4, kv_heads=2, v_hidden=32, v_layers=2, v_heads=4,
              image=32, patch=8, vq_mult=[1, 2, 2, 2], vq_ch=32, vq_blocks=1, codes=50, tie=False),
    "b": dict(vocab=288, hidden=96, ffn=160, layers=3, heads=6, kv_heads=6, v_hidden=48, v_layers=3, v_heads=3,
              image=64, patch=16, vq_mult=[1, 1, 2, 2, 2], vq_ch=32, vq_blocks=2, codes=40, tie=True),
}
IMAGE_TOKEN_ID = 7
BOS, EOS, PAD, BOI, EOI = 1, 2, 0, 5, 6


@dataclass
class Oracle:
    hf: torch.nn.Module
    spec: dict


def make_oracle(name: str, seed: int = 0, scale: float = 3.0) -> Oracle:
    """A transformers JanusForConditionalGeneration with random weights, scaled up so activations are not tiny."""
    from transformers import (
        JanusConfig,
        JanusForConditionalGeneration,
        JanusVisionConfig,
        JanusVQVAEConfig,
        LlamaConfig,
    )

    s = ORACLE_CONFIGS[name]
    torch.manual_seed(seed)
    tc = LlamaConfig(vocab_size=s["vocab"], hidden_size=s["hidden"], intermediate_size=s["ffn"],
                     num_hidden_layers=s["layers"], num_attention_heads=s["heads"], num_key_value_heads=s["kv_heads"],
                     max_position_embeddings=512, tie_word_embeddings=s["tie"])
    grid = s["image"] // s["patch"]
    vc = JanusVisionConfig(hidden_size=s["v_hidden"], num_hidden_layers=s["v_layers"], num_attention_heads=s["v_heads"],
                           image_size=s["image"], patch_size=s["patch"], projection_dim=s["hidden"], depth=2,
                           num_image_tokens=grid * grid)
    qc = JanusVQVAEConfig(embed_dim=8, num_embeddings=s["codes"], base_channels=s["vq_ch"],
                          channel_multiplier=s["vq_mult"], num_res_blocks=s["vq_blocks"], latent_channels=32,
                          projection_dim=s["hidden"], image_token_embed_dim=s["hidden"], num_hidden_layers=2)
    cfg = JanusConfig(text_config=tc, vision_config=vc, vq_config=qc, image_token_id=IMAGE_TOKEN_ID,
                      tie_word_embeddings=s["tie"])
    hf = JanusForConditionalGeneration(cfg).eval()
    gc = hf.generation_config
    gc.bos_token_id, gc.pad_token_id, gc.eos_token_id = BOS, PAD, EOS
    gc.generation_kwargs = {"boi_token_id": BOI}
    with torch.no_grad():
        for n, p in hf.named_parameters():
            if "norm" in n and n.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif n.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
            elif "quantize.embedding" in n:
                # LlamaGen keeps an l2-normalised codebook; unit rows also make transformers' (unnormalised)
                # nearest-code search agree with the official (normalised) one.
                p.copy_(torch.nn.functional.normalize(torch.randn_like(p), dim=-1))
            else:
                fan_in = p.shape[1] if p.dim() > 1 else p.shape[0]
                if p.dim() == 4:
                    fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                std = scale / fan_in**0.5 if "embed" not in n else 1.0
                p.copy_(torch.randn_like(p) * std)
    return Oracle(hf, s)


def save_oracle(o: Oracle, folder: Path) -> Path:
    o.hf.save_pretrained(folder)
    return folder


def mixed_batch(spec: dict, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """Two left-padded rows of different length; row 0 holds one image, row 1 two images.

    Returns input ids [2, T], padding mask [2, T], pixel values [3, 3, S, S] and the pad length per row.
    """
    g = torch.Generator().manual_seed(seed)
    n_img = (spec["image"] // spec["patch"]) ** 2

    def text(n: int) -> list[int]:
        return torch.randint(10, spec["vocab"], (n,), generator=g).tolist()

    row0 = text(5) + [IMAGE_TOKEN_ID] * n_img + text(4)
    row1 = text(3) + [IMAGE_TOKEN_ID] * n_img + text(2) + [IMAGE_TOKEN_ID] * n_img + text(6)
    t = max(len(row0), len(row1))
    ids = torch.zeros(2, t, dtype=torch.long)
    mask = torch.zeros(2, t, dtype=torch.long)
    pads = []
    for i, row in enumerate((row0, row1)):
        ids[i, t - len(row):] = torch.tensor(row)
        mask[i, t - len(row):] = 1
        pads.append(t - len(row))
    pixels = torch.randn(3, 3, spec["image"], spec["image"], generator=g)
    return ids, mask, pixels, pads


def make_tiny_checkpoint(folder: Path, seed: int = 0) -> Path:
    """A tiny random januspro model folder with a byte-level tokenizer: the CLI's test model."""
    from januspro.checkpoint import save_model
    from januspro.config import preset
    from januspro.models.janus import JanusModel
    from januspro.processing.tokenizer_build import build_byte_bpe

    torch.manual_seed(seed)
    model = JanusModel(preset("tiny"))
    model.init_weights_(std=0.2)
    build_byte_bpe().save(folder)
    save_model(model, folder, tokenizer_dir=folder)
    return folder


@contextlib.contextmanager
def serve_in_thread(app):
    """Run an ASGI app with uvicorn on a free loopback port in a thread; yields its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    try:
        deadline = time.time() + 20
        while not srv.started and time.time() < deadline:
            time.sleep(0.05)
        assert srv.started, "server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        t.join(timeout=10)
