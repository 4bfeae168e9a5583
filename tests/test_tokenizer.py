"""The real DeepSeek-LLM vocabulary, rebuilt offline, against llama.cpp's published test vectors."""

from __future__ import annotations

import json

import pytest
from tokenizers import Tokenizer

from januspro.processing.tokenizer import JanusTokenizer, TokenizerError

VEC = "deepseek-llm-tokenizer-vectors/ggml-vocab-deepseek-llm.gguf"


def _vectors(fixtures_dir):
    inputs = (fixtures_dir / f"{VEC}.inp.txt").read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    if inputs and inputs[-1] == "":
        inputs = inputs[:-1]
    outputs = (fixtures_dir / f"{VEC}.out.txt").read_text().split("\n")[: len(inputs)]
    return list(zip(inputs, [[int(x) for x in line.split()] for line in outputs], strict=True))


def test_all_published_vectors(fixtures_dir, deepseek_tokenizer_dir):
    tok = JanusTokenizer.from_dir(deepseek_tokenizer_dir)
    vectors = _vectors(fixtures_dir)
    assert len(vectors) == 46
    failures = [(text, tok.encode(text, add_bos=False), ids) for text, ids in vectors
                if tok.encode(text, add_bos=False) != ids]
    assert not failures, failures[:3]
    # decoding gives the text back (byte-level BPE is lossless) -- except through the 13 single-character
    # added tokens 100002..100014 ("ø", "ü", ...), whose text the byte-level decoder reads as one raw byte
    checked = 0
    for text, ids in vectors:
        if not any(100002 <= i <= 100014 for i in ids):
            assert tok.decode(ids, skip_special_tokens=False) == text
            checked += 1
    assert checked >= 40


def test_special_tokens_resolved_by_name(deepseek_tokenizer_dir):
    tok = JanusTokenizer.from_dir(deepseek_tokenizer_dir)
    assert (tok.bos_id, tok.eos_id) == (100000, 100001)
    assert (tok.pad_id, tok.image_start_id, tok.image_id, tok.image_end_id) == (100015, 100016, 100581, 100593)
    assert tok.vocab_size == 102400
    ids = tok.encode("<image_placeholder>\nhi<begin_of_image>")
    assert ids[0] == 100000 and 100581 in ids and ids[-1] == 100016


def test_pad_id_comes_from_the_tokenizer(deepseek_tokenizer_dir, tmp_path):
    """Checkpoints differ in their pad token; its id is whatever the tokenizer file says."""
    data = json.loads((deepseek_tokenizer_dir / "tokenizer.json").read_text())
    for t in data["added_tokens"]:
        if t["content"] == "<｜▁pad▁｜>":
            t["content"] = "[PAD100015]"
        elif t["content"] == "[PAD100020]":
            t["content"] = "<｜▁pad▁｜>"
    (tmp_path / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False))
    assert JanusTokenizer.from_dir(tmp_path).pad_id == 100020


def test_missing_special_token_is_clear(deepseek_tokenizer_dir, tmp_path):
    tok = Tokenizer.from_file(str(deepseek_tokenizer_dir / "tokenizer.json"))
    data = json.loads(tok.to_str())
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] != "<end_of_image>"]
    (tmp_path / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False))
    with pytest.raises(TokenizerError, match="image_end token '<end_of_image>'"):
        JanusTokenizer.from_dir(tmp_path)
    with pytest.raises(TokenizerError, match="no tokenizer.json"):
        JanusTokenizer.from_dir(tmp_path / "nowhere")
