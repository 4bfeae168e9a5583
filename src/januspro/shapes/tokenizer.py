"""The shapes world's tokenizer: byte-level BPE learned on the world's language, plus Janus' special tokens."""

from __future__ import annotations

from pathlib import Path

from ..processing.tokenizer import JanusTokenizer
from ..processing.tokenizer_build import build_byte_bpe
from .datasets import item_rng, t2i_item, und_item
from .language import text_line


def shapes_corpus(n: int = 6000, seed: int = 0) -> list[str]:
    """Captions, conversations and text-corpus lines as the training data will contain them."""
    out: list[str] = []
    for i in range(n):
        out.append(t2i_item(seed, i, "synthetic" if i % 2 else "real")[0])
        messages, _, _ = und_item(seed, i)
        out.append(" ".join(m["content"].replace("<image_placeholder>\n", "") for m in messages))
        out.append(text_line(item_rng(seed, i, 4)))
    return out


def build_shapes_tokenizer(out: str | Path | None = None, vocab_size: int = 500, n: int = 6000,
                           seed: int = 0) -> JanusTokenizer:
    """A lossless byte-level BPE of at most ``vocab_size`` tokens (specials included) for the shapes world;
    saved to ``out`` (tokenizer.json + special_tokens_map.json) when given."""
    tok = build_byte_bpe(shapes_corpus(n, seed), vocab_size=vocab_size - 8)
    if out is not None:
        tok.save(out)
    return tok
