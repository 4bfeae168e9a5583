"""Build small byte-level BPE tokenizers with the Janus special tokens (for models trained from scratch)."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from .tokenizer import JanusTokenizer, SpecialTokens

# Chat-template role names become single tokens so a small model sees them as units.
ROLE_TOKENS = ("<|User|>", "<|Assistant|>")


def build_byte_bpe(corpus: Iterable[str] = (), vocab_size: int = 256 + 16, special: SpecialTokens | None = None,
                   extra_special: tuple[str, ...] = ROLE_TOKENS) -> JanusTokenizer:
    """A byte-level BPE tokenizer: the 256 byte symbols, merges learned from ``corpus`` up to ``vocab_size``
    (no merges when the corpus is empty), then the Janus special tokens. Lossless for any text."""
    special = special or SpecialTokens()
    names = [special.bos, special.eos, special.pad, special.image_start, special.image, special.image_end,
             *extra_special]
    tok = Tokenizer(models.BPE(fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=max(vocab_size, len(alphabet)), initial_alphabet=alphabet,
                                  show_progress=False, special_tokens=[])
    tok.train_from_iterator(list(corpus) or [""], trainer=trainer)
    tok.add_special_tokens([AddedToken(n, special=True, normalized=False) for n in names])
    bos_id = tok.token_to_id(special.bos)
    tok.post_processor = processors.TemplateProcessing(single=f"{special.bos} $A", special_tokens=[(special.bos, bos_id)])
    return JanusTokenizer(tok, special)
