"""Build a ``tokenizers`` BPE tokenizer from a GGUF vocabulary (DeepSeek-LLM's, as llama.cpp ships it).

This is how we get the real DeepSeek-LLM tokenizer offline: the GGUF file holds the byte-level BPE vocabulary
and merges; the pre-tokenizer is DeepSeek-LLM's sequence of isolating regex splits. Janus adds its own
special tokens on top, at fixed ids of the released tokenizer (:data:`JANUS_SPECIAL_IDS`).
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

# DeepSeek-LLM's pre-tokenizer: each regex isolates its matches, in order; then byte-level mapping.
# The character classes are written as code-point ranges: several of their letters (e.g. U+1F7D, U+2126,
# U+212A) have canonical singleton decompositions, and an editor or normaliser would silently change them.
_LETTERS = (
    (0x41, 0x5A), (0x61, 0x7A), (0xB5, 0xB5), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x1BA), (0x1BC, 0x1BF),
    (0x1C4, 0x293), (0x295, 0x2AF), (0x370, 0x373), (0x376, 0x377), (0x37B, 0x37D), (0x37F, 0x37F),
    (0x386, 0x386), (0x388, 0x38A), (0x38C, 0x38C), (0x38E, 0x3A1), (0x3A3, 0x3F5), (0x3F7, 0x481),
    (0x48A, 0x52F), (0x531, 0x556), (0x10A0, 0x10C5), (0x13A0, 0x13F5), (0x13F8, 0x13FD), (0x1C90, 0x1CBA),
    (0x1CBD, 0x1CBF), (0x1D00, 0x1D2B), (0x1D6B, 0x1D77), (0x1D79, 0x1D9A), (0x1E00, 0x1F15), (0x1F18, 0x1F1D),
    (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57), (0x1F59, 0x1F59), (0x1F5B, 0x1F5B), (0x1F5D, 0x1F5D),
    (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE), (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC),
    (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC), (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC), (0x2102, 0x2102),
    (0x2107, 0x2107), (0x210A, 0x2113), (0x2115, 0x2115), (0x2119, 0x211D), (0x2124, 0x2124), (0x2126, 0x2126),
    (0x2128, 0x2128), (0x212A, 0x212D), (0x212F, 0x2134), (0x2139, 0x2139), (0x213C, 0x213F), (0x2145, 0x2149),
    (0x214E, 0x214E), (0x2183, 0x2184), (0x2C00, 0x2C7B), (0x2C7E, 0x2CE4), (0x2CEB, 0x2CEE), (0x2CF2, 0x2CF3),
    (0xA640, 0xA66D), (0xA680, 0xA69B), (0xA722, 0xA76F), (0xA771, 0xA787), (0xA78B, 0xA78E), (0xAB70, 0xABBF),
    (0xFB00, 0xFB06), (0xFB13, 0xFB17), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A), (0x10400, 0x1044F),
    (0x104B0, 0x104D3), (0x104D8, 0x104FB), (0x10C80, 0x10CB2), (0x10CC0, 0x10CF2), (0x118A0, 0x118DF),
    (0x1E900, 0x1E943),
)
_PUNCT = ((0x21, 0x2F), (0x3A, 0x7E), (0xFF01, 0xFF0F), (0xFF1A, 0xFF5E), (0x2018, 0x201F), (0x3000, 0x3002))
_CJK = ((0x4E00, 0x9FA5), (0x800, 0x4E00), (0xAC00, 0xD7FF))


def _cls(ranges: tuple[tuple[int, int], ...]) -> str:
    return "[" + "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges) + "]"


DEEPSEEK_LLM_SPLITS = (
    "[\r\n]",
    "\\s?" + _cls(_LETTERS) + "+",
    "\\s?" + _cls(_PUNCT) + "+",
    "\\s+$",
    _cls(_CJK) + "+",
    "\\p{N}+",
)

# Janus' special tokens in the released Janus / Janus-Pro tokenizer (ids inside DeepSeek-LLM's reserved range).
JANUS_SPECIAL_IDS = {
    100015: "<｜▁pad▁｜>",
    100016: "<begin_of_image>",
    100581: "<image_placeholder>",
    100593: "<end_of_image>",
}

_GGUF_NORMAL, _GGUF_CONTROL, _GGUF_USER_DEFINED = 1, 3, 4


def deepseek_pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    splits = [pre_tokenizers.Split(Regex(r), behavior="isolated") for r in DEEPSEEK_LLM_SPLITS]
    return pre_tokenizers.Sequence([*splits, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])


def read_gguf_vocab(path: str | Path) -> tuple[list[str], list[int], list[str], dict[str, object]]:
    """Tokens, token types, merges and scalar tokenizer fields of a GGUF file."""
    try:
        from gguf import GGUFReader
    except ImportError as e:  # pragma: no cover - dev extra
        raise ImportError("reading GGUF vocabularies needs the 'gguf' package (pip install gguf)") from e
    r = GGUFReader(str(path))

    def strings(key: str) -> list[str]:
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    tokens = strings("tokenizer.ggml.tokens")
    tt = r.fields["tokenizer.ggml.token_type"]
    types = [int(tt.parts[i][0]) for i in tt.data]
    merges = strings("tokenizer.ggml.merges")
    scalars: dict[str, object] = {}
    for key in ("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.pre"):
        if key in r.fields:
            f = r.fields[key]
            part = f.parts[f.data[0]]
            scalars[key] = bytes(part).decode() if key.endswith("pre") else int(part[0])
    return tokens, types, merges, scalars


def tokenizer_from_gguf(path: str | Path, janus_specials: dict[int, str] | None = None) -> Tokenizer:
    """A byte-level BPE ``Tokenizer`` equal to DeepSeek-LLM's, optionally with Janus' special tokens placed."""
    tokens, types, merges, scalars = read_gguf_vocab(path)
    pre = scalars.get("tokenizer.ggml.pre")
    if pre != "deepseek-llm":
        raise ValueError(f"{path}: pre-tokenizer {pre!r} is not DeepSeek-LLM's")
    if janus_specials:
        for tid, text in janus_specials.items():
            tokens[tid] = text
            types[tid] = _GGUF_CONTROL
    bpe_vocab = {t: i for i, t in enumerate(tokens) if types[i] == _GGUF_NORMAL}
    tok = Tokenizer(models.BPE(vocab=bpe_vocab, merges=[tuple(m.split(" ", 1)) for m in merges],
                               fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = deepseek_pre_tokenizer()
    tok.decoder = decoders.ByteLevel()
    added = []
    for i, t in enumerate(tokens):
        if types[i] == _GGUF_NORMAL:
            continue
        special = types[i] == _GGUF_CONTROL or t.startswith("[PAD")
        added.append((i, AddedToken(t, special=special, normalized=False)))
    # add_tokens assigns ids in order after the model vocabulary; they are contiguous from 100000 here
    assert [i for i, _ in added] == list(range(len(bpe_vocab), len(tokens))), "added tokens must be contiguous"
    tok.add_tokens([a for _, a in added])
    bos = tokens[int(scalars.get("tokenizer.ggml.bos_token_id", 100000))]  # type: ignore[arg-type]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tokens.index(bos))])
    return tok
